"""Docs that cannot rot: every CLI command, setting and HTTP route is documented."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from decisionloop.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def cli_commands() -> list[str]:
    import click
    import typer.main

    from decisionloop.cli.main import app

    root = typer.main.get_command(app)
    found: list[str] = []

    def walk(command: object, prefix: str) -> None:
        commands = getattr(command, "commands", None)
        if commands is None:
            found.append(prefix)
            return
        for name, sub in commands.items():
            walk(sub, f"{prefix} {name}")

    walk(root, "decisionloop")
    assert isinstance(root, click.Command) or hasattr(root, "commands")
    return found


def setting_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        nested = [
            candidate
            for candidate in (annotation, *typing.get_args(annotation))
            if isinstance(candidate, type) and issubclass(candidate, BaseModel)
        ]
        if nested and name != "columns":  # columns are user-named; their spec is a table row
            keys.extend(setting_keys(nested[0], f"{key}."))
        else:
            keys.append(key)
    return keys


def http_routes() -> list[str]:
    from decisionloop.serving.http import create_app

    class _NoPlatform:
        settings = Settings()

    app = create_app(_NoPlatform())  # type: ignore[arg-type]
    return [route.path for route in app.routes]  # type: ignore[attr-defined]


def test_commands_are_found() -> None:
    commands = cli_commands()
    assert "decisionloop models list" in commands
    assert "decisionloop run" in commands


@pytest.mark.parametrize("command", cli_commands())
def test_every_cli_command_is_documented(command: str) -> None:
    assert f"`{command}" in (DOCS / "cli.md").read_text(), f"{command} is missing from docs/cli.md"


@pytest.mark.parametrize("key", setting_keys())
def test_every_setting_is_documented(key: str) -> None:
    text = (DOCS / "configuration.md").read_text()
    assert f"`{key}`" in text, f"setting {key} is missing from docs/configuration.md"


@pytest.mark.parametrize("path", http_routes())
def test_every_http_route_is_documented(path: str) -> None:
    text = (DOCS / "http-api.md").read_text()
    assert f" {path}`" in text, f"route {path} is missing from docs/http-api.md"


def test_readme_starts_with_the_two_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text().splitlines()
    block = "\n".join(readme[:6])
    assert "make demo" in block
    assert "make test" in block


def test_every_doc_is_linked_from_the_readme() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"
