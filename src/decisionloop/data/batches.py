"""What a source hands to ingestion: a raw batch of rows, where each came from, and how to
acknowledge the batch once its rows are durably stored or quarantined."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pyarrow as pa

#: per-row source position in a raw table ("data.csv:17", "orders/2@1043")
POSITION = "_position"
#: per-row decode error (null when the row decoded); such rows go to quarantine as they are
ERROR = "_error"
#: per-row raw payload text, kept for rows that could not be decoded
PAYLOAD = "_payload"

FileFormat = Literal["csv", "parquet", "json"]


@dataclass(frozen=True)
class FileRef:
    """A file the validation engine scans itself (DuckDB reads CSV/Parquet faster than a
    round trip through Python). ``local_path`` is on this machine (a download for S3)."""

    local_path: str
    format: FileFormat
    #: shown in positions: "<display>:<record number>"
    display: str


@dataclass(frozen=True)
class RawBatch:
    """Rows as read, before validation: either an Arrow ``table`` or a ``file``.

    A ``table`` holds the source's columns (text or native types) plus the reserved columns
    ``_position`` (required) and optionally ``_error`` / ``_payload`` for rows that could not be
    decoded (a poisoned message). ``origin`` names the batch as a whole: a file URL with its
    sha256, or a topic and offset range. ``acknowledge`` is called once the batch's rows are
    durably stored or quarantined: a stream commits its offsets there.
    """

    origin: str
    table: pa.Table | None = None
    file: FileRef | None = None
    acknowledge: Callable[[], None] = field(default=lambda: None)

    def __post_init__(self) -> None:
        if (self.table is None) == (self.file is None):
            raise ValueError("a RawBatch has exactly one of `table` or `file`")


@runtime_checkable
class Source(Protocol):
    """A place rows come from, named by URL.

    ``read`` yields batches until the source is drained; with ``follow=True`` it keeps waiting
    for new data (new files, new messages) until ``stop()`` is called from another thread.
    Sources never drop a row: what cannot be decoded is yielded with ``_error`` set.
    """

    url: str

    def read(
        self, *, follow: bool = False, max_batch_rows: int = 100_000
    ) -> Iterator[RawBatch]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...
