"""One record per profile: everything the CSV, the JSON report, the terminal summary and the HTML report show.

A record is a dict of plain builtins because it travels from xdist workers to the controller on the test report
(execnet serializes only builtins). Memory stays in bytes here; the CSV converts to GB (1e9) at the edge.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.validation.bands import band
from pytest_llmsizer.validation.compare import Outcome, Row

_ROW_FIELDS = tuple(f.name for f in fields(Row))
"""A row's fields in declaration order. Every field is a scalar, so a plain dict of them equals
``dataclasses.asdict(row)`` (which deep-copies recursively and costs several times more per row)."""

PRIMARY_FALLBACK = ("weights", "kv_cache", "kv_cache_tokens")
"""The quantities that decide a profile's match quality when it holds no measured total (vLLM logs rarely do)."""


def primary_error(outcome: Outcome | None) -> tuple[str | None, float | None]:
    """(quantity, percent) deciding the profile's match quality: the total when the profile has one, else the
    worst of weights, KV cache and KV tokens. Only gating rows with a calculated value count."""
    if outcome is None:
        return None, None
    gating = [r for r in outcome.gating_rows if r.percent is not None]
    total = next((r for r in gating if r.quantity == "total"), None)
    if total is not None:
        return "total", total.percent
    candidates = [r for r in gating if r.quantity in PRIMARY_FALLBACK]
    if not candidates:
        return None, None
    worst = max(candidates, key=lambda r: abs(r.percent or 0.0))
    return worst.quantity, worst.percent


def profile_facts(profile: Profile | None, relpath: str) -> dict[str, Any]:
    """The descriptive part of a record (model, GPU, engine, workload)."""
    facts: dict[str, Any] = {"profile_file": relpath}
    if profile is None:
        return facts
    eng, hw, model = profile.engine, profile.hardware, profile.model
    workload = profile.workload
    facts.update({
        "model_id": model.id,
        "model_params": model.num_parameters,
        "gpu_type": hw.gpu_name,
        "gpu_count": hw.gpu_count,
        "tp_size": eng.tensor_parallel_size,
        "pp_size": eng.pipeline_parallel_size,
        "engine": eng.name,
        "engine_version": eng.version,
        "batch_size": workload.batch_size if workload else None,
        "seq_length": (workload.input_tokens + workload.output_tokens) if workload else None,
        "dtype": model.dtype,
        "quantization": model.quantization.method if model.quantization else None,
        "kv_cache_dtype": eng.kv_cache_dtype,
        "source": profile.source.reference,
        "synthetic": profile.synthetic,
    })
    return facts


def accuracy_record(profile: Profile | None, relpath: str, outcome: Outcome | None, *, calculator: str,
                    error: str | None = None, recommendations: list[str] | None = None,
                    calculated_params: int | None = None) -> dict[str, Any]:
    """The accuracy half of a profile's record."""
    quantity, pct = primary_error(outcome)
    record = profile_facts(profile, relpath)
    if record.get("model_params") is None and calculated_params:
        record["model_params"] = calculated_params
    record.update({
        "calculator": calculator,
        "rows": [{name: getattr(r, name) for name in _ROW_FIELDS} for r in outcome.rows] if outcome else [],
        "assumptions": list(outcome.assumptions) if outcome else [],
        "primary_quantity": quantity,
        "primary_error_pct": pct,
        "match_quality": band(pct),
        "recommendations": recommendations or [],
        "error": error,
    })
    return record


def row_of(record: dict[str, Any], quantity: str) -> dict[str, Any] | None:
    return next((r for r in record.get("rows") or [] if r["quantity"] == quantity), None)
