"""Aggregate accuracy: the original guide's success metrics, band counts and worst profiles. ONE function,
:func:`compute_metrics`, computes them for the gate, the terminal summary, the HTML summary, ``llmsizer batch`` and
``llmsizer analyze``, so those can never disagree.

It reads :class:`Scored` entries, the few facts of a profile the metrics need, made either from a validation
record (:func:`scored`) or from a row of the CSV record (``report.analyze``). Which profiles count: those whose
accuracy ran and was not a known failure (``xfailed``: already explained in tolerances.yaml, it would hide every
improvement behind it) and that have a match quality (something was compared). Derived (formula) components never
count unless the tolerances gate them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from pytest_llmsizer.validation.bands import GOOD_OR_BETTER, ORDER
from pytest_llmsizer.validation.record import ProfileRecord
from pytest_llmsizer.validation.tolerances import GateConfig

METRIC_QUANTITIES = ("total", "weights", "kv_cache", "kv_cache_tokens")
"""The quantities whose errors the metrics (and the match basis) use."""


@dataclass(frozen=True)
class Scored:
    """What the metrics need to know about one profile."""

    profile_file: str
    verdict: str | None
    """The accuracy verdict (passed, failed, xfailed, xpassed), None when the accuracy check did not run."""
    band: str | None
    basis: str | None
    """The quantity that set the band (total, else the worst of weights, KV cache, KV tokens)."""
    basis_pct: float | None
    errors: Mapping[str, float] = field(default_factory=dict)
    """Signed percent error of each gating quantity of ``METRIC_QUANTITIES`` the profile holds."""

    @property
    def in_gate(self) -> bool:
        return self.verdict not in ("xfailed", None) and self.band is not None


def scored(record: ProfileRecord | Mapping[str, Any]) -> Scored:
    """The metrics' view of a validation record: only gating rows with a percent count."""
    errors = {r["quantity"]: r["percent"] for r in record.get("rows") or []
              if r["quantity"] in METRIC_QUANTITIES and r["gating"] and r["percent"] is not None}
    return Scored(record["profile_file"], record.get("accuracy_verdict"), record.get("match_quality"),
                  record.get("primary_quantity"), record.get("primary_error_pct"), errors)


@dataclass(frozen=True)
class MetricRow:
    name: str
    target: str
    current: str
    """The value as printed, with the count: ``0.72% (n=3)``; ``no data``."""
    value: float | None
    passed: bool | None
    """None when there is no data for the metric (it is then neither passed nor failed)."""
    n: int = 0
    limit: float = 0.0


