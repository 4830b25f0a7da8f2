"""Accuracy plots for the HTML report, as SVG strings.

Built with matplotlib's object-oriented ``Figure`` API (no pyplot, no global figure manager, no GUI backend), so the
functions are safe to call from any thread and never open a window. Every function takes profile records (see
``validation/record.py``) and returns an SVG document as text, or ``None`` when the records hold nothing to plot.

Output is deterministic: the SVG id salt is fixed, the date is left out of the metadata and point jitter is a fixed
sequence, so the same records give byte-identical SVG. Text is kept as ``<text>`` (``svg.fonttype = none``) rather
than glyph paths, which keeps the documents small.

Only gating rows with a calculated value count (``row["gating"]`` and ``row["calculated"] is not None``), like the
accuracy metrics. Memory is plotted in GiB (2^30 bytes); errors in percent of the profiled value.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pytest_llmsizer.units import GiB
from pytest_llmsizer.validation.tolerances import QUANTITIES, Tolerance

MEMORY_QUANTITIES = tuple(q for q in QUANTITIES if q not in ("kv_cache_tokens", "max_concurrency"))
"""The components plotted in GiB (everything except KV capacity in tokens and concurrency)."""

SIZE_GROUPS = ("small (< 10B)", "medium (10-40B)", "large (> 40B)", "unknown size")

_RC: dict[str, Any] = {
    "svg.hashsalt": "pytest-llmsizer",
    "svg.fonttype": "none",
    "font.size": 8.0,
    "axes.titlesize": 9.0,
    "path.simplify": True,
}
_METADATA = {"Date": None}
_OK_COLOR = "#1f77b4"
_BAD_COLOR = "#d62728"
_BAND_COLOR = "#2ca02c"


def _gating_rows(record: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for row in record.get("rows") or []:
        if row.get("gating") and row.get("calculated") is not None:
            yield row


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=_METADATA)
    return buf.getvalue()


def _render(build: Any, *args: Any) -> str | None:
    """Run ``build(*args) -> Figure | None`` under the report's rc settings and serialize it."""
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]  # matplotlib types rc keys as a Literal
        fig = build(*args)
        return None if fig is None else _to_svg(fig)


def _jitter(n: int, width: float = 0.3) -> list[float]:
    """A fixed, evenly spread offset sequence (golden-ratio steps): deterministic, unlike random jitter."""
    return [((i * 0.6180339887) % 1.0 - 0.5) * width for i in range(n)]


def _box_strip(ax: Axes, groups: list[tuple[str, list[float]]]) -> None:
    """Box plots with the individual points drawn over them, one group per x position."""
    positions = list(range(1, len(groups) + 1))
    ax.boxplot([values for _, values in groups], positions=positions, widths=0.6, showfliers=False,
               medianprops={"color": "#ff7f0e"}, manage_ticks=False)
    for pos, (_, values) in zip(positions, groups, strict=True):
        xs = [pos + j for j in _jitter(len(values))]
        ax.plot(xs, values, linestyle="none", marker="o", markersize=3, alpha=0.6, color=_OK_COLOR)
    ax.set_xticks(positions)
    ax.set_xticklabels([f"{label}\n(n={len(values)})" for label, values in groups])
    ax.set_xlim(0.4, len(groups) + 0.6)
    ax.grid(axis="y", linewidth=0.4, alpha=0.5)


# --- calculated vs profiled -------------------------------------------------------------------------------------


def _band_edges(tol: Tolerance, limit: float) -> tuple[list[float], list[float], list[float]]:
    """x, lower and upper edges of y = x +- max(abs_gib, rel * x) on [0, limit] (GiB); piecewise linear, so the
    corner where the absolute part stops dominating is the only point needed between the ends."""
    xs = [0.0, limit]
    if tol.rel > 0 and 0 < tol.abs_gib / tol.rel < limit:
        xs.insert(1, tol.abs_gib / tol.rel)
    half = [max(tol.abs_gib, tol.rel * x) for x in xs]
    return xs, [x - h for x, h in zip(xs, half, strict=True)], [x + h for x, h in zip(xs, half, strict=True)]


