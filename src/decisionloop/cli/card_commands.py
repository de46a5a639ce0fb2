"""`decisionloop card REF`: the model card of a version, as Markdown, HTML or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from decisionloop.errors import Invalid


def _drift_report(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Invalid(
            f"cannot read the drift report {path}: {exc}",
            hint="pass the JSON of a drift report's to_dict()",
        ) from exc
    if not isinstance(document, dict):
        raise Invalid(f"{path} is not a drift report", hint="expected a JSON object")
    return document


def card(
    ref: Annotated[
        str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME (default alias: champion).")
    ],
    card_format: Annotated[
        str, typer.Option("--format", "-f", help="md, html (self-contained) or json.")
    ] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    drift: Annotated[
        Path | None,
        typer.Option("--drift", help="A drift report (JSON) to summarise on the card."),
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project", "-p", help="Project folder (default: DECISIONLOOP_PROJECT_DIR or .)."
        ),
    ] = None,
) -> None:
    """Print or write the model card of a registered version."""
    from decisionloop.cards import build_card, render_card
    from decisionloop.cli.output import err, writing
    from decisionloop.platform import Platform

    if card_format not in ("md", "html", "json"):
        raise Invalid(f"--format {card_format!r} is not a card format", hint="use md, html or json")
    with Platform.open(project) as platform:
        built = build_card(platform, ref, drift=_drift_report(drift))
    text = render_card(built, card_format)
    if output is None:
        sys.stdout.write(text)
        return
    with writing(output):
        output.write_text(text, encoding="utf-8")
    err.print(f"wrote the card of {built.model_details.version_id} to {output}")
