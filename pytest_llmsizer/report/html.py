"""pytest-html 4.x integration: extra result-table columns, a per-item component table, and an accuracy summary.

Nothing here imports pytest-html at module level: ``HtmlHooks`` is registered by the plugin only when pytest-html is
active (its hooks are unknown otherwise), and ``item_extras`` imports ``pytest_html.extras`` when called.

Every string that comes from a profile or a record goes through ``html.escape``: cells and extras are raw HTML.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pytest_llmsizer.units import GiB
from pytest_llmsizer.validation.bands import ORDER

CAPACITY = {"kv_cache_tokens": "tokens", "max_concurrency": "x"}

COLUMNS: tuple[tuple[str, str], ...] = (
    ("llmsizer_model", "Model"),
    ("llmsizer_gpu", "GPU"),
    ("llmsizer_tp", "TP"),
    ("llmsizer_error", "Match basis: error %"),
    ("llmsizer_band", "Band"),
)
"""(column type, header text) of the columns added to the results table. pytest-html keeps the inner HTML of a
``col-<type>`` cell as the row's sort value and compares those strings, so numeric cells start with an HTML comment
holding a fixed-width key (invisible in the page) that sorts like the number. "Match basis: error %" holds the
quantity that set the band (the total when the profile measured one, else the worst of weights, KV cache and KV
tokens) and its error, e.g. ``weights -1.50``; integrity rows show model, GPU and TP only."""

COLUMN_INDEX = 2
"""Where the columns go: after pytest-html's Result and Test columns."""


def _e(value: Any) -> str:
    """Escaped text on one line (pytest-html reads a cell's sort value with a single-line regex)."""
    return html.escape(" ".join(str(value).split()))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def fmt_value(quantity: str, value: Any, *, signed: bool = False) -> str:
    """A row value in its unit: GiB (2^30 bytes) for memory, tokens for KV capacity, x for concurrency."""
    number = _num(value)
    if number is None:
        return "-" if value is None else _e(value)
    sign = "+" if signed else ""
    unit = CAPACITY.get(quantity)
    if unit == "tokens":
        return f"{number:{sign},.0f} tokens"
    if unit == "x":
        return f"{number:{sign}.2f}x"
    return f"{number / GiB:{sign}.3f} GiB"


def _status(row: dict[str, Any]) -> tuple[str, str]:
    if not row.get("gating"):
        why = "derived" if row.get("provenance") == "derived" else "not calculated"
        return "shown only (" + why + ")", "llmsizer-shown"
    return ("ok", "llmsizer-ok") if row.get("passed") else ("FAIL", "llmsizer-fail")


def _list_html(title: str, items: Iterable[Any]) -> str:
    items = list(items or [])
    if not items:
        return ""
    lis = "".join(f"<li>{_e(i)}</li>" for i in items)
    return f"<p><strong>{_e(title)}</strong></p><ul>{lis}</ul>"


TABLE_HEADER = ("component", "profiled", "calculated", "difference", "percent", "band", "tolerance", "status")


def component_table_html(record: Mapping[str, Any], *, table: bool = True) -> str:
    """The record's comparison rows as an HTML table (memory in GiB = 2^30 bytes, KV capacity in tokens,
    concurrency in x; difference = profiled - calculated; percent of profiled), then its recommendations and
    assumptions as lists. Every record string is escaped. ``table=False`` leaves out the table and the lists (a
    failed item's log already shows them) and keeps the title, the known-failure reason and the error."""
    parts = ['<div class="llmsizer">']
    title = " ".join(_e(record[k]) for k in ("profile_file", "model_id") if record.get(k))
    if record.get("calculator"):
        title += f" &mdash; calculator {_e(record['calculator'])}"
    if title:
        parts.append(f"<p><strong>{title}</strong></p>")
    if record.get("known_failure"):
        parts.append(f'<p class="llmsizer-known">known failure (tolerances.yaml): {_e(record["known_failure"])}</p>')
    if record.get("error"):
        parts.append(f'<p class="llmsizer-error">error: {_e(record["error"])}</p>')
    rows = record.get("rows") or []
    if not table:
        parts.append("</div>")
        return "".join(parts)
    if rows:
        head = "".join(f"<th>{h}</th>" for h in TABLE_HEADER)
        body = []
        for row in rows:
            quantity = str(row.get("quantity", ""))
            name = _e(quantity) + (f" (rank {_e(row['rank'])})" if row.get("rank") is not None else "")
            pct = _num(row.get("percent"))
            status, cls = _status(row)
            cells = (
                name,
                fmt_value(quantity, row.get("profiled")),
                fmt_value(quantity, row.get("calculated")),
                fmt_value(quantity, row.get("difference"), signed=True),
                "-" if pct is None else f"{pct:+.2f}%",
                _e(row.get("band") or "-"),
                "&plusmn;" + fmt_value(quantity, row.get("allowed")),
                f'<span class="{cls}">{_e(status)}</span>',
            )
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append(f'<table class="llmsizer-components"><thead><tr>{head}</tr></thead>'
                     f"<tbody>{''.join(body)}</tbody></table>")
    parts.append(_list_html("Recommendations", record.get("recommendations") or []))
    parts.append(_list_html("Assumptions", record.get("assumptions") or []))
    parts.append("</div>")
    return "".join(parts)


