"""A model card as Markdown (laid out like the chapter's card), self-contained HTML (inline
CSS, plots as inline PNG data, every user string escaped) or JSON."""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Literal

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    from decisionloop.cards.model_card import ModelCard

__all__ = [
    "CardFormat",
    "feature_set_text",
    "render_card",
    "render_html",
    "render_json",
    "render_markdown",
    "training_data_text",
]

CardFormat = Literal["md", "html", "json"]
NOT_MEASURED = "not measured yet"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _month(text: str) -> str:
    return datetime.fromisoformat(text).strftime("%b-%Y")


def training_data_text(card: ModelCard) -> str:
    """``5,634 customer records for training (Jan-2024 to Dec-2024)``: rows and period."""
    params, lineage = card.model_parameters, card.model_details.lineage
    noun = (params.entity or "").removesuffix("_id").removesuffix("_ref").replace("_", " ")
    records = f"{noun} records" if noun else "records"
    rows = params.training_rows if params.training_rows is not None else lineage.snapshot_rows
    text = f"{rows:,} {records} for training" if rows is not None else f"unknown {records}"
    if lineage.snapshot_rows is not None:
        text += f" of {lineage.snapshot_rows:,} in the snapshot"
    if lineage.data_start and lineage.data_end:
        period = f"{_month(lineage.data_start)} to {_month(lineage.data_end)}"
    elif lineage.snapshot_created:
        period = (
            f"as of the snapshot of {_month(lineage.snapshot_created)}: "
            "no event-time column to date the rows"
        )
    else:
        period = "period unknown"
    return f"{text} ({period})"


def feature_set_text(card: ModelCard) -> str:
    """``45 features from 19 columns (numeric: 5; categorical (one-hot): 38 from 12; ...)``."""
    params = card.model_parameters
    groups = "; ".join(
        f"{g.name}: {g.features}"
        + (f" from {len(g.columns)} columns" if g.features != len(g.columns) else "")
        for g in params.feature_groups
    )
    text = f"{params.feature_count} features from {params.input_columns} columns"
    return f"{text} ({groups})" if groups else text


def _headline(card: ModelCard) -> list[tuple[str, str]]:
    """The chapter's Performance lines: AUC, accuracy, statistical parity (and ours)."""
    lines = []
    for name, label in (("auc", "AUC"), ("accuracy", "Accuracy"), ("r2", "R2"), ("rmse", "RMSE")):
        metric = card.metric(name)
        if metric is None:
            continue
        text = f"{_fmt(metric.train)} (Train), {_fmt(metric.test)} (Test)"
        if metric.interval is not None:
            text += f", test interval {_fmt(metric.interval[0])} to {_fmt(metric.interval[1])}"
        lines.append((label, text))
    analysis = card.quantitative_analysis
    if analysis.statistical_parity is not None:
        lines.append(
            (
                "Fairness Metric (Statistical Parity)",
                f"{analysis.statistical_parity:.2f} (lowest selection-rate ratio between "
                f"groups, on {analysis.statistical_parity_column})",
            )
        )
    elif card.model_parameters.task == "classification":
        lines.append(("Fairness Metric (Statistical Parity)", NOT_MEASURED))
    if analysis.expected_calibration_error is not None:
        lines.append(("Calibration (ECE)", f"{analysis.expected_calibration_error:.3f}"))
    return lines


def _details_lines(card: ModelCard) -> list[tuple[str, str]]:
    details = card.model_details
    version = f"{details.version} ({details.status}"
    version += f", @{', @'.join(details.aliases)})" if details.aliases else ")"
    lines = [
        ("ID", details.version_id),
        ("Version", version),
        ("Algorithm", details.algorithm),
        ("Training Data", training_data_text(card)),
        ("Feature Set", feature_set_text(card)),
    ]
    params = card.model_parameters
    if params.target:
        target = params.target + (f" = {params.positive}" if params.positive else "")
        lines.append(("Predicts", f"{target} ({params.task})"))
    if details.description:
        lines.append(("Description", details.description))
    lines.append(("Owners", ", ".join(details.owners) or "not set"))
    lines.append(("Created", details.created))
    return lines


