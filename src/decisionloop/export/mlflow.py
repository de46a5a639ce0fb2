"""Export runs and model versions to an MLflow tracking server, idempotently.

A DecisionLoop run becomes an MLflow run in an experiment named after the model (or a given
one): params, every step of every metric, tags, status and times, with the data snapshot, code
version and environment as ``decisionloop.*`` tags. The MLflow run carries the tag
``decisionloop.run_id``; a re-export finds it and only adds what is missing, so it updates and
never duplicates.

A model version becomes an MLflow registered model version, tagged ``decisionloop.version``,
whose ``source`` names the DecisionLoop artifact (the artifact store URL and the manifest key).
It is a catalog entry: MLflow cannot load it as a pyfunc model, DecisionLoop serves it. Its
metrics, status, gates and lineage are tags, its description is copied, and its aliases
(``champion``...) are set on the MLflow versions the DecisionLoop aliases point at.

The mapping is in docs/export.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from decisionloop.errors import Conflict, Invalid, NotFound
from decisionloop.export.mlflow_mapping import (
    RUN_TAG,
    VERSION_TAG,
    log_batches,
    metric_points,
    millis,
    new_params,
    pairs,
    run_name,
    run_tags,
    version_tags,
)

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import ModelVersion, Run
    from decisionloop.export.mlflow_rest import MLflowRestClient
    from decisionloop.platform import Platform

RUN_STATUS = {"running": "RUNNING", "finished": "FINISHED", "failed": "FAILED"}
#: a local artifact store's URL is written with this scheme: MLflow refuses ``file://`` sources
#: outside its own run folders, and the path is on the DecisionLoop machine, not the server's
LOCAL_SOURCE_SCHEME = "decisionloop-file"

#: called with (done, total, what is being exported now)
ExportProgress = Callable[[int, int, str], None]
Selection = Sequence[str] | Literal["all"]


@dataclass(frozen=True)
class ExportedRun:
    """One DecisionLoop run and the MLflow run it is; ``created`` is false on a re-export."""

    run_id: str
    mlflow_run_id: str
    experiment: str
    experiment_id: str
    created: bool
    params_logged: int
    metrics_logged: int
    tags_set: int


@dataclass(frozen=True)
class ExportedVersion:
    """One model version and the MLflow registered model version it is."""

    model: str
    version: int
    mlflow_version: str
    created: bool
    source: str
    mlflow_run_id: str | None
    aliases: tuple[str, ...]


@dataclass
class ExportSummary:
    """What one export did, for the CLI's table and ``--json``."""

    tracking_uri: str
    runs: list[ExportedRun] = field(default_factory=list)
    versions: list[ExportedVersion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "runs": [asdict(r) for r in self.runs],
            "model_versions": [{**asdict(v), "aliases": list(v.aliases)} for v in self.versions],
            "created": {
                "runs": sum(r.created for r in self.runs),
                "model_versions": sum(v.created for v in self.versions),
            },
        }