def _outside(tol: Tolerance, profiled: float, calculated: float) -> bool:
    """Outside the drawn band (GiB): |profiled - calculated| > max(abs_gib, rel x |profiled|). This is the default
    tolerance; a profile under an override may pass or fail differently (its table row says which)."""
    return abs(profiled - calculated) > max(tol.abs_gib, tol.rel * abs(profiled)) * (1 + 1e-9)


def _calc_vs_prof_points(records: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    points: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        for row in _gating_rows(record):
            if row.get("quantity") not in MEMORY_QUANTITIES:
                continue
            prof, calc = _finite(row.get("profiled")), _finite(row.get("calculated"))
            if prof is None or calc is None:
                continue
            points.setdefault(row["quantity"], []).append((prof / GiB, calc / GiB))
    return {q: points[q] for q in MEMORY_QUANTITIES if q in points}


def _build_calc_vs_prof(records: list[dict[str, Any]], tolerances: Mapping[str, Tolerance]) -> Figure | None:
    points = _calc_vs_prof_points(records)
    if not points:
        return None
    ncols = min(len(points), 4)
    nrows = math.ceil(len(points) / ncols)
    fig = Figure(figsize=(2.9 * ncols, 2.8 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(points):]:
        ax.set_visible(False)
    for ax, (quantity, pts) in zip(axes.flat, points.items(), strict=False):
        tol = tolerances.get(quantity) or Tolerance()
        limit = max(max(max(p, c) for p, c in pts) * 1.08, tol.abs_gib * 2, 1e-3)
        xs, lower, upper = _band_edges(tol, limit)
        fill = ax.fill_between(xs, lower, upper, color=_BAND_COLOR, alpha=0.15, linewidth=0,
                               label=f"tolerance ±max({tol.abs_gib:g} GiB, {tol.rel * 100:g}%)")
        fill.set_gid(f"band-{quantity}")
        (up,) = ax.plot(xs, upper, color=_BAND_COLOR, linewidth=0.8, linestyle="--")
        (lo,) = ax.plot(xs, lower, color=_BAND_COLOR, linewidth=0.8, linestyle="--")
        up.set_gid(f"band-upper-{quantity}")
        lo.set_gid(f"band-lower-{quantity}")
        (ident,) = ax.plot([0, limit], [0, limit], color="black", linewidth=0.8, label="y = x")
        ident.set_gid(f"identity-{quantity}")
        outside = [(p, c) for p, c in pts if _outside(tol, p, c)]
        inside = [(p, c) for p, c in pts if not _outside(tol, p, c)]
        if inside:
            ax.plot(*zip(*inside, strict=True), linestyle="none", marker="o", markersize=3.5, color=_OK_COLOR,
                    alpha=0.75, label=f"inside band ({len(inside)})")
        if outside:
            (bad,) = ax.plot(*zip(*outside, strict=True), linestyle="none", marker="x", markersize=5,
                             color=_BAD_COLOR, label=f"outside band ({len(outside)})")
            bad.set_gid(f"outside-{quantity}")
        ax.set_xlim(0, limit)
        ax.set_ylim(0, limit)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(quantity)
        ax.set_xlabel("profiled (GiB)")
        ax.set_ylabel("calculated (GiB)")
        ax.grid(linewidth=0.4, alpha=0.5)
        ax.legend(loc="upper left", fontsize=6, frameon=False)
    fig.suptitle("Calculated vs profiled per-GPU memory (GiB = 2^30 bytes); band: default tolerance")
    return fig


def calculated_vs_profiled(records: list[dict[str, Any]], tolerances: Mapping[str, Tolerance]) -> str | None:
    """One panel per memory component with data: calculated against profiled (GiB), the y = x line, the default
    tolerance band y = x +- max(abs_gib, rel x) (filled, with dashed edges) and the points outside that band drawn
    as red crosses. ``tolerances`` maps quantity -> Tolerance (``Tolerances.defaults``)."""
    return _render(_build_calc_vs_prof, records, tolerances)


# --- error distribution ------------------------------------------------------------------------------------------


def _build_error_distribution(records: list[dict[str, Any]]) -> Figure | None:
    by_quantity: dict[str, list[float]] = {}
    for record in records:
        for row in _gating_rows(record):
            pct = _finite(row.get("percent"))
            if pct is not None:
                by_quantity.setdefault(str(row.get("quantity")), []).append(pct)
    if not by_quantity:
        return None
    order = [q for q in QUANTITIES if q in by_quantity] + sorted(q for q in by_quantity if q not in QUANTITIES)
    groups = [(q, by_quantity[q]) for q in order]
    fig = Figure(figsize=(max(4.0, 1.1 * len(groups) + 1.5), 3.6), layout="constrained")
    ax = fig.subplots()
    zero = ax.axhline(0, color="black", linewidth=0.8)
    zero.set_gid("zero-line")
    _box_strip(ax, groups)
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_ylabel("signed error (%)")
    ax.set_title("Signed error per component, % = (profiled - calculated) / profiled x 100")
    return fig


def error_distribution(records: list[dict[str, Any]]) -> str | None:
    """Box plot with points of the signed percent error (profiled - calculated) / profiled per component, with a
    line at 0. Positive means the calculator under-estimates."""
    return _render(_build_error_distribution, records)


# --- primary error by group --------------------------------------------------------------------------------------


def _primary_abs(record: Mapping[str, Any]) -> float | None:
    pct = _finite(record.get("primary_error_pct"))
    return None if pct is None else abs(pct)


def size_group(params: Any) -> str:
    """small < 10B, medium 10-40B, large > 40B parameters; unknown when the record has no parameter count."""
    value = _finite(params)
    if value is None or value <= 0:
        return SIZE_GROUPS[3]
    if value < 10e9:
        return SIZE_GROUPS[0]
    if value <= 40e9:
        return SIZE_GROUPS[1]
    return SIZE_GROUPS[2]


def _build_grouped(groups: list[tuple[str, list[float]]], title: str, xlabel: str) -> Figure | None:
    if not groups:
        return None
    fig = Figure(figsize=(max(3.5, 1.2 * len(groups) + 1.5), 3.4), layout="constrained")
    ax = fig.subplots()
    _box_strip(ax, groups)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("|primary error| (%)")
    ax.set_title(title)
    return fig


def error_by_model_size(records: list[dict[str, Any]]) -> str | None:
    """|primary error %| (the record's ``primary_error_pct``: total, else the worst of weights / KV) by model size
    group: small < 10B, medium 10-40B, large > 40B parameters, and unknown size."""
    grouped: dict[str, list[float]] = {}
    for record in records:
        value = _primary_abs(record)
        if value is not None:
            grouped.setdefault(size_group(record.get("model_params")), []).append(value)
    groups = [(g, grouped[g]) for g in SIZE_GROUPS if g in grouped]
    return _render(_build_grouped, groups, "|Primary error| by model size, %", "model size (parameters)")


def error_by_gpu_count(records: list[dict[str, Any]]) -> str | None:
    """|primary error %| by the profile's GPU count (unknown count as its own group)."""
    grouped: dict[int | None, list[float]] = {}
    for record in records:
        value = _primary_abs(record)
        if value is None:
            continue
        count = record.get("gpu_count")
        key = count if isinstance(count, int) and not isinstance(count, bool) else None
        grouped.setdefault(key, []).append(value)
    keys = sorted(k for k in grouped if k is not None) + ([None] if None in grouped else [])
    groups = [("unknown" if k is None else f"{k} GPU{'s' if k != 1 else ''}", grouped[k]) for k in keys]
    return _render(_build_grouped, groups, "|Primary error| by GPU count, %", "GPUs")
