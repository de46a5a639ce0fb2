"""The data verbs the Platform exposes: ingest from a source URL, inspect batches and
snapshots, and work the quarantine (list, show, replay, discard)."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from decisionloop.data.batches import POSITION, FileRef, RawBatch
from decisionloop.data.contract import ColumnSpec, ContractSpec
from decisionloop.data.ingest import Ingested, Mode, ingest_batch, latest_snapshot
from decisionloop.errors import Invalid, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from decisionloop.backends.metadata.records import Quarantined, Snapshot
    from decisionloop.data.batches import Source
    from decisionloop.platform import Platform


class DataService:
    """Ingestion and its records for one project's data set."""

    def __init__(self, platform: Platform, dataset: str | None = None) -> None:
        self.platform = platform
        self.dataset = dataset or platform.settings.name
        self._stop = threading.Event()
        self._source: Source | None = None

    def source_url(self, source: str | None) -> str:
        from decisionloop.config import resolve_url

        if source is not None:
            return (
                resolve_url(source, self.platform.settings.project_dir)
                if "://" not in source
                else source
            )
        if self.dataset != self.platform.settings.name or self.platform.settings.data is None:
            spec = self.platform.settings.dataset_spec(self.dataset)
            return resolve_url(spec.source, self.platform.settings.project_dir)
        return self.platform.settings.data_source()

    def open(self, url: str, *, query: str | None = None) -> Source:
        from decisionloop.data.sources import open_source

        return open_source(
            url,
            self.platform.settings,
            query=query,
            is_done=lambda origin: self.platform.metadata.ingestion.has_origin(
                self.dataset, origin
            ),
        )

    def ingest(
        self,
        source: str | None = None,
        *,
        query: str | None = None,
        follow: bool = False,
        mode: Mode | None = None,
        strict: bool = False,
        max_batch_rows: int = 100_000,
        on_batch: Callable[[Ingested], None] | None = None,
    ) -> list[Ingested]:
        """Read every new batch from ``source`` (default: ``data.source``) and ingest it.

        A single file replaces the data set's contents by default; folders, queries and
        streams append. With ``follow`` this runs until :meth:`stop` is called.
        """
        from decisionloop.data.sources import FileSource

        url = self.source_url(source)
        columns, contract = self._contract()
        self._stop.clear()  # a stop asked of an earlier ingestion does not end this one
        opened = self.open(url, query=query)
        self._source = opened
        chosen: Mode = mode or ("replace" if isinstance(opened, FileSource) else "append")
        done: list[Ingested] = []
        try:
            for batch in opened.read(follow=follow, max_batch_rows=max_batch_rows):
                result = ingest_batch(
                    self.platform,
                    self.dataset,
                    batch,
                    columns=columns,
                    contract=contract,
                    mode=chosen,
                    strict=strict,
                )
                done.append(result)
                if on_batch is not None:
                    on_batch(result)
                if self._stop.is_set():
                    break
        finally:
            opened.close()
            self._source = None
        return done

    def stop(self) -> None:
        """Ask a running ``ingest(follow=True)`` to finish after its current batch."""
        self._stop.set()
        if self._source is not None:
            self._source.stop()

    def _contract(self) -> tuple[dict[str, ColumnSpec], ContractSpec]:
        settings = self.platform.settings
        if self.dataset in settings.datasets or self.dataset != settings.name:
            declared = settings.dataset_spec(self.dataset)
            return dict(declared.columns), declared.contract
        spec = settings.data
        if spec is None:
            settings.data_source()  # raises the helpful error
        assert spec is not None
        return dict(spec.columns), spec.contract

    # -- records -----------------------------------------------------------------------

    def snapshots(self, limit: int = 50) -> list[Snapshot]:
        return self.platform.metadata.datasets.list_snapshots(self.dataset, limit=limit)

    def read_snapshot(self, snapshot_id: str | None = None) -> pa.Table:
        """A snapshot's rows exactly as stored (default: the latest)."""
        from decisionloop.data.offline import read_snapshot

        if snapshot_id is None:
            snapshot = latest_snapshot(self.platform, self.dataset)
            if snapshot is None:
                raise NotFound(
                    f"data set {self.dataset!r} has no snapshot yet",
                    hint="run `decisionloop ingest` or `decisionloop run` first",
                )
        else:
            snapshot = self.platform.metadata.datasets.get_snapshot(snapshot_id)
        return read_snapshot(
            self.platform.artifacts, snapshot, self.platform.settings.state_dir / "cache"
        )

    # -- quarantine --------------------------------------------------------------------

    def replay(self, ids: list[int] | None = None) -> list[Ingested]:
        """Validate quarantined entries again under the current contract.

        Rows whose payload is a JSON object come back as one batch; a rejected file comes back
        whole. What passes is stored; what still fails is quarantined anew; the replayed
        entries are marked ``replayed`` in the same transaction.
        """
        ingestion = self.platform.metadata.ingestion
        entries = (
            [ingestion.get_quarantined(i) for i in ids]
            if ids
            else ingestion.list_quarantine(self.dataset, status="open", limit=1_000_000)
        )
        entries = [e for e in entries if e.status == "open" and e.dataset == self.dataset]
        if not entries:
            raise NotFound("nothing to replay", hint="see `decisionloop data quarantine list`")
        columns, contract = self._contract()
        results = []
        rows = [e for e in entries if e.kind == "row"]
        if rows:
            batch = RawBatch(
                origin=f"replay of {len(rows)} quarantined row(s)", table=_rows_table(rows)
            )
            results.append(
                ingest_batch(
                    self.platform,
                    self.dataset,
                    batch,
                    columns=columns,
                    contract=contract,
                    mode="append",
                    replayed=[e.id for e in rows],
                )
            )
        for entry in (e for e in entries if e.kind == "batch"):
            results.append(self._replay_file(entry, columns, contract))
        return results

    def _replay_file(
        self, entry: Quarantined, columns: dict[str, ColumnSpec], contract: ContractSpec
    ) -> Ingested:
        payload = json.loads(entry.payload)
        if "artifact" not in payload:
            raise Invalid(f"quarantine entry {entry.id} has no stored file to replay")
        folder = Path(tempfile.mkdtemp(prefix="decisionloop-replay-"))
        target = folder / f"replay.{payload['format']}"
        self.platform.artifacts.download(payload["artifact"], target, sha256=payload["sha256"])
        batch = RawBatch(
            origin=f"replay of {payload['origin']}",
            file=FileRef(str(target), payload["format"], str(payload["origin"]).split("#")[0]),
            acknowledge=lambda: target.unlink(missing_ok=True),
        )
        return ingest_batch(
            self.platform,
            self.dataset,
            batch,
            columns=columns,
            contract=contract,
            mode="replace",
            replayed=[entry.id],
        )

    def discard(self, ids: list[int], reason: str) -> int:
        return self.platform.metadata.ingestion.resolve(
            ids, "discarded", reason, actor=self.platform.actor
        )


def _rows_table(entries: list[Quarantined]) -> pa.Table:
    """Quarantined rows back as a raw table: JSON objects as rows, anything else as a row
    that fails to decode again (so it stays quarantined, never lost)."""
    import pyarrow as pa

    from decisionloop.data.batches import ERROR, PAYLOAD

    records: list[dict[str, object]] = []
    for entry in entries:
        try:
            value = json.loads(entry.payload)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            records.append(
                {
                    **{k: v for k, v in value.items() if not k.startswith("_")},
                    POSITION: entry.position,
                    ERROR: None,
                    PAYLOAD: None,
                }
            )
        else:
            records.append(
                {POSITION: entry.position, ERROR: "not a JSON object", PAYLOAD: entry.payload}
            )
    names: list[str] = []
    for record in records:
        names.extend(k for k in record if k not in names)
    columns = {name: [_text(r.get(name)) for r in records] for name in names}
    return pa.table({name: pa.array(values, type=pa.string()) for name, values in columns.items()})


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
