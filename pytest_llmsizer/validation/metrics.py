"""Aggregate accuracy over profile records: the original guide's success metrics, band counts, worst profiles.

Which records count: those with an accuracy verdict other than ``xfailed`` (a known failure is already explained in
tolerances.yaml and would otherwise hide every improvement behind it) and with at least one gating comparison.
Derived (formula) components never count unless the tolerances gate them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from pytest_llmsizer.validation.bands import GOOD_OR_BETTER, ORDER
from pytest_llmsizer.validation.tolerances import GateConfig


@dataclass(frozen=True)
class MetricRow:
    name: str
    target: str
    current: str
    value: float | None
    passed: bool | None
    """None when there is no data for the metric (it is then neither passed nor failed)."""


@dataclass
class Metrics:
    n_records: int
    n_in_gate: int
    rows: list[MetricRow] = field(default_factory=list)
    band_counts: dict[str, int] = field(default_factory=dict)
    worst: list[dict[str, Any]] = field(default_factory=list)

    @property
    def missed(self) -> list[MetricRow]:
        return [r for r in self.rows if r.passed is False]

    def to_json(self) -> dict[str, Any]:
        return {
            "n_records": self.n_records,
            "n_in_gate": self.n_in_gate,
            "metrics": [r.__dict__ for r in self.rows],
            "band_counts": self.band_counts,
            "worst": self.worst,
        }


def _gating_pcts(record: dict[str, Any], quantity: str) -> list[float]:
    return [abs(r["percent"]) for r in record.get("rows") or []
            if r["quantity"] == quantity and r["gating"] and r["percent"] is not None]


def in_gate(record: dict[str, Any]) -> bool:
    return record.get("accuracy_verdict") not in ("xfailed", None) and record.get("match_quality") is not None


def compute_metrics(records: list[dict[str, Any]], gate: GateConfig, *, worst_n: int = 5) -> Metrics:
    counted = [r for r in records if in_gate(r)]
    metrics = Metrics(n_records=len(records), n_in_gate=len(counted))
    totals = [p for r in counted for p in _gating_pcts(r, "total")]
    weights = [p for r in counted for p in _gating_pcts(r, "weights")]
    kv = [p for r in counted for p in _gating_pcts(r, "kv_cache")]
    bands = [r["match_quality"] for r in counted]
    metrics.band_counts = {name: bands.count(name) for name in ORDER}

    def below(name: str, values: list[float], limit: float, unit: str = "%") -> MetricRow:
        if not values:
            return MetricRow(name, f"< {limit:g}{unit}", "no data", None, None)
        value = fmean(values)
        return MetricRow(name, f"< {limit:g}{unit}", f"{value:.2f}{unit} (n={len(values)})", value, value < limit)

    def share(name: str, wanted: tuple[str, ...], limit: float, more: bool) -> MetricRow:
        if not bands:
            return MetricRow(name, f"{'>' if more else '<'} {limit:g}%", "no data", None, None)
        value = 100 * sum(b in wanted for b in bands) / len(bands)
        ok = value > limit if more else value < limit
        return MetricRow(name, f"{'>' if more else '<'} {limit:g}%", f"{value:.1f}% (n={len(bands)})", value, ok)

    metrics.rows = [
        below("mean |total error|", totals, gate.mean_total_error_pct_max),
        share("Good or better", GOOD_OR_BETTER, gate.good_or_better_pct_min, more=True),
        share("Poor", ("Poor",), gate.poor_pct_max, more=False),
        below("weights accuracy (mean |error|)", weights, gate.weights_error_pct_max),
        below("KV cache accuracy (mean |error|)", kv, gate.kv_cache_error_pct_max),
    ]
    if gate.min_profiles:
        ok = len(counted) >= gate.min_profiles
        metrics.rows.append(MetricRow("profiles in the gate", f">= {gate.min_profiles}", str(len(counted)),
                                      float(len(counted)), ok))
    ranked = sorted(counted, key=lambda r: abs(r.get("primary_error_pct") or 0.0), reverse=True)
    metrics.worst = [
        {"profile_file": r["profile_file"], "quantity": r["primary_quantity"],
         "percent": r["primary_error_pct"], "band": r["match_quality"]}
        for r in ranked[:worst_n]
    ]
    return metrics


def gate_failure_line(metrics: Metrics) -> str | None:
    """One line naming each missed metric, its value and its target; None when the gate passes."""
    missed = metrics.missed
    if not missed:
        return None
    parts = [f"{m.name} = {m.current.split(' (')[0]} (target {m.target})" for m in missed]
    return "llmsizer accuracy gate failed: " + "; ".join(parts)
