"""Accuracy over time: the guide's success metrics for every run in some CSV records, in time order, and a plot.

Each run (rows sharing a timestamp, see ``report/runs.py``) becomes one :class:`TrendPoint`. The plot is built with
matplotlib's object-oriented ``Figure`` API (no pyplot, no GUI backend), like ``report/plots.py``: the error metrics
(mean |total error|, weights, KV cache) on the left, the band shares (Good or better, Poor) on the right, each with
its target as a dashed line.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib
from matplotlib.figure import Figure

from pytest_llmsizer.report.runs import Run
from pytest_llmsizer.safe_io import atomic_replace
from pytest_llmsizer.validation.tolerances import GateConfig

ERROR_METRICS = ("mean |total error|", "weights accuracy (mean |error|)", "KV cache accuracy (mean |error|)")
SHARE_METRICS = ("Good or better", "Poor")
SHORT = {"mean |total error|": "total |err|", "weights accuracy (mean |error|)": "weights |err|",
         "KV cache accuracy (mean |error|)": "KV |err|", "Good or better": "Good+", "Poor": "Poor"}

Format = Literal["text", "markdown", "json"]


@dataclass(frozen=True)
class TrendPoint:
    index: int
    timestamp: str | None
    source: str
    n_profiles: int
    n_rated: int
    """Profiles with a match band, known failures excluded (the band shares' n)."""
    values: dict[str, float | None]
    """Metric name -> value (percent), None when the run had no data for it."""
    targets: dict[str, float]
    """Metric name -> the gate's limit."""


def trend(runs: list[Run], gate: GateConfig | None = None) -> list[TrendPoint]:
    """One point per run, oldest first (runs without a timestamp first, in the order given)."""
    points = []
    floor = None
    ordered = sorted(enumerate(runs), key=lambda ir: (ir[1].when is not None, ir[1].when or floor, ir[0]))
    for i, (_, run) in enumerate(ordered, 1):
        metrics = run.metrics(gate)
        rated = next((m.n for m in metrics if m.name == "Good or better"), 0)
        points.append(TrendPoint(
            index=i, timestamp=run.timestamp, source=run.source, n_profiles=len(run.rows), n_rated=rated,
            values={m.name: m.current for m in metrics if m.name in ERROR_METRICS + SHARE_METRICS},
            targets={m.name: m.limit for m in metrics if m.name in ERROR_METRICS + SHARE_METRICS},
        ))
    return points


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def render_trend(points: list[TrendPoint], fmt: Format = "text") -> str:
    """The trend as a table (text or markdown) or JSON."""
    if fmt == "json":
        return json.dumps([asdict(p) for p in points], indent=2)
    names = ERROR_METRICS + SHARE_METRICS
    headers = ["run", "timestamp", "profiles", "rated", *(SHORT[n] for n in names), "source"]
    rows = [[str(p.index), p.timestamp or "-", str(p.n_profiles), str(p.n_rated),
             *(_fmt(p.values.get(n)) for n in names), p.source] for p in points]
    if points:
        targets = points[-1].targets
        rows.append(["target", "", "", "", *(f"{'>' if n == 'Good or better' else '<'} {targets[n]:g}%"
                                             if n in targets else "-" for n in names), ""])
    if fmt == "markdown":
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def trend_figure(points: list[TrendPoint]) -> Figure | None:
    """Error metrics and band shares over the runs; None when there is nothing to plot."""
    if not points or not any(v is not None for p in points for v in p.values.values()):
        return None
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    xs = [p.index for p in points]
    labels = [(p.timestamp or "?")[:19].replace("T", "\n") for p in points]
    for ax, names, title in ((left, ERROR_METRICS, "mean |error| (% of profiled)"),
                             (right, SHARE_METRICS, "share of rated profiles (%)")):
        for i, name in enumerate(names):
            color = f"C{i}"
            pts = [(x, p.values.get(name)) for x, p in zip(xs, points, strict=True) if p.values.get(name) is not None]
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", color=color, label=SHORT[name])
            target = points[-1].targets.get(name)
            if target is not None:
                ax.axhline(target, color=color, linestyle="--", linewidth=0.8, alpha=0.7)
        ax.set_title(title + "; dashed: targets")
        ax.set_xticks(xs, labels, fontsize=6)
        ax.set_xlabel("run (UTC)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def _render(points: list[TrendPoint], fmt: str) -> bytes | None:
    with matplotlib.rc_context({"svg.hashsalt": "pytest-llmsizer", "svg.fonttype": "none", "font.size": 8.0}):
        fig = trend_figure(points)
        if fig is None:
            return None
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else {"Software": None}, dpi=110)
        return buf.getvalue()


def trend_svg(points: list[TrendPoint]) -> str | None:
    """The plot as an SVG document (for the HTML report), or None."""
    data = _render(points, "svg")
    return None if data is None else data.decode("utf-8")


def write_trend_png(points: list[TrendPoint], path: str | Path) -> bool:
    """Write the plot as PNG; False (and no file) when there is nothing to plot."""
    data = _render(points, "png")
    if data is None:
        return False
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_replace(target, data)  # a private temporary name, never a half-written image or a followed link
    return True


def points_json(points: list[TrendPoint]) -> list[dict[str, Any]]:
    return [asdict(p) for p in points]
