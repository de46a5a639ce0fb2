"""Read a whole data file (CSV, Parquet or JSON records) into a DataFrame, with clear errors.

Used by ``init``, the CLI and the training loop; ingestion reads through the batch sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from decisionloop.errors import Invalid, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from decisionloop.data.batches import FileFormat

#: file suffix -> format, for every file kind DecisionLoop reads
FORMATS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
}


def local_path(source: str) -> Path:
    """The local path of a bare path or ``file://`` URL; other schemes are Invalid here."""
    if source.startswith("file://"):
        return Path(unquote(urlparse(source).path))
    if "://" in source:
        scheme = source.split("://", 1)[0]
        raise Invalid(
            f"data source scheme {scheme!r} is not supported yet: {source}",
            hint="use a local CSV or Parquet path",
        )
    return Path(source)


def read_table(source: str) -> pd.DataFrame:
    """Read a CSV, Parquet or JSON-records file; raise NotFound / Invalid with a fix hint."""
    import pandas as pd

    path = local_path(source)
    if not path.exists():
        raise NotFound(
            f"data file not found: {path}", hint="check the path (relative to the project folder)"
        )
    if path.is_dir():
        raise Invalid(f"{path} is a folder, not a data file", hint="name a .csv or .parquet file")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise Invalid(
            f"unsupported data file type {path.suffix or '(none)'!r}: {path}",
            hint="use .csv, .parquet or .json (records)",
        )
    if path.stat().st_size == 0:
        raise Invalid(f"data file is empty: {path}", hint="the file needs a header and rows")
    try:
        if kind == "csv":
            frame = pd.read_csv(path)
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, orient="records")
    except pd.errors.EmptyDataError as exc:
        raise Invalid(f"data file has no columns: {path}", hint="add a header row") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Invalid(
            f"cannot read {kind} file {path}: {first}",
            hint=f"check that the file is a valid, uncorrupted {kind} file",
        ) from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        if type(exc).__module__.startswith("pyarrow"):
            raise Invalid(
                f"cannot read {kind} file {path}: {str(exc).splitlines()[0]}",
                hint=f"check that the file is a valid, uncorrupted {kind} file",
            ) from exc
        raise
    if frame.shape[1] == 0:
        raise Invalid(f"data file has no columns: {path}", hint="add a header row")
    if len(frame) == 0:
        raise Invalid(f"data file has a header but no rows: {path}", hint="add data rows")
    frame.columns = [str(column) for column in frame.columns]
    return frame