def item_extras(record: Mapping[str, Any] | None, *, table: bool = True) -> list[dict[str, Any]]:
    """pytest-html extras for one item: the component table (small, no plots), once: ``table=False`` for an item
    whose failure log prints it already. Empty without a record."""
    if not record:
        return []
    from pytest_html import extras  # lazily: pytest-html is optional

    return [extras.html(component_table_html(record, table=table))]


# --- results table columns ---------------------------------------------------------------------------------------


def _sort_key(value: float) -> str:
    """A fixed-width string whose lexicographic order is the numeric order, for |value| < 1e12."""
    shifted = min(max(value, -1e12 + 1), 1e12 - 1) + 1e12
    return f"{shifted:020.4f}"


def _cell(column: str, text: str = "", key: str | None = None) -> str:
    prefix = f"<!--{key}-->" if key is not None else ""
    return f'<td class="col-{column}">{prefix}{text}</td>'


def row_cells(record: dict[str, Any] | None, check: str = "accuracy") -> list[str]:
    """One cell per entry of ``COLUMNS``, empty cells when there is no record. ``check``: the item the row is
    (an integrity row shows model, GPU and TP, and leaves the accuracy columns empty)."""
    if not isinstance(record, dict):
        return [_cell(column) for column, _ in COLUMNS]
    model = record.get("model_id")
    gpu = record.get("gpu_type")
    count = record.get("gpu_count")
    gpu_text = "" if gpu is None else _e(gpu)
    if gpu is not None and isinstance(count, int) and count > 1:
        gpu_text = f"{count}&times; {gpu_text}"
    tp = record.get("tp_size")
    accuracy = check == "accuracy"
    pct = _num(record.get("primary_error_pct")) if accuracy else None
    basis = record.get("primary_quantity")
    band = record.get("match_quality") if accuracy else None
    band_key = str(ORDER.index(band)) if band in ORDER else ("9" if band else None)
    band_text = "" if band is None else _e(band)
    known = record.get("known_failure") if accuracy else None
    if known:
        band_text += f" (known failure: {_e(known)})"
    return [
        _cell("llmsizer_model", "" if model is None else _e(model)),
        _cell("llmsizer_gpu", gpu_text),
        _cell("llmsizer_tp", "" if tp is None else _e(tp), f"{tp:06d}" if isinstance(tp, int) else None),
        _cell("llmsizer_error", "" if pct is None else f"{_e(basis or '')} {pct:+.2f}".lstrip(),
              None if pct is None else _sort_key(pct)),
        _cell("llmsizer_band", band_text, band_key),
    ]


# --- summary -----------------------------------------------------------------------------------------------------


def _img(svg: str | None, alt: str) -> str:
    if not svg:
        return ""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (f'<div class="llmsizer-plot"><img alt="{_e(alt)}" style="max-width:100%" '
            f'src="data:image/svg+xml;base64,{data}"></div>')


def _metric_status(passed: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "no data"}[passed]


