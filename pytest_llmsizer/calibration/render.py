"""The calibration report: held-out error per quantity before and after, what was fitted, left unchanged, skipped."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pytest_llmsizer.calibration.fit import Calibration


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def render_calibration(c: Calibration, *, detailed: bool = False) -> str:
    cv = c.cross_validation
    lines = [f"profiles used: {len(c.used)} ({len({o.model for o in c.used})} models); skipped: {len(c.skipped)}"]
    if cv.note:
        lines.append(f"cross-validation: not run: {cv.note}")
    else:
        refit = c.base.name == c.coefficients.name
        lines += ["", f"held-out error, {cv.folds}-fold cross-validation grouped by model "
                      + ("(before: the set itself, in-sample; after: fitted without the held-out models)" if refit
                         else f"(base {c.base.name!r} -> calibrated)")]
        lines.append(f"{'quantity':<16}{'n':>5}  {'before':>9}  {'after':>9}  {'unit':<18}median |%| before/after")
        for comp in cv.components:
            flag = "" if refit else "  WORSE" if comp.worse else ("  better" if comp.better else "")
            lines.append(f"{comp.quantity:<16}{comp.n:>5}  {_f(comp.before):>9}  {_f(comp.after):>9}  "
                         f"{comp.unit:<18}{_f(comp.before_median_pct, 2)}% / {_f(comp.after_median_pct, 2)}%{flag}")
    lines += ["", f"fitted ({len(c.fitted)}; written {len(c.applied)}, refused {len(c.refused)}):"]
    lines.append(f"  {'coefficient':<46}{'base':>9}{'fitted':>9}  {'+/-95%':>7}  {'n':>4}  models")
    for entry_id in sorted(c.fitted):
        f = c.fitted[entry_id]
        base = c.base.value(entry_id)
        clamp = f" (clamped from {f.raw:.3g})" if f.clamped else ""
        if entry_id in c.refused:
            clamp += "  REFUSED (base kept)"
        lines.append(f"  {entry_id:<46}{_f(base):>9}{f.value:>9.3f}  {_f(f.uncertainty):>7}  {f.n:>4}  "
                     f"{len(f.models)}{clamp}")
    lines.append(f"unchanged, no information in these profiles ({len(c.unchanged)}): "
                 + (", ".join(c.unchanged) if detailed or len(c.unchanged) <= 6 else
                    ", ".join(c.unchanged[:6]) + ", ... (--detailed lists all)"))
    if c.skipped:
        reasons = Counter(_reason_kind(r) for _, r in c.skipped)
        lines.append("skipped profiles: " + "; ".join(f"{n} x {why}" for why, n in reasons.most_common()))
        if detailed:
            lines += [f"  {label}: {why}" for label, why in c.skipped]
    return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    for head in ("not estimated", "unreadable", "development build", "known failure"):
        if reason.startswith(head):
            return head
    return reason


def calibration_json(c: Calibration) -> dict[str, Any]:
    cv = c.cross_validation
    return {
        "accepted": c.accepted,
        "refusal": c.refusal,
        "profiles_used": len(c.used),
        "skipped": [{"profile": label, "reason": why} for label, why in c.skipped],
        "cross_validation": {"folds": cv.folds, "note": cv.note,
                             "components": [comp.__dict__ for comp in cv.components]},
        "fitted": {k: {"base": c.base.value(k), "value": f.value, "raw": f.raw, "uncertainty": f.uncertainty,
                       "n": f.n, "models": list(f.models)} for k, f in sorted(c.fitted.items())},
        "refused": c.refused,
        "unchanged": c.unchanged,
    }
