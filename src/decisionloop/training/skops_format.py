"""scikit-learn models as skops archives: reproducible bytes, and loading only listed types.

``skops.io`` saves an estimator as a zip of ``schema.json`` plus ``.npy`` arrays, with no
pickle. Two things are added here: the archive is rewritten canonically (skops names objects
by their memory address and stamps the current time, so equal models would give different
bytes), and loading first lists every type the archive names and refuses any that is not in
the caller's exact allowlist, before skops builds a single object.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from decisionloop.errors import IntegrityError

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
SCHEMA = "schema.json"


def dumps(estimator: Any) -> bytes:
    """The estimator as a canonical skops archive: same model, same bytes."""
    import skops.io as sio

    raw = sio.dumps(estimator)
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        schema = json.loads(archive.read(SCHEMA))
        files = {name: archive.read(name) for name in archive.namelist() if name != SCHEMA}
    renamed_ids: dict[int, int] = {}
    renamed_files: dict[str, str] = {}

    def rename(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("__id__"), int):
                node["__id__"] = renamed_ids.setdefault(node["__id__"], len(renamed_ids))
            if isinstance(node.get("file"), str) and node["file"] in files:
                node["file"] = renamed_files.setdefault(node["file"], f"{len(renamed_files)}.npy")
            for value in node.values():
                rename(value)
        elif isinstance(node, list):
            for value in node:
                rename(value)

    rename(schema)
    if set(renamed_files) != set(files):
        raise IntegrityError("the skops archive holds files its schema does not name")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        _write(archive, SCHEMA, json.dumps(schema, sort_keys=True).encode())
        for old, new in sorted(renamed_files.items(), key=lambda item: int(item[1][:-4])):
            _write(archive, new, files[old])
    return out.getvalue()


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def archive_types(data: bytes) -> set[str]:
    """Every ``module.Class`` the archive's schema names."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read(SCHEMA))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IntegrityError("the model is not a readable skops archive") from exc
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


def loads(data: bytes, *, trusted: frozenset[str]) -> Any:
    """Load an archive whose every type is in ``trusted``; anything else is refused."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    unexpected = archive_types(data) - trusted
    if unexpected:
        raise IntegrityError(
            f"the model names types it may not hold: {', '.join(sorted(unexpected))}",
            hint="the artifact was not written by this trainer; never load it",
        )
    try:
        return sio.loads(data, trusted=sorted(trusted))
    except UntrustedTypesFoundException as exc:
        raise IntegrityError(f"the model holds untrusted types: {exc}") from exc