def _lineage_lines(card: ModelCard) -> list[tuple[str, str]]:
    lineage = card.model_details.lineage
    rows = f" ({lineage.snapshot_rows:,} rows)" if lineage.snapshot_rows is not None else ""
    period = (
        f"{lineage.data_start} to {lineage.data_end} ({lineage.timestamp_column})"
        if lineage.data_start
        else "no event-time column"
    )
    return [
        ("Run", lineage.run_id or "not recorded"),
        ("Data snapshot", f"{lineage.snapshot_hash or 'not recorded'}{rows}"),
        ("Snapshot taken", lineage.snapshot_created or "not recorded"),
        ("Data period", period),
        ("Code version", lineage.code_version or "not recorded (no git repository)"),
        ("Environment lock hash", lineage.environment_lock_hash or "not recorded"),
        ("Python", lineage.python or "not recorded"),
    ]


def _drift_text(card: ModelCard) -> str:
    drift = card.considerations.drift
    if drift is None:
        return NOT_MEASURED
    columns = ", ".join(drift.drifted_columns) or "none"
    verdict = "drift" if drift.dataset_drift else "no data set drift"
    return f"{verdict}: {drift.share_drifted:.0%} of columns drifted ({columns})"


# -- Markdown -----------------------------------------------------------------------------------


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(card: ModelCard) -> str:
    """The card laid out like the chapter's: Model Details, Performance, Limitations, Usage
    Notes, then Gates, Lineage and Business Impact."""
    out = [f"# Model Card \u2013 {card.model_details.name}", "", "## 1. Model Details"]
    out += [f"- **{label}**: {value}" for label, value in _details_lines(card)]
    out += ["", "## 2. Performance"]
    out += [f"- **{label}**: {value}" for label, value in _headline(card)]
    analysis = card.quantitative_analysis
    if analysis.evaluation_rows:
        out.append(f"- **Evaluated on**: {analysis.evaluation_rows:,} held-out test rows")
    if analysis.metrics:
        out += ["", "| metric | train | test |", "|---|---|---|"]
        out += [f"| {m.name} | {_fmt(m.train, 4)} | {_fmt(m.test, 4)} |" for m in analysis.metrics]
    for column in analysis.fairness:
        out += [
            "",
            f"Fairness by {_cell(column.column)}: statistical parity ratio "
            f"{_fmt(column.statistical_parity_ratio)}, four-fifths rule "
            f"{column.four_fifths_rule or 'n/a'}",
            "",
            "| group | rows | selection rate | recall | AUC |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {_cell(g['group'])} | {g['count']:,} | {_fmt(g['selection_rate'])} | "
            f"{_fmt(g['true_positive_rate'])} | {_fmt(g['auc'])} |"
            for g in column.groups
        ]
    if analysis.feature_importance:
        top = ", ".join(name for name, _ in analysis.feature_importance[:5])
        out += ["", f"Most important features ({analysis.importance_type}): {top}"]
    considerations = card.considerations
    out += ["", "## 3. Limitations"]
    out += [f"- {text}" for text in considerations.limitations] or ["- none found"]
    usage = considerations.usage
    out += ["", "## 4. Usage Notes", f"- Deploy only in the *{usage.namespace}* namespace."]
    out.append(f"- Rate limit: {usage.rate_limit}.")
    if usage.retrain_conditions:
        out.append(f"- Monitor accuracy drift; {'; '.join(usage.retrain_conditions)}.")
    out += [f"- {note}" for note in usage.notes]
    out.append(f"- Drift: {_drift_text(card)}.")
    out += ["", "## 5. Gates", "", "| gate | value | needs | severity | result |"]
    out.append("|---|---|---|---|---|")
    out += [
        f"| {_cell(g.metric)} ({g.kind}) | {_fmt(g.value, 4)} | {_cell(g.bound)} | "
        f"{g.severity} | {'pass' if g.passed else 'FAIL'} |"
        for g in card.gates
    ] or ["| none declared | | | | |"]
    out += ["", "## 6. Lineage"]
    out += [f"- **{label}**: {value}" for label, value in _lineage_lines(card)]
    out += ["", "## 7. Business Impact", f"- {card.business_impact or NOT_MEASURED}", ""]
    return "\n".join(out)


