"""The data commands end to end: `ingest`, `data report|batches|snapshots` and the quarantine
(`list`, `show`, `replay`, `discard`), with their JSON output and their errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_cli_loop import cli

KINDS = ["retail", "online"]


def orders_csv(rows: int = 40) -> str:
    """`rows` orders; order 7 has the kind "phone" and order 23 the kind "fax" (not allowed)."""
    lines = ["id,amount,kind"]
    for i in range(1, rows + 1):
        kind = {7: "phone", 23: "fax"}.get(i, KINDS[i % 2])
        lines.append(f"{i},{i * 1.5},{kind}")
    return "\n".join(lines) + "\n"


def write_project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders.csv").write_text(orders_csv())
    document = {
        "name": "orders",
        "data": {
            "source": "orders.csv",
            "target": "kind",
            "columns": {
                "id": {"type": "integer", "nullable": False},
                "amount": {"type": "number", "min": 0},
                "kind": {"type": "string", "allowed": KINDS},
            },
            "contract": {"key": ["id"]},
        },
    }
    (folder / "decisionloop.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder


def as_json(*args: str) -> Any:
    return json.loads(cli(*args).stdout)


def one_error_line(*args: str) -> str:
    """Run a command that must fail as a user error: exit 2 and exactly one `error:` line."""
    result = cli(*args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A project whose orders file was ingested once: (folder, the `ingest --json` document)."""
    folder = write_project(tmp_path_factory.mktemp("cli-data") / "orders")
    return folder, as_json("ingest", str(folder), "--json")


def test_ingest_json_counts(ingested: tuple[Path, dict[str, Any]]) -> None:
    folder, document = ingested

    assert document["verdict"] == "warn"
    assert (document["rows_in"], document["rows_stored"]) == (40, 38)
    assert (document["rows_quarantined"], document["rows_skipped"]) == (2, 0)
    assert document["origin"].startswith(str(folder / "orders.csv") + "#sha256=")
    assert len(document["snapshot_hash"]) == 64
    assert len(document["batch_id"]) == 32
    # the same file again: nothing new
    assert as_json("ingest", str(folder), "--json") == []


def test_data_report_json(ingested: tuple[Path, dict[str, Any]]) -> None:
    folder, document = ingested

    latest = as_json("data", "report", "-p", str(folder), "--json")
    by_id = as_json("data", "report", document["batch_id"], "-p", str(folder), "--json")

    assert latest == by_id
    assert latest["batch_id"] == document["batch_id"]
    assert latest["verdict"] == "warn"
    assert latest["balanced"] is True
    assert (latest["rows_in"], latest["rows_stored"], latest["rows_quarantined"]) == (40, 38, 2)
    failing = {c["check"]: c for c in latest["checks"] if c["failed"]}
    assert list(failing) == ["kind: allowed"]
    assert failing["kind: allowed"]["failed"] == 2
    assert failing["kind: allowed"]["examples"] == ["'phone'", "'fax'"]


def test_data_report_text_names_the_failing_check(ingested: tuple[Path, dict[str, Any]]) -> None:
    folder, document = ingested

    output = cli("data", "report", "-p", str(folder)).stdout

    assert "WARN" in output
    assert "40 in = 38 stored + 2 quarantined + 0 skipped" in output
    assert "kind: allowed" in output
    assert f"batch {document['batch_id']}" in output


def test_data_batches_and_snapshots_json(ingested: tuple[Path, dict[str, Any]]) -> None:
    folder, document = ingested

    (batch,) = as_json("data", "batches", "-p", str(folder), "--json")
    (snapshot,) = as_json("data", "snapshots", "-p", str(folder), "--json")

    assert batch["id"] == document["batch_id"]
    assert batch["origin"] == document["origin"]
    assert (batch["verdict"], batch["rows_in"], batch["rows_stored"]) == ("warn", 40, 38)
    assert batch["rows_quarantined"] == 2
    assert batch["artifact_key"].startswith("offline/orders/ingest_date=")
    assert len(batch["sha256"]) == 64
    assert snapshot["id"] == document["snapshot_id"]
    assert snapshot["hash"] == document["snapshot_hash"]
    assert (snapshot["rows"], snapshot["files"], snapshot["parent_id"]) == (38, 1, None)
    assert snapshot["source"] == document["origin"]


