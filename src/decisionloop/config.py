"""Settings: the one typed configuration object, and the project file it is read from.

Precedence, lowest to highest: built-in defaults < ``decisionloop.yaml`` in the project folder
< ``DECISIONLOOP_*`` environment variables (nested keys joined by ``__``, e.g.
``DECISIONLOOP_STORAGE__METADATA_URL``) < keyword arguments to :func:`load_settings`.
Nothing outside this module reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from decisionloop.config_model import (
    TRAINER_TASKS,
    GateKind,
    GateSpec,
    ModelSpec,
    SearchChoices,
    SearchRange,
    TrainerName,
    TuningSpec,
    TuningValue,
)
from decisionloop.data.contract import ColumnSpec, ColumnType, ContractSpec
from decisionloop.errors import InvalidConfig

__all__ = [
    "TRAINER_TASKS",
    "ColumnSpec",
    "ColumnType",
    "ContractSpec",
    "GateKind",
    "GateSpec",
    "ModelSpec",
    "SearchChoices",
    "SearchRange",
    "Settings",
    "TrainerName",
    "TuningSpec",
    "TuningValue",
    "load_settings",
]

PROJECT_FILE = "decisionloop.yaml"
ENV_PREFIX = "DECISIONLOOP_"
STATE_DIR = ".decisionloop"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Section):
    """Where the training data comes from and what its columns mean."""

    source: str = Field(description="Path (relative to the project folder) or URL of the data.")
    target: str
    positive: str | None = Field(
        default=None, description="Target value counted as the positive class."
    )
    entity: str | None = None
    timestamp: str | None = None
    sensitive: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(
        default_factory=list, description="Columns never used as features (e.g. identifiers)."
    )
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    contract: ContractSpec = Field(default_factory=ContractSpec)
    features: str | None = Field(
        default=None,
        description="A feature service: training joins its features to these rows point in "
        "time (by `entity` and `timestamp`) and serving looks them up by entity id.",
    )


class DatasetSpec(_Section):
    """Another ingested data set (e.g. a feature view's source): where it comes from and its
    contract. Ingest it with `decisionloop data ingest --dataset NAME`."""

    source: str = Field(description="Path (relative to the project folder) or URL of the data.")
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    contract: ContractSpec = Field(default_factory=ContractSpec)


class FeaturesSpec(_Section):
    """Feature store definitions (see docs/features.md); each section maps a name to its
    definition, checked when the feature store is used."""

    module: str | None = Field(
        default=None,
        description="A Python file in the project folder whose `definitions` list adds more.",
    )
    entities: dict[str, dict[str, Any]] = Field(default_factory=dict)
    views: dict[str, dict[str, Any]] = Field(default_factory=dict)
    on_demand: dict[str, dict[str, Any]] = Field(default_factory=dict)
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)
    log_sample_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of online lookups logged for `decisionloop features check-skew`.",
    )


class StorageSettings(_Section):
    """Backend locations, as URLs; relative paths are resolved against the project folder."""

    metadata_url: str = f"sqlite:///{STATE_DIR}/metadata.db"
    artifacts_url: str = f"file://{STATE_DIR}/artifacts"
    online_url: str = Field(
        default=f"sqlite:///{STATE_DIR}/online.db",
        description="The online feature store: sqlite:///FILE or redis://HOST:PORT/DB.",
    )
    event_log_url: str = Field(
        default=f"eventlog://{STATE_DIR}/events.db",
        description="The event log (feature log today): eventlog://FILE or kafka://HOST:PORT.",
    )


class ServingSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_rows_per_request: int = Field(default=10_000, ge=1)
    access_log: bool = Field(
        default=False,
        description="uvicorn's line per request (costs ~20% of throughput at one worker).",
    )


class S3Settings(_Section):
    """Connection details for ``s3://`` URLs (the AWS_* variables are honoured by boto3 too)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None


class KinesisSettings(_Section):
    """Connection details for ``kinesis://`` sources (credentials: boto3's usual AWS_* sources;
    for a local ``endpoint_url`` without any, dummy ones)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"


_file_data: ContextVar[dict[str, Any] | None] = ContextVar("decisionloop_file_data", default=None)


class _ProjectFileSource(PydanticBaseSettingsSource):
    """Feeds the already parsed project file into pydantic-settings at its place in the order."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_file_data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_data.get() or {})


class Settings(BaseSettings):
    """Everything DecisionLoop needs to know about one project."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    project_dir: Path = Field(default=Path("."), description="The project folder.")
    name: str = Field(default="model", description="The model's registered name.")
    description: str = ""
    data: DataSpec | None = None
    datasets: dict[str, DatasetSpec] = Field(
        default_factory=dict, description="More data sets, by name (e.g. feature sources)."
    )
    features: FeaturesSpec = Field(default_factory=FeaturesSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    gates: list[GateSpec] = Field(default_factory=list)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    kinesis: KinesisSettings = Field(default_factory=KinesisSettings)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "must start with a letter and hold only letters, digits, '_', '.', '-'"
            )
        return value

    @field_validator("datasets")
    @classmethod
    def _valid_dataset_names(cls, value: dict[str, DatasetSpec]) -> dict[str, DatasetSpec]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(
                    f"data set name {name!r} must start with a letter and hold only letters, "
                    "digits, '_', '.', '-'"
                )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ProjectFileSource(settings_cls))

    @property
    def state_dir(self) -> Path:
        return self.project_dir / STATE_DIR

    @property
    def metadata_url(self) -> str:
        return resolve_url(self.storage.metadata_url, self.project_dir)

    @property
    def artifacts_url(self) -> str:
        return resolve_url(self.storage.artifacts_url, self.project_dir)

    @property
    def online_url(self) -> str:
        return resolve_url(self.storage.online_url, self.project_dir)

    @property
    def event_log_url(self) -> str:
        return resolve_url(self.storage.event_log_url, self.project_dir)

    def dataset_spec(self, dataset: str) -> DataSpec | DatasetSpec:
        """The declaration of a data set: the project's own (named like the project) or one
        under ``datasets``."""
        if dataset in self.datasets:
            return self.datasets[dataset]
        if dataset == self.name and self.data is not None:
            return self.data
        known = sorted({*self.datasets, *([self.name] if self.data is not None else [])})
        raise InvalidConfig(
            f"no data set {dataset!r} is declared",
            file=str(self.project_dir / PROJECT_FILE),
            key=f"datasets.{dataset}",
            hint=f"declare it under `datasets:` (declared: {', '.join(known) or 'none'})",
        )

    def data_source(self) -> str:
        if self.data is None:
            raise InvalidConfig(
                "the project has no `data` section",
                file=str(self.project_dir / PROJECT_FILE),
                key="data",
                hint="run `decisionloop init DIR --data FILE --target COLUMN` first",
            )
        return resolve_url(self.data.source, self.project_dir)


def resolve_url(url: str, base: Path) -> str:
    """Make ``sqlite:///rel``, ``file://rel`` and bare relative paths absolute against ``base``."""
    for prefix in ("sqlite:///", "file://", "eventlog://"):
        if url.startswith(prefix):
            path = url[len(prefix) :]
            if not path.startswith("/") and path != ":memory:":
                return prefix + str((base / path).resolve())
            return url
    if "://" not in url:
        return str((base / url).resolve())
    return url


def read_project_file(path: Path) -> dict[str, Any]:
    """Parse a project file; YAML errors name the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"cannot read the project file: {exc}", file=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidConfig(
            f"malformed YAML: {problem}",
            file=str(path),
            key=where,
            hint="fix the YAML syntax (indentation, colons, quotes)",
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidConfig(
            f"expected a mapping at the top level, found {type(data).__name__}",
            file=str(path),
            hint="the project file is a YAML mapping such as `name: churn`",
        )
    return data


def project_dir_from_env(default: Path | None = None) -> Path:
    """The project folder named by DECISIONLOOP_PROJECT_DIR, else ``default`` or the cwd."""
    value = os.environ.get(f"{ENV_PREFIX}PROJECT_DIR")
    return Path(value) if value else (default or Path.cwd())


def export_project_dir(folder: Path) -> None:
    """Name the project folder for child processes (e.g. serving workers)."""
    os.environ[f"{ENV_PREFIX}PROJECT_DIR"] = str(folder.resolve())


#: "1" in a process (and its children) that only scores models: see training.lean_import
LEAN_IMPORTS_ENV = f"{ENV_PREFIX}LEAN_IMPORTS"


def request_lean_imports() -> None:
    """Mark this process and its children (serving workers) as scoring-only."""
    os.environ.setdefault(LEAN_IMPORTS_ENV, "1")


def lean_imports_requested() -> bool:
    return os.environ.get(LEAN_IMPORTS_ENV) == "1"


def load_settings(project_dir: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings for the project in ``project_dir`` (default: DECISIONLOOP_PROJECT_DIR|cwd)."""
    folder = Path(project_dir) if project_dir is not None else project_dir_from_env()
    folder = folder.resolve()
    if not folder.is_dir():
        from decisionloop.errors import NotFound

        raise NotFound(
            f"no project folder {folder}",
            hint="create one with `decisionloop init DIR --data FILE --target COLUMN`",
        )
    path = folder / PROJECT_FILE
    data = read_project_file(path)
    data.pop("project_dir", None)
    token = _file_data.set(data)
    try:
        return Settings(project_dir=folder, **overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise InvalidConfig(
            f"{first['msg']} (got {_short(first.get('input'))})",
            file=str(path),
            key=key,
            hint=f"{len(exc.errors())} problem(s); see docs/configuration.md for every key",
        ) from exc
    finally:
        _file_data.reset(token)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dump_project_file(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
