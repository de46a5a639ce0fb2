"""Data sources: whole-file reads for the training loop, and batch sources for ingestion.

``read_table`` reads one local file into a DataFrame. The batch sources yield
:class:`~decisionloop.data.batches.RawBatch` es: :class:`FileSource` (one file),
:class:`FolderSource` (every file in a folder, optionally following new ones) and
:class:`PostgresSource` (a read-only query). :func:`open_source` picks one by URL scheme
through the ``decisionloop.sources`` entry points.
"""

from __future__ import annotations

from decisionloop.data.sources.files import DEFAULT_PATTERN, FileSource, FolderSource, never_done
from decisionloop.data.sources.postgres import PostgresSource
from decisionloop.data.sources.registry import (
    SOURCE_GROUP,
    SourceFactory,
    open_source,
    source_factories,
    source_scheme,
)
from decisionloop.data.sources.table import FORMATS, local_path, read_table

__all__ = [
    "DEFAULT_PATTERN",
    "FORMATS",
    "SOURCE_GROUP",
    "FileSource",
    "FolderSource",
    "PostgresSource",
    "SourceFactory",
    "local_path",
    "never_done",
    "open_source",
    "read_table",
    "source_factories",
    "source_scheme",
]
