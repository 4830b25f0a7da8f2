"""Compare a profile's measurements with a calculator's answer, quantity by quantity.

Conventions (DESIGN.md section 3, a contract): difference = profiled - calculated; percent = difference / profiled x
100; a quantity passes when |difference| <= max(abs, rel x |profiled|). Ranks are compared one by one where the
profile holds per-rank values, and the worst rank decides. Derived (formula) components are shown but do not fail
unless the tolerances say ``gate_derived``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_llmsizer.calculator.engines import kv_tokens_from_blocks
from pytest_llmsizer.calculator.result import CalculatorResult
from pytest_llmsizer.profile.model import Profile, Provenance
from pytest_llmsizer.units import GiB
from pytest_llmsizer.validation.bands import band
from pytest_llmsizer.validation.tolerances import QUANTITIES, Tolerance

CAPACITY_QUANTITIES = ("kv_cache_tokens", "max_concurrency")


@dataclass(frozen=True)
class Row:
    quantity: str
    profiled: float
    calculated: float | None
    difference: float | None
    percent: float | None
    band: str | None
    allowed: float
    passed: bool
    gating: bool
    provenance: str
    rank: int | None = None
    """The rank whose value decided the row (per-rank profiles), None otherwise."""

    @property
    def is_memory(self) -> bool:
        return self.quantity not in CAPACITY_QUANTITIES


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.gating and not r.passed]

    @property
    def passed(self) -> bool:
        return bool(self.gating_rows) and not self.failures

    @property
    def gating_rows(self) -> list[Row]:
        return [r for r in self.rows if r.gating and r.calculated is not None]

    def row(self, quantity: str) -> Row | None:
        return next((r for r in self.rows if r.quantity == quantity), None)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "rows": [asdict(r) for r in self.rows], "assumptions": self.assumptions}


def _profiled_values(profile: Profile) -> list[tuple[str, list[float], str]]:
    """(quantity, per-rank values, provenance) for everything the profile holds."""
    out: list[tuple[str, list[float], str]] = []
    for name, comp in profile.measurements.components.present().items():
        values = [float(v) for v in comp.per_gpu_bytes] if comp.per_gpu_bytes else [float(comp.bytes)]
        out.append((name, values, comp.provenance.value))
    m = profile.measurements
    if m.kv_cache_tokens is not None:
        out.append(("kv_cache_tokens", [float(m.kv_cache_tokens)], Provenance.ENGINE.value))
    elif m.num_gpu_blocks is not None:
        # V0 logs print "# GPU blocks: N"; vLLM's token capacity is N x block_size
        tokens = kv_tokens_from_blocks(m.num_gpu_blocks, profile.engine.block_size)
        out.append(("kv_cache_tokens", [float(tokens)], Provenance.ENGINE.value))
    if m.max_concurrency is not None:
        out.append(("max_concurrency", [float(m.max_concurrency)], Provenance.ENGINE.value))
    return out


def _calculated(result: CalculatorResult, quantity: str) -> float | None:
    if quantity == "kv_cache_tokens":
        return None if result.kv_cache_tokens is None else float(result.kv_cache_tokens)
    if quantity == "max_concurrency":
        return result.max_concurrency
    value = result.per_gpu_bytes.get(quantity)
    return None if value is None else float(value)


def compare(profile: Profile, result: CalculatorResult, tolerances: dict[str, Tolerance], *,
            gate_derived: bool = False) -> Outcome:
    """One ``Row`` per quantity the profile holds, in the order of ``QUANTITIES``."""
    outcome = Outcome(assumptions=list(result.assumptions))
    held = sorted(_profiled_values(profile), key=lambda t: QUANTITIES.index(t[0]))
    for quantity, values, provenance in held:
        calc = _calculated(result, quantity)
        tol = tolerances.get(quantity, Tolerance())
        gating = provenance != Provenance.DERIVED.value or gate_derived
        if calc is None:
            outcome.rows.append(Row(quantity, values[0], None, None, None, None, tol.allowed(quantity, values[0]),
                                    True, False, provenance))
            continue
        # the worst rank decides
        worst_i = max(range(len(values)), key=lambda i: abs(values[i] - calc))
        profiled = values[worst_i]
        diff = profiled - calc
        pct = diff / profiled * 100 if profiled else None
        allowed = tol.allowed(quantity, profiled)
        outcome.rows.append(Row(
            quantity, profiled, calc, diff, pct, band(pct) if pct is not None else None, allowed,
            abs(diff) <= allowed, gating, provenance, worst_i if len(values) > 1 else None,
        ))
    return outcome


def _fmt(quantity: str, value: float | None) -> str:
    if value is None:
        return "-"
    if quantity == "kv_cache_tokens":
        return f"{value:,.0f} tok"
    if quantity == "max_concurrency":
        return f"{value:.2f}x"
    return f"{value / GiB:.3f} GiB"


def render_table(outcome: Outcome) -> str:
    """The one failure table: component, profiled, calculated, difference, percent, band, tolerance."""
    header = ("component", "profiled", "calculated", "difference", "percent", "band", "tolerance", "")
    lines = [header]
    for r in outcome.rows:
        pct = "-" if r.percent is None else f"{r.percent:+.2f}%"
        status = "ok" if r.passed else "FAIL"
        if not r.gating:
            status = "shown only (" + ("derived" if r.provenance == "derived" else "not calculated") + ")"
        name = r.quantity + (f" (rank {r.rank})" if r.rank is not None else "")
        lines.append((name, _fmt(r.quantity, r.profiled), _fmt(r.quantity, r.calculated),
                      _fmt(r.quantity, r.difference), pct, r.band or "-", "±" + _fmt(r.quantity, r.allowed), status))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)