def summary_html(records: list[dict[str, Any]], metrics: Any, defaults: dict[str, Any] | None, *,
                 plots: bool = True) -> str:
    """The "LLM sizer accuracy" section: metrics table, band counts, worst profiles and the four plots."""
    parts = ['<div class="llmsizer-summary"><h2>LLM sizer accuracy</h2>']
    if metrics is None:
        parts.append(f"<p>{len(records)} profile record(s); no accuracy metrics.</p>")
    else:
        parts.append(f"<p>{_e(metrics.n_in_gate)} of {_e(metrics.n_records)} profile(s) in the gate "
                     f"({_e(metrics.n_known_failures)} known failure(s) and the profiles without a comparison are "
                     "left out).</p>")
        rows = "".join(
            f"<tr><td>{_e(m.name)}</td><td>{_e(m.target)}</td><td>{_e(m.current)}</td>"
            f"<td>{_metric_status(m.passed)}</td></tr>"
            for m in metrics.rows
        )
        parts.append("<table><thead><tr><th>metric</th><th>target</th><th>current</th><th>status</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
        if metrics.band_counts:
            bands = ", ".join(f"{_e(name)}: {_e(n)}" for name, n in metrics.band_counts.items())
            parts.append(f"<p><strong>Match quality bands:</strong> {bands}</p>")
        if metrics.worst:
            worst = "".join(
                f"<tr><td>{_e(w.get('profile_file'))}</td><td>{_e(w.get('quantity') or '-')}</td>"
                f"<td>{'-' if _num(w.get('percent')) is None else format(w['percent'], '+.2f')}</td>"
                f"<td>{_e(w.get('band') or '-')}</td></tr>"
                for w in metrics.worst
            )
            parts.append("<p><strong>Worst profiles</strong></p><table><thead><tr><th>profile</th><th>quantity</th>"
                         f"<th>error %</th><th>band</th></tr></thead><tbody>{worst}</tbody></table>")
    known = [r for r in records if r.get("accuracy_verdict") == "xfailed"]
    if known:
        items = "".join(f"<li>{_e(r.get('profile_file'))}: {_e(r.get('known_failure') or '-')}</li>" for r in known)
        parts.append(f"<details><summary>{len(known)} known failure(s) (tolerances.yaml), left out of the metrics "
                     f"and the plots</summary><ul>{items}</ul></details>")
    plotted = [r for r in records if r.get("accuracy_verdict") != "xfailed"]
    if plots and plotted:
        from pytest_llmsizer.report import plots as p

        left_out = f" ({len(known)} known failure(s) left out)" if known else ""
        parts.append(f"<p>Plots: {len(plotted)} profile(s){left_out}.</p>")
        parts.append(_img(p.calculated_vs_profiled(plotted, defaults or {}), "calculated vs profiled (GiB)"))
        parts.append(_img(p.error_distribution(plotted), "signed error per component (%)"))
        parts.append(_img(p.error_by_model_size(plotted), "|primary error| by model size (%)"))
        parts.append(_img(p.error_by_gpu_count(plotted), "|primary error| by GPU count (%)"))
    parts.append("</div>")
    return "".join(parts)


class HtmlHooks:
    """pytest-html hook implementations. Register only when pytest-html is active, e.g.
    ``config.pluginmanager.register(HtmlHooks(lambda: state), "llmsizer-html")``.

    ``get_state()`` returns an object with ``.records`` (profile_file -> merged record), ``.metrics``
    (``Metrics`` or None; computed here from the records and ``.tolerances.gate`` when None, as the plugin does:
    ``.selection`` says whether the run validated a selection), and ``.tolerances``.
    It is called when the summary is built (controller side, at session finish), so it may return live state.
    """

    def __init__(self, get_state: Callable[[], Any]) -> None:
        self._get_state = get_state

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        for offset, (column, title) in enumerate(COLUMNS):
            cells.insert(COLUMN_INDEX + offset, f'<th class="sortable" data-column-type="{column}">{title}</th>')

    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        cells_of = row_cells(getattr(report, "llmsizer", None), getattr(report, "llmsizer_check", "accuracy"))
        for offset, cell in enumerate(cells_of):
            cells.insert(COLUMN_INDEX + offset, cell)

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: Any) -> None:
        state = self._get_state()
        if state is None:
            return
        records_by_file = getattr(state, "records", None) or {}
        records = [records_by_file[k] for k in sorted(records_by_file)]
        # an HTML summary can be asked for before the gate ran (e.g. an interrupted run): same function, same result
        tolerances = getattr(state, "tolerances", None)
        metrics = getattr(state, "metrics", None)
        if metrics is None and records and tolerances is not None:
            from pytest_llmsizer.validation.metrics import compute_metrics

            metrics = compute_metrics(records, tolerances.gate, selection=bool(getattr(state, "selection", False)))
        defaults = getattr(tolerances, "defaults", None)
        prefix.append(summary_html(records, metrics, defaults))