# -- HTML ---------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:960px;
color:#111827;padding:0 1rem}
h1{font-size:1.7rem;border-bottom:2px solid #2563eb;padding-bottom:.3rem}
h2{font-size:1.2rem;margin-top:2rem;color:#1e3a8a}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}
dd{margin:0}table{border-collapse:collapse;margin:.6rem 0}
td,th{border:1px solid #d1d5db;padding:.25rem .6rem;text-align:left}th{background:#f3f4f6}
.pass{color:#15803d;font-weight:600}.fail{color:#b91c1c;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots img{max-width:100%;border:1px solid #e5e7eb}
code{background:#f3f4f6;padding:0 .2rem}
"""


def _dl(lines: list[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in lines)
    return f"<dl>{items}</dl>"


def _table(head: list[str], rows: list[list[str]]) -> str:
    top = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{top}</tr>{body}</table>"


def _img(plots: dict[str, str], name: str, alt: str) -> str:
    if name not in plots:
        return ""
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{plots[name]}">'


def render_html(card: ModelCard) -> str:
    """One self-contained page: inline CSS, plots as PNG data URIs, no scripts, no links out;
    every string from the project (names, descriptions, tags, groups) is escaped."""
    from decisionloop.cards.plots import card_plots

    plots = card_plots(card)
    analysis, considerations = card.quantitative_analysis, card.considerations
    usage = considerations.usage
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Model Card \u2013 {escape(card.model_details.version_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Model Card \u2013 {escape(card.model_details.name)}</h1>",
        "<h2>1. Model Details</h2>",
        _dl(_details_lines(card)),
        "<h2>2. Performance</h2>",
        _dl(_headline(card)),
        _table(
            ["metric", "train", "test"],
            [[m.name, _fmt(m.train, 4), _fmt(m.test, 4)] for m in analysis.metrics],
        ),
        '<div class="plots">',
        _img(plots, "roc", "ROC curve"),
        _img(plots, "calibration", "calibration curve"),
        "</div>",
        '<div class="plots">',
        _img(plots, "importance", "feature importance"),
        _img(plots, "fairness", "selection rate per group"),
        "</div>",
    ]
    for column in analysis.fairness:
        parts.append(
            f"<p>Fairness by <code>{escape(column.column)}</code>: statistical parity ratio "
            f"{_fmt(column.statistical_parity_ratio)}, four-fifths rule "
            f"{escape(column.four_fifths_rule or 'n/a')}</p>"
        )
        parts.append(
            _table(
                ["group", "rows", "selection rate", "recall", "AUC"],
                [
                    [
                        str(g["group"]),
                        f"{g['count']:,}",
                        _fmt(g["selection_rate"]),
                        _fmt(g["true_positive_rate"]),
                        _fmt(g["auc"]),
                    ]
                    for g in column.groups
                ],
            )
        )
    parts.append("<h2>3. Limitations</h2><ul>")
    parts += [f"<li>{escape(text)}</li>" for text in considerations.limitations]
    parts.append("</ul><h2>4. Usage Notes</h2><ul>")
    parts.append(f"<li>Deploy only in the <em>{escape(usage.namespace)}</em> namespace.</li>")
    parts.append(f"<li>Rate limit: {escape(usage.rate_limit)}.</li>")
    if usage.retrain_conditions:
        parts.append(
            f"<li>Monitor accuracy drift; {escape('; '.join(usage.retrain_conditions))}.</li>"
        )
    parts += [f"<li>{escape(note)}</li>" for note in usage.notes]
    parts.append(f"<li>Drift: {escape(_drift_text(card))}.</li></ul>")
    parts.append(_img(plots, "drift", "drift by column"))
    parts.append("<h2>5. Gates</h2>")
    gate_rows = "".join(
        f"<tr><td>{escape(g.metric)} ({escape(g.kind)})</td><td>{_fmt(g.value, 4)}</td>"
        f"<td>{escape(g.bound)}</td><td>{escape(g.severity)}</td>"
        f'<td class="{"pass" if g.passed else "fail"}">{"pass" if g.passed else "FAIL"}</td></tr>'
        for g in card.gates
    )
    parts.append(
        "<table><tr><th>gate</th><th>value</th><th>needs</th><th>severity</th><th>result</th>"
        f"</tr>{gate_rows or '<tr><td colspan=5>none declared</td></tr>'}</table>"
    )
    parts += ["<h2>6. Lineage</h2>", _dl(_lineage_lines(card))]
    parts.append(
        f"<h2>7. Business Impact</h2><p>{escape(card.business_impact or NOT_MEASURED)}</p>"
    )
    parts.append("</body></html>\n")
    return "\n".join(part for part in parts if part)


# -- JSON ---------------------------------------------------------------------------------------


def render_json(card: ModelCard) -> str:
    return json.dumps(card.to_dict(), indent=2, allow_nan=False) + "\n"


def render_card(card: ModelCard, card_format: str = "md") -> str:
    """The card in ``md``, ``html`` or ``json``."""
    renderers = {"md": render_markdown, "html": render_html, "json": render_json}
    if card_format not in renderers:
        raise Invalid(f"unknown card format {card_format!r}", hint="use md, html or json")
    return renderers[card_format](card)