def test_quarantine_list_and_show_json(ingested: tuple[Path, dict[str, Any]]) -> None:
    folder, document = ingested

    entries = as_json("data", "quarantine", "list", "-p", str(folder), "--json")
    shown = as_json(
        "data", "quarantine", "show", str(entries[0]["id"]), "-p", str(folder), "--json"
    )

    assert [e["position"] for e in entries] == ["orders.csv:line 8", "orders.csv:line 24"]
    assert [json.loads(e["payload"])["kind"] for e in entries] == ["phone", "fax"]
    assert {e["status"] for e in entries} == {"open"}
    assert {e["batch_id"] for e in entries} == {document["batch_id"]}
    assert shown == entries[0]
    assert shown["reasons"] == ["kind: allowed"]
    assert json.loads(shown["payload"]) == {"id": 7, "amount": 10.5, "kind": "phone"}
    assert (
        as_json("data", "quarantine", "list", "-p", str(folder), "--status", "replayed", "--json")
        == []
    )


def test_quarantine_discard_then_replay_after_fixing_the_contract(
    ingested: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(ingested[0], folder)
    phone, fax = as_json("data", "quarantine", "list", "-p", str(folder), "--json")

    discarded = cli(
        "data", "quarantine", "discard", str(fax["id"]), "-p", str(folder), "--reason", "x"
    )
    assert discarded.stdout.strip() == "discarded 1 entry"

    path = folder / "decisionloop.yaml"
    document = yaml.safe_load(path.read_text())
    document["data"]["columns"]["kind"]["allowed"].append("phone")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    (replayed,) = as_json("data", "quarantine", "replay", "-p", str(folder), "--json")

    assert replayed["verdict"] == "pass"
    assert (replayed["rows_in"], replayed["rows_stored"]) == (1, 1)
    assert replayed["origin"] == "replay of 1 quarantined row(s)"
    statuses = {
        e["id"]: (e["status"], e["resolution"])
        for e in as_json(
            "data", "quarantine", "list", "-p", str(folder), "--status", "all", "--json"
        )
    }
    assert statuses == {
        phone["id"]: ("replayed", f"batch {replayed['batch_id']}"),
        fax["id"]: ("discarded", "x"),
    }
    assert as_json("data", "quarantine", "list", "-p", str(folder), "--json") == []
    snapshots = as_json("data", "snapshots", "-p", str(folder), "--json")
    assert [s["rows"] for s in snapshots] == [39, 38]
    assert snapshots[0]["parent_id"] == snapshots[1]["id"]
    assert snapshots[0]["files"] == 2
    # nothing left to replay
    assert "nothing to replay" in one_error_line("data", "quarantine", "replay", "-p", str(folder))


def test_bad_input_exits_2_with_one_error_line(ingested: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = ingested

    scheme = one_error_line("ingest", str(folder), "--source", "ftp://example.com/orders.csv")
    missing = one_error_line("ingest", str(folder), "--source", "no-such-file.csv")
    mode = one_error_line("ingest", str(folder), "--mode", "wrong")
    entry = one_error_line("data", "quarantine", "show", "999999", "-p", str(folder))
    batch = one_error_line("data", "report", "no-such-batch", "-p", str(folder))

    assert "no data source for URL scheme 'ftp'" in scheme
    assert "not found" in missing
    assert "no-such-file.csv" in missing
    assert "unknown mode 'wrong'" in mode
    assert "no quarantine entry 999999" in entry
    assert "no batch 'no-such-batch'" in batch
    # nothing was recorded by the failed commands
    assert len(as_json("data", "batches", "-p", str(folder), "--json")) == 1
