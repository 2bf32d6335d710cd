"""Renders reports/summary.html from the stored results: a plain table for now.

Each cell's latest row (per machine) is shown with its status in colour, so what is wrong,
unsupported or over budget is as visible as what is fast.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from jinja2 import Environment, select_autoescape

from harness.machine import ROOT

REPORTS = ROOT / "reports"
COLOURS = {"ok": "#d8f0d8", "wrong": "#f4b6b6", "error": "#f4b6b6", "unsupported": "#eeeeee",
           "unavailable": "#eeeeee", "over_budget": "#fbe7b5"}

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nnladder summary</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td.l{text-align:left}</style>
</head><body><h1>nnladder summary</h1>
{% if not rows %}<p>No results yet: run <code>python -m harness run</code>.</p>{% else %}
<p>{{ rows|length }} cells, latest result of each, from {{ runs }} run(s).</p>
<table><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in rows %}<tr style="background:{{ colours.get(r.status, '#fff') }}">
{% for c in columns %}<td class="{{ 'l' if c in left else '' }}">{{ r[c] }}</td>{% endfor %}
</tr>{% endfor %}</table>{% endif %}</body></html>
"""
COLUMNS = ["machine", "impl", "workload", "size", "phase", "status", "t_median_s",
           "gflops_per_s", "rel_err", "peak_mem_bytes", "reason"]


def latest(table: pd.DataFrame) -> pd.DataFrame:
    """The newest row of every (machine, impl, workload, size, phase) cell."""
    if table.empty:
        return table
    keys = ["machine", "impl", "workload", "size", "phase"]
    return table.sort_values("timestamp").drop_duplicates(keys, keep="last").sort_values(keys)


def render(table: pd.DataFrame, out: Path | None = None) -> Path:
    out = Path(out or REPORTS / "summary.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    cells = latest(table)
    rows = [] if cells.empty else cells.reindex(columns=COLUMNS).fillna("").to_dict("records")
    env = Environment(autoescape=select_autoescape(default=True))
    html = env.from_string(TEMPLATE).render(
        rows=rows, columns=COLUMNS, colours=COLOURS, left={"impl", "workload", "size", "reason"},
        runs=table["run_id"].nunique() if not table.empty else 0)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(html)
    tmp.replace(out)
    return out
