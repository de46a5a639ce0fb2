"""`decisionloop demo`: the Telco churn loop end to end, narrated."""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.table import Table

from decisionloop.cli.data_commands import report_table
from decisionloop.cli.output import err, loop_progress, loop_summary, out
from decisionloop.data.report import BatchReport


def _serve_once(platform: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """Start the HTTP service on a free loopback port, send one request, stop it."""
    import socket

    import uvicorn

    from decisionloop.serving.http import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/churn/predict",
            data=json.dumps(payload).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 (loopback)
            answer: dict[str, Any] = json.loads(response.read())
        answer["url"] = f"POST http://127.0.0.1:{port}/v1/models/churn/predict"
        return answer
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run_demo(folder: Path | None) -> None:

    from decisionloop.examples.telco import create_telco_project
    from decisionloop.platform import Platform

    folder = (folder or Path(tempfile.mkdtemp(prefix="decisionloop-demo-"))).resolve()
    out.rule("DecisionLoop demo: customer churn (IBM Telco, 7,043 customers)")
    project_file = create_telco_project(folder, force=True, broken_records=True)
    out.print(
        f"1. [bold]init[/]      wrote {project_file}\n"
        "              (profiled columns, target churn=Yes, gate test_auc >= 0.80;\n"
        "              customer features through the feature store: the customer_profile\n"
        "              view, a derived charges_per_tenure_month, the churn_model service)"
    )

    with Platform.open(folder) as platform:
        out.print(
            "2. [bold]run[/]       the loop: ingest -> validate -> features (point in time)"
            " -> train -> evaluate -> gate -> register -> promote"
        )
        with loop_progress() as progress:
            result = platform.run(progress)
        out.print(loop_summary(result))
        dataset = "customers" if "customers" in platform.settings.datasets else None
        dataset = dataset or platform.settings.name
        batches = platform.metadata.ingestion.list_batches(dataset, limit=1)
        if batches:
            out.print(
                f"   validation report of the {dataset} file "
                "(bad records are quarantined, not lost):"
            )
            out.print(report_table(BatchReport.from_dict(batches[0].report)))
            for entry in platform.metadata.ingestion.list_quarantine(dataset, limit=5):
                out.print(
                    f"   quarantined #{entry.id} {entry.position}: {'; '.join(entry.reasons)}"
                )

        labels = platform.data.read_snapshot().to_pandas().sample(8, random_state=7)
        rows = [{"customer_id": str(c)} for c in labels["customer_id"]]
        scored, online = platform.predict_entities("churn@champion", rows)
        table = Table(
            title=f"3. predict: 8 customers scored by churn/{scored.version}, "
            "their features looked up online by id"
        )
        for column in (
            "customer",
            "tenure",
            "contract",
            "monthly $",
            "$/month of tenure",
            "P(churn)",
            "label",
            "actual",
        ):
            table.add_column(column)
        features = online.records()
        for (_, row), found, p, label in zip(
            labels.iterrows(), features, scored.probabilities, scored.labels, strict=True
        ):
            per_month = found.get("charges_per_tenure_month")
            table.add_row(
                str(row["customer_id"]),
                str(found["tenure"]),
                str(found["contract"]),
                f"{found['monthly_charges']:.2f}",
                "" if per_month is None else f"{per_month:.2f}",
                f"{p:.3f}",
                label,
                str(row["churn"]),
            )
        out.print(table)

        answer = _serve_once(platform, {"entity_ids": [r["customer_id"] for r in rows[:2]]})
        out.print(f"4. [bold]serve[/]     {answer.pop('url')} answered:")
        out.print_json(data=answer)

        from decisionloop.cards import build_card, render_card

        card_path = folder / "churn-model-card.html"
        card_path.write_text(
            render_card(build_card(platform, "churn@champion"), "html"), encoding="utf-8"
        )
        out.print(f"5. [bold]card[/]      the model card (the chapter's churn card): {card_path}")
    aliases = ", ".join("@" + a for a in result.aliases) or "none"
    out.rule("what happened")
    out.print(
        f"- data snapshot {result.snapshot_hash[:16]}... ({result.rows} rows) stored and recorded\n"
        f"- churn/{result.version} trained (test AUC {result.metrics['test_auc']:.3f}), "
        f"gates {'passed' if result.promoted else 'failed'}, aliases: {aliases}\n"
        f"- every step is in the audit log of {folder / '.decisionloop' / 'metadata.db'}\n"
        f"- try: decisionloop models show churn -p {folder}\n"
        f"       decisionloop card churn@champion -p {folder}\n"
        f"       decisionloop features get churn_model C00001 -p {folder}\n"
        f"       decisionloop features check-skew churn_model -p {folder}\n"
        f"       decisionloop serve -p {folder}"
    )
    err.print(f"project folder: {folder}")