@dataclass
class Metrics:
    n_records: int
    n_in_gate: int
    n_known_failures: int = 0
    """Profiles left out as known failures (xfailed)."""
    n_accuracy_ran: int = 0
    """Profiles whose accuracy check ran (a verdict)."""
    rows: list[MetricRow] = field(default_factory=list)
    band_counts: dict[str, int] = field(default_factory=dict)
    worst: list[dict[str, Any]] = field(default_factory=list)

    @property
    def missed(self) -> list[MetricRow]:
        return [r for r in self.rows if r.passed is False]

    def row(self, name: str) -> MetricRow | None:
        return next((r for r in self.rows if r.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "n_records": self.n_records,
            "n_in_gate": self.n_in_gate,
            "n_known_failures": self.n_known_failures,
            "n_accuracy_ran": self.n_accuracy_ran,
            "metrics": [r.__dict__ for r in self.rows],
            "band_counts": self.band_counts,
            "worst": self.worst,
        }


def in_gate(record: ProfileRecord | Mapping[str, Any]) -> bool:
    return scored(record).in_gate


def compute_metrics(entries: Iterable[Scored | ProfileRecord | Mapping[str, Any]], gate: GateConfig, *,
                    worst_n: int = 5, selection: bool = False) -> Metrics:
    """The success metrics over profiles (``Scored`` entries, or records, which are scored first).

    ``selection``: the run validated a chosen part of the profiles (``-k``, ``-m``, a single file): ``min_profiles``,
    which guards the whole corpus against profiles silently dropping out of the gate, is then shown but not judged.
    """
    all_entries = [e if isinstance(e, Scored) else scored(e) for e in entries]
    counted = [e for e in all_entries if e.in_gate]
    metrics = Metrics(n_records=len(all_entries), n_in_gate=len(counted),
                      n_known_failures=sum(e.verdict == "xfailed" for e in all_entries),
                      n_accuracy_ran=sum(e.verdict is not None for e in all_entries))
    bands = [e.band for e in counted if e.band is not None]
    metrics.band_counts = {name: bands.count(name) for name in ORDER}

    def errors(quantity: str) -> list[float]:
        return [abs(e.errors[quantity]) for e in counted if quantity in e.errors]

    def below(name: str, values: list[float], limit: float) -> MetricRow:
        target = f"< {limit:g}%"
        if not values:
            return MetricRow(name, target, "no data", None, None, 0, limit)
        value = fmean(values)
        return MetricRow(name, target, f"{value:.2f}% (n={len(values)})", value, value < limit, len(values), limit)

    def share(name: str, wanted: tuple[str, ...], limit: float, more: bool) -> MetricRow:
        target = f"{'>' if more else '<'} {limit:g}%"
        if not bands:
            return MetricRow(name, target, "no data", None, None, 0, limit)
        value = 100 * sum(b in wanted for b in bands) / len(bands)
        ok = value > limit if more else value < limit
        return MetricRow(name, target, f"{value:.1f}% (n={len(bands)})", value, ok, len(bands), limit)

    metrics.rows = [
        below("mean |total error|", errors("total"), gate.mean_total_error_pct_max),
        share("Good or better", GOOD_OR_BETTER, gate.good_or_better_pct_min, more=True),
        share("Poor", ("Poor",), gate.poor_pct_max, more=False),
        below("weights accuracy (mean |error|)", errors("weights"), gate.weights_error_pct_max),
        below("KV cache accuracy (mean |error|)", errors("kv_cache"), gate.kv_cache_error_pct_max),
    ]
    if gate.min_profiles:
        ok = None if selection else len(counted) >= gate.min_profiles
        current = str(len(counted)) + (" (a selection: not judged)" if selection else "")
        metrics.rows.append(MetricRow("profiles in the gate", f">= {gate.min_profiles}", current,
                                      float(len(counted)), ok, len(counted), float(gate.min_profiles)))
    ranked = sorted(counted, key=lambda e: abs(e.basis_pct or 0.0), reverse=True)
    metrics.worst = [
        {"profile_file": e.profile_file, "quantity": e.basis, "percent": e.basis_pct, "band": e.band}
        for e in ranked[:worst_n]
    ]
    return metrics


def gate_failure_line(metrics: Metrics) -> str | None:
    """One line naming each missed metric, its value and its target; None when the gate passes."""
    missed = metrics.missed
    if not missed:
        return None
    parts = [f"{m.name} = {m.current.split(' (')[0]} (target {m.target})" for m in missed]
    return "llmsizer accuracy gate failed: " + "; ".join(parts)


def gate_skipped_line(metrics: Metrics) -> str | None:
    """The one line saying why a run is not gated, or None when it is: the gate judges the accuracy items that ran
    outside the known failures, and a selection (``-m integrity``, a ``-k`` matching only known failures) may leave
    none."""
    if metrics.n_in_gate:
        return None
    if metrics.n_accuracy_ran == 0:
        why = "no accuracy item ran"
    elif metrics.n_known_failures == metrics.n_accuracy_ran:
        why = f"the {metrics.n_known_failures} accuracy item(s) that ran are all known failures"
    else:
        why = (f"none of the {metrics.n_accuracy_ran} accuracy item(s) that ran compared anything outside the "
               "known failures")
    return f"llmsizer gate: not evaluated: {why} ({metrics.n_records} profile(s) selected)"