class MLflowExporter:
    """Copies runs and model versions of one project to one MLflow server."""

    def __init__(
        self, platform: Platform, client: MLflowRestClient, *, experiment: str | None = None
    ) -> None:
        self.platform = platform
        self.client = client
        #: one experiment for every run; None: each run goes to the experiment of its model
        self.experiment = experiment
        self._experiment_ids: dict[str, str] = {}
        self._exported_runs: dict[str, ExportedRun] = {}
        self._model_versions: dict[str, dict[int, str]] = {}
        self._registered: set[str] = set()

    # -- the verbs ------------------------------------------------------------------------

    def export(
        self,
        *,
        runs: Selection = (),
        models: Selection = (),
        progress: ExportProgress | None = None,
    ) -> ExportSummary:
        """Export the selected runs (ids, unique id prefixes or ``"all"``) and model versions
        (``NAME`` for every version, ``NAME@ALIAS``, ``NAME/VERSION`` or ``"all"``). A version's
        run is exported with it."""
        report = progress or (lambda done, total, what: None)
        # one cheap call first: an unreachable server or refused credentials fail before work
        self.client.call("GET", "experiments/search", {"max_results": 1})
        run_list = self._select_runs(runs)
        version_list = self._select_versions(models)
        total = len(run_list) + len(version_list)
        summary = ExportSummary(tracking_uri=self.client.tracking_uri)
        done = 0
        for run in run_list:
            report(done, total, f"run {run.id[:12]} ({run.model_name})")
            summary.runs.append(self.export_run(run.id))
            done += 1
        for version in version_list:
            report(done, total, f"model {version.model_name}/{version.version}")
            ref = f"{version.model_name}/{version.version}"
            summary.versions.append(self.export_version(ref, sync_aliases=False))
            done += 1
        # aliases once per model, when every selected version is there to point at
        aliases = {name: self._sync_aliases(name) for name in {v.model for v in summary.versions}}
        summary.versions = [_with_aliases(v, aliases[v.model]) for v in summary.versions]
        report(done, total, "done")
        return summary

    def export_run(self, run_id: str) -> ExportedRun:
        """Create or update the MLflow run of a DecisionLoop run (once per exporter)."""
        if run_id in self._exported_runs:
            return self._exported_runs[run_id]
        run = self.platform.runs.get(run_id)
        history = self.platform.runs.metric_history(run.id)
        experiment = self.experiment or run.model_name
        experiment_id = self._experiment_id(experiment)
        found = self._find_run(experiment_id, run.id)
        created = found is None
        if found is None:
            answer = self.client.call(
                "POST",
                "runs/create",
                {
                    "experiment_id": experiment_id,
                    "start_time": millis(run.started_at),
                    "run_name": run_name(run),
                    "tags": pairs({RUN_TAG: run.id}),
                },
            )
            found = answer["run"]
        mlflow_run_id = str(found["info"]["run_id"])
        data = found.get("data", {})
        existing_params = {p["key"]: p["value"] for p in data.get("params", [])}
        existing_tags = {t["key"]: t["value"] for t in data.get("tags", [])}
        existing_metric_keys = {m["key"] for m in data.get("metrics", [])}

        params = new_params(run, existing_params)
        tags = {
            key: value
            for key, value in run_tags(run, self._parent_of(run, experiment_id)).items()
            if existing_tags.get(key) != value
        }
        logged = {
            key: self._logged_points(mlflow_run_id, key) for key in sorted(existing_metric_keys)
        }
        metrics = [
            point
            for point in metric_points(run, history)
            if (point["step"], point["timestamp"], point["value"])
            not in logged.get(point["key"], set())
        ]
        for batch in log_batches(params, tags, metrics):
            self.client.call("POST", "runs/log-batch", {"run_id": mlflow_run_id, **batch})
        update: dict[str, Any] = {
            "run_id": mlflow_run_id,
            "status": RUN_STATUS.get(run.status, "FINISHED"),
            "run_name": run_name(run),
        }
        if run.ended_at is not None:
            update["end_time"] = millis(run.ended_at)
        self.client.call("POST", "runs/update", update)
        exported = ExportedRun(
            run_id=run.id,
            mlflow_run_id=mlflow_run_id,
            experiment=experiment,
            experiment_id=experiment_id,
            created=created,
            params_logged=len(params),
            metrics_logged=len(metrics),
            tags_set=len(tags),
        )
        self._exported_runs[run.id] = exported
        return exported

    def export_version(self, ref: str, *, sync_aliases: bool = True) -> ExportedVersion:
        """Create or update the MLflow registered model version of ``NAME/VERSION`` (or
        ``NAME@ALIAS``), export its run first, and (unless told not to) set the model's
        aliases."""
        version = self.platform.get_version(ref)
        name = version.model_name
        if "'" in name:
            raise Invalid(
                f"model name {name!r} has a quote that MLflow filters cannot carry",
                hint="export it under a name without quotes",
            )
        mlflow_run_id = self._run_of(version)
        self._ensure_registered_model(name)
        known = self._versions_in_mlflow(name)
        source = self.source(version)
        tags = version_tags(version, self.platform.settings.artifacts_url)
        mlflow_version = known.get(version.version)
        created = mlflow_version is None
        if mlflow_version is None:
            body: dict[str, Any] = {
                "name": name,
                "source": source,
                "description": version.description,
                "tags": pairs(tags),
            }
            if mlflow_run_id:
                body["run_id"] = mlflow_run_id
            answer = self.client.call("POST", "model-versions/create", body)
            mlflow_version = str(answer["model_version"]["version"])
            known[version.version] = mlflow_version
        else:
            current = self.client.call(
                "GET", "model-versions/get", {"name": name, "version": mlflow_version}
            )["model_version"]
            if current.get("description", "") != version.description:
                self.client.call(
                    "PATCH",
                    "model-versions/update",
                    {"name": name, "version": mlflow_version, "description": version.description},
                )
            present = {t["key"]: t["value"] for t in current.get("tags", [])}
            for key, value in tags.items():
                if present.get(key) != value:
                    self.client.call(
                        "POST",
                        "model-versions/set-tag",
                        {"name": name, "version": mlflow_version, "key": key, "value": value},
                    )
        aliases = self._sync_aliases(name) if sync_aliases else {}
        return ExportedVersion(
            model=name,
            version=version.version,
            mlflow_version=mlflow_version,
            created=created,
            source=source,
            mlflow_run_id=mlflow_run_id,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == mlflow_version)),
        )

    def source(self, version: ModelVersion) -> str:
        """Where the version's manifest is: the artifact store URL and the manifest key (a local
        store's absolute path is written with the ``decisionloop-file`` scheme)."""
        base = self.platform.settings.artifacts_url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme in ("", "file"):
            folder = Path(parts.path).resolve()
            return f"{LOCAL_SOURCE_SCHEME}://{folder.as_posix()}/{version.artifact_key}"
        return f"{base}/{version.artifact_key}"

    # -- selection ------------------------------------------------------------------------

    def _select_runs(self, runs: Selection) -> list[Run]:
        every = self.platform.runs.list(limit=1_000_000)
        if runs == "all":
            chosen = every
        else:
            chosen = [self.platform.runs.get(_resolve_run_id(text, every)) for text in runs]
        # parents start before their trials: export them first so trials can point at them
        unique = {run.id: run for run in chosen}
        return sorted(unique.values(), key=lambda run: run.started_at)

    def _select_versions(self, models: Selection) -> list[ModelVersion]:
        from decisionloop.refs import ModelRef

        if models == "all":
            refs = [model.name for model in self.platform.list_models()]
        else:
            refs = list(models)
        chosen: dict[tuple[str, int], ModelVersion] = {}
        for ref in refs:
            parsed = ModelRef.parse(ref)
            if parsed.alias is None and parsed.version is None:
                found = self.platform.list_versions(parsed.name)
                if not found:
                    raise NotFound(
                        f"model {parsed.name!r} has no versions",
                        hint="see `decisionloop models list`",
                    )
            else:
                found = [self.platform.get_version(parsed)]
            for version in found:
                chosen[(version.model_name, version.version)] = version
        return sorted(chosen.values(), key=lambda v: (v.model_name, v.version))

    # -- runs -----------------------------------------------------------------------------

    def _experiment_id(self, name: str) -> str:
        if name in self._experiment_ids:
            return self._experiment_ids[name]
        try:
            answer = self.client.call("GET", "experiments/get-by-name", {"experiment_name": name})
            experiment = answer["experiment"]
            if experiment.get("lifecycle_stage") == "deleted":
                raise Conflict(
                    f"MLflow experiment {name!r} is deleted",
                    hint="restore it in MLflow, or export with --experiment OTHER_NAME",
                )
            experiment_id = str(experiment["experiment_id"])
        except NotFound:
            try:
                answer = self.client.call(
                    "POST",
                    "experiments/create",
                    {"name": name, "tags": pairs({"decisionloop.model": name})},
                )
                experiment_id = str(answer["experiment_id"])
            except Conflict:  # created by another exporter meanwhile
                answer = self.client.call(
                    "GET", "experiments/get-by-name", {"experiment_name": name}
                )
                experiment_id = str(answer["experiment"]["experiment_id"])
        self._experiment_ids[name] = experiment_id
        return experiment_id

    def _find_run(self, experiment_id: str, run_id: str) -> dict[str, Any] | None:
        answer = self.client.call(
            "POST",
            "runs/search",
            {
                "experiment_ids": [experiment_id],
                "filter": f"tags.`{RUN_TAG}` = '{run_id}'",
                "max_results": 1,
            },
        )
        found = answer.get("runs") or []
        return dict(found[0]) if found else None

    def _logged_points(self, mlflow_run_id: str, key: str) -> set[tuple[int, int, float]]:
        """(step, timestamp, value) of every point MLflow has of a metric of a run."""
        points: set[tuple[int, int, float]] = set()
        token: str | None = None
        while True:
            answer = self.client.call(
                "GET",
                "metrics/get-history",
                {
                    "run_id": mlflow_run_id,
                    "metric_key": key,
                    "max_results": 25000,
                    "page_token": token,
                },
            )
            for metric in answer.get("metrics", []):
                points.add(
                    (int(metric.get("step", 0)), int(metric["timestamp"]), float(metric["value"]))
                )
            token = answer.get("next_page_token")
            if not token:
                return points

    def _parent_of(self, run: Run, experiment_id: str) -> str | None:
        """The MLflow run of the run's parent, when it is exported."""
        if not run.parent_run_id:
            return None
        parent = self._exported_runs.get(run.parent_run_id)
        if parent is not None:
            return parent.mlflow_run_id
        found = self._find_run(experiment_id, run.parent_run_id)
        return str(found["info"]["run_id"]) if found else None

    # -- model versions -------------------------------------------------------------------

    def _run_of(self, version: ModelVersion) -> str | None:
        if not version.run_id:
            return None
        try:
            return self.export_run(version.run_id).mlflow_run_id
        except NotFound:  # the run was pruned: the version still exports, without its run
            return None

    def _ensure_registered_model(self, name: str) -> None:
        if name in self._registered:
            return
        model = next((m for m in self.platform.list_models() if m.name == name), None)
        description = model.description if model else ""
        tags = dict(model.tags) if model else {}
        try:
            current = self.client.call("GET", "registered-models/get", {"name": name})
            registered = current["registered_model"]
        except NotFound:
            with contextlib.suppress(Conflict):  # registered by another exporter meanwhile
                self.client.call(
                    "POST",
                    "registered-models/create",
                    {"name": name, "description": description, "tags": pairs(tags)},
                )
            self._registered.add(name)
            return
        # a model registered in MLflow by hand keeps its description unless ours says something
        if description and registered.get("description", "") != description:
            self.client.call(
                "PATCH", "registered-models/update", {"name": name, "description": description}
            )
        present = {t["key"]: t["value"] for t in registered.get("tags", [])}
        for key, value in tags.items():
            if present.get(key) != value:
                self.client.call(
                    "POST", "registered-models/set-tag", {"name": name, "key": key, "value": value}
                )
        self._registered.add(name)

    def _versions_in_mlflow(self, name: str) -> dict[int, str]:
        """DecisionLoop version number -> MLflow version, from the mapping tag."""
        if name in self._model_versions:
            return self._model_versions[name]
        known: dict[int, str] = {}
        for version in self._search_versions(name):
            tags = {t["key"]: t["value"] for t in version.get("tags", [])}
            number = tags.get(VERSION_TAG, "")
            if number.isdigit():
                known.setdefault(int(number), str(version["version"]))
        self._model_versions[name] = known
        return known

    def _search_versions(self, name: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            answer = self.client.call(
                "GET",
                "model-versions/search",
                {"filter": f"name = '{name}'", "max_results": 1000, "page_token": token},
            )
            yield from answer.get("model_versions", [])
            token = answer.get("next_page_token")
            if not token:
                return

    def _sync_aliases(self, name: str) -> dict[str, str]:
        """Point each DecisionLoop alias at the MLflow version of the version it names, when
        that version is exported; drop aliases of exported versions that DecisionLoop no longer
        has there. Aliases MLflow users set on versions of their own are left alone.
        Returns alias -> MLflow version as it now stands."""
        known = self._versions_in_mlflow(name)
        mine = set(known.values())
        model = next((m for m in self.platform.list_models() if m.name == name), None)
        wanted = {
            alias: known[number]
            for alias, number in (model.aliases if model else {}).items()
            if number in known
        }
        registered = self.client.call("GET", "registered-models/get", {"name": name})
        present = {
            str(a["alias"]): str(a["version"])
            for a in registered["registered_model"].get("aliases", [])
        }
        for alias, mlflow_version in sorted(wanted.items()):
            if present.get(alias) != mlflow_version:
                self.client.call(
                    "POST",
                    "registered-models/alias",
                    {"name": name, "alias": alias, "version": mlflow_version},
                )
        for alias, mlflow_version in sorted(present.items()):
            if alias not in wanted and mlflow_version in mine:
                self.client.call(
                    "DELETE", "registered-models/alias", {"name": name, "alias": alias}
                )
        kept = {a: v for a, v in present.items() if a not in wanted and v not in mine}
        return {**kept, **wanted}


# -- helpers ------------------------------------------------------------------------------


def _resolve_run_id(text: str, runs: Sequence[Run]) -> str:
    matches = [run.id for run in runs if run.id == text] or [
        run.id for run in runs if run.id.startswith(text)
    ]
    if len(matches) != 1:
        raise (NotFound if not matches else Invalid)(
            f"{text!r} matches {len(matches)} runs",
            hint="give a run id or more of its characters (see `decisionloop runs list`)",
        )
    return matches[0]


def _with_aliases(version: ExportedVersion, aliases: Mapping[str, str]) -> ExportedVersion:
    mine = tuple(sorted(a for a, v in aliases.items() if v == version.mlflow_version))
    return ExportedVersion(**{**asdict(version), "aliases": mine})
