"""Compare two runs of the validation: did the calculator (or the profiles) get better or worse?

The guide's loop ends in "track accuracy improvements over time". This module answers it for two runs: the deltas of
the success metrics, the profiles whose match band moved, and the profiles that appeared or disappeared. Profiles are
matched by their ``profile_file``. A *regression* is either

* a gated profile whose band got worse (gated: not a known failure in either run, and banded in both), or that lost
  its band (compared in the base run, not compared in the new one, and not a known failure there), or
* a gated success metric (mean |total error|, Good or better, Poor, weights, KV cache) worse by more than
  ``max_regression`` percentage points.

Pure: it takes :class:`~pytest_llmsizer.report.runs.Run` objects (rows as ``report.analyze.load_rows`` gives them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pytest_llmsizer.report.analyze import analyze
from pytest_llmsizer.report.runs import GATED_METRICS, LOWER_IS_BETTER, Run
from pytest_llmsizer.validation.bands import ORDER
from pytest_llmsizer.validation.tolerances import GateConfig

DEFAULT_MAX_REGRESSION = 0.5
"""Percentage points a gated success metric may worsen before ``compare`` calls it a regression."""

Format = Literal["text", "markdown", "json"]


@dataclass(frozen=True)
class MetricDelta:
    name: str
    target: str
    base: float | None
    new: float | None
    base_n: int
    new_n: int
    delta: float | None
    """new - base, in the metric's unit (percent or percentage points); None when either run has no data."""
    change: str
    """"better", "worse", "same" or "no data"."""
    regressed: bool


@dataclass(frozen=True)
class ProfileChange:
    profile: str
    base_band: str | None
    new_band: str | None
    base_pct: float | None
    new_pct: float | None
    basis: str | None
    gated: bool


@dataclass
class Comparison:
    base: str
    new: str
    max_regression: float
    metrics: list[MetricDelta]
    worse: list[ProfileChange] = field(default_factory=list)
    better: list[ProfileChange] = field(default_factory=list)
    new_profiles: list[str] = field(default_factory=list)
    missing_profiles: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    """One line per regression (a band worsening of a gated profile, or a metric beyond the threshold)."""

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "regressed": self.regressed}


def _rank(band: str | None) -> int | None:
    return ORDER.index(band) if band in ORDER else None


def _delta(name: str, target: str, base: Any, new: Any, threshold: float) -> MetricDelta:
    b = base.current if base is not None else None
    n = new.current if new is not None else None
    if b is None or n is None:
        return MetricDelta(name, target, b, n, base.n if base else 0, new.n if new else 0, None, "no data", False)
    delta = n - b
    worse_by = delta if name in LOWER_IS_BETTER else -delta
    change = "same" if abs(delta) < 1e-9 else ("worse" if worse_by > 0 else "better")
    regressed = name in GATED_METRICS and worse_by > threshold
    return MetricDelta(name, target, b, n, base.n, new.n, delta, change, regressed)


def compare_runs(base: Run, new: Run, gate: GateConfig | None = None, *,
                 max_regression: float = DEFAULT_MAX_REGRESSION) -> Comparison:
    """Compare ``new`` against ``base`` (both runs of the same profiles, usually with a calculator change)."""
    a_base, a_new = analyze(base.rows, gate), analyze(new.rows, gate)
    base_metrics = {m.name: m for m in a_base.metrics}
    new_metrics = {m.name: m for m in a_new.metrics}
    names = [m.name for m in a_new.metrics] + [n for n in base_metrics if n not in new_metrics]
    deltas = [
        _delta(name, (new_metrics.get(name) or base_metrics[name]).target, base_metrics.get(name),
               new_metrics.get(name), max_regression)
        for name in names
    ]
    result = Comparison(base=base.label, new=new.label, max_regression=max_regression, metrics=deltas)
    base_lines = {p.profile: p for p in a_base.profiles}
    new_lines = {p.profile: p for p in a_new.profiles}
    result.new_profiles = sorted(set(new_lines) - set(base_lines))
    result.missing_profiles = sorted(set(base_lines) - set(new_lines))
    for profile in sorted(set(base_lines) & set(new_lines)):
        b, n = base_lines[profile], new_lines[profile]
        rb, rn = _rank(b.band), _rank(n.band)
        if rb is None and rn is None:
            continue
        # a profile that lost its band (the calculator no longer estimates it) is the worst change of all
        lost = rn is None and n.verdict != "xfailed"
        if (rn is None and not lost) or rb == rn:
            continue
        gated = b.in_gate and (n.in_gate or lost)
        change = ProfileChange(profile, b.band, n.band, b.basis_pct, n.basis_pct, n.basis or b.basis, gated=gated)
        worse = lost or (rb is not None and rn is not None and rn > rb)
        (result.worse if worse else result.better).append(change)
    for c in result.worse:
        if c.gated:
            result.regressions.append(f"{c.profile}: band {c.base_band} -> {c.new_band or 'not compared'} "
                                      f"({c.basis or 'error'} {_pct(c.base_pct)} -> {_pct(c.new_pct)})")
    for d in deltas:
        if d.regressed:
            result.regressions.append(f"{d.name}: {_value(d.name, d.base)} -> {_value(d.name, d.new)} "
                                      f"(worse by {abs(d.delta or 0):.2f} points > {max_regression:g})")
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def _value(name: str, value: float | None) -> str:
    if value is None:
        return "no data"
    if name.startswith("profiles"):
        return f"{value:g}"
    return f"{value:.2f}%"


def _table(headers: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return out + ["| " + " | ".join(r) + " |" for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    return out + ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def metric_table(c: Comparison, markdown: bool = False) -> list[str]:
    rows = []
    for d in c.metrics:
        delta = "-" if d.delta is None else f"{d.delta:+.2f}"
        flag = "REGRESSION" if d.regressed else d.change
        rows.append([d.name, d.target, f"{_value(d.name, d.base)} (n={d.base_n})",
                     f"{_value(d.name, d.new)} (n={d.new_n})", delta, flag])
    return _table(["metric", "target", "base", "new", "delta", "change"], rows, markdown)


def render_comparison(c: Comparison, fmt: Format = "text") -> str:
    """The comparison as text (default), markdown or JSON."""
    if fmt == "json":
        return json.dumps(c.to_json(), indent=2)
    md = fmt == "markdown"
    lines = [f"base: {c.base}", f"new:  {c.new}", ""]
    lines += metric_table(c, md)
    for title, changes in (("band worse", c.worse), ("band better", c.better)):
        if changes:
            lines += ["", f"{title} ({len(changes)}):"]
            for ch in changes:
                note = "" if ch.gated else " (not gated: known failure)"
                lines.append(f"  {ch.profile}: {ch.base_band or 'not compared'} -> {ch.new_band or 'not compared'} "
                             f"({ch.basis or 'error'} "
                             f"{_pct(ch.base_pct)} -> {_pct(ch.new_pct)}){note}")
    if c.new_profiles:
        lines += ["", f"new profiles ({len(c.new_profiles)}):", *(f"  {p}" for p in c.new_profiles)]
    if c.missing_profiles:
        lines += ["", f"missing profiles ({len(c.missing_profiles)}):", *(f"  {p}" for p in c.missing_profiles)]
    lines.append("")
    if c.regressed:
        lines.append(f"REGRESSION ({len(c.regressions)}):")
        lines += [f"  {r}" for r in c.regressions]
    else:
        lines.append(f"no regression (no gated profile's band got worse, no gated metric worse by more than "
                     f"{c.max_regression:g} points)")
    return "\n".join(lines)
