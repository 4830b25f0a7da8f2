"""The typed record of one validated profile: what every door (pytest items, ``validate``, ``batch``, the API, the
CSV / JSON / HTML reports, ``analyze``) reads, and what ``validation.pipeline.validate`` alone writes.

A record is a ``TypedDict`` (a plain ``dict`` at run time) of plain builtins: it travels from xdist workers to the
controller on a test report, and execnet serializes builtins only. Memory stays in bytes; the CSV converts to GB
(1e9 bytes) at its edge. Pure: no pytest, no I/O; cheap to import (``compare``'s ``Row``/``Outcome`` are the only
project types it touches).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Literal, TypedDict

from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.validation.compare import Outcome, Row

Verdict = Literal["passed", "failed", "xfailed", "xpassed", "error"]
"""An accuracy verdict. ``xfailed``/``xpassed``: a known failure (tolerances.yaml) that failed / passed anyway.
``error``: the item crashed (a worker died) before it could decide; counted, never taken as passed."""


class RowRecord(TypedDict):
    """One compared quantity (``validation.compare.Row`` as builtins). Memory in bytes.

    Written out rather than derived from ``Row``: the type checker cannot derive a ``TypedDict`` from a dataclass,
    and the records' readers (reports, ``analyze``, the xdist controller) need the keys typed. ``row_record`` and
    ``outcome_of`` convert both ways; a test holds the two field lists equal."""

    quantity: str
    profiled: float
    calculated: float | None
    difference: float | None
    """profiled - calculated."""
    percent: float | None
    """difference / profiled x 100."""
    band: str | None
    allowed: float
    passed: bool
    gating: bool
    """False for derived (formula) components and quantities the calculator did not estimate: shown only."""
    provenance: str
    rank: int | None


class FindingRecord(TypedDict):
    check: str
    severity: str
    message: str
    values: dict[str, float | str]


class ProfileRecord(TypedDict):
    """Everything known about one profile after validation. Every key is always present (None when unknown)."""

    # -- facts of the profile (None when it could not be loaded)
    profile_file: str
    node_id: str | None
    """The accuracy item's pytest node id (``<profile_file>::accuracy``), None when it did not run."""
    model_id: str | None
    model_params: int | None
    """The profile's parameter count, else the calculator's (``inputs.num_parameters``), else the catalog's."""
    gpu_type: str | None
    gpu_count: int | None
    tp_size: int | None
    pp_size: int | None
    engine: str | None
    engine_version: str | None
    batch_size: int | None
    seq_length: int | None
    dtype: str | None
    quantization: str | None
    kv_cache_dtype: str | None
    source: str | None
    synthetic: bool | None
    # -- accuracy
    calculator: str
    rows: list[RowRecord]
    assumptions: list[str]
    primary_quantity: str | None
    """The quantity that sets the match quality: the total, else the worst of weights, KV cache and KV tokens."""
    primary_error_pct: float | None
    match_quality: str | None
    recommendations: list[str]
    error: str | None
    """Why nothing (or not everything) could be compared: the load error, the calculator's refusal, a bug."""
    accuracy_verdict: Verdict | None
    """None only where the door did not run the accuracy check (e.g. ``pytest -m integrity``)."""
    # -- integrity
    integrity_verdict: Literal["passed", "failed", "error"] | None
    integrity_findings: list[FindingRecord]
    integrity_applied: list[str]
    integrity_not_applicable: dict[str, str]
    integrity_off: list[str]
    """Checks turned off in tolerances.yaml."""
    integrity_error: str | None
    # -- known failure (tolerances.yaml)
    known_failure: str | None
    """The reason given in tolerances.yaml, or None."""
    known_failure_strict: bool


ROW_FIELDS = tuple(f.name for f in fields(Row))
"""A row's fields in declaration order (every field is a scalar, so a dict of them is ``asdict(row)``, cheaper)."""

PRIMARY_FALLBACK = ("weights", "kv_cache", "kv_cache_tokens")
"""The quantities that decide a profile's match quality when it holds no measured total (vLLM logs rarely do)."""


def row_record(row: Row) -> RowRecord:
    return {name: getattr(row, name) for name in ROW_FIELDS}  # type: ignore[return-value]


def outcome_of(record: ProfileRecord) -> Outcome:
    """The comparison as ``Outcome`` again (for renderers that take one)."""
    return Outcome(rows=[Row(**r) for r in record["rows"]], assumptions=list(record["assumptions"]))


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


def empty_record(profile_file: str, calculator: str) -> ProfileRecord:
    """A record with every key, nothing known yet."""
    return {
        "profile_file": profile_file, "node_id": f"{profile_file}::accuracy",
        "model_id": None, "model_params": None, "gpu_type": None, "gpu_count": None, "tp_size": None,
        "pp_size": None, "engine": None, "engine_version": None, "batch_size": None, "seq_length": None,
        "dtype": None, "quantization": None, "kv_cache_dtype": None, "source": None, "synthetic": None,
        "calculator": calculator, "rows": [], "assumptions": [], "primary_quantity": None,
        "primary_error_pct": None, "match_quality": None, "recommendations": [], "error": None,
        "accuracy_verdict": None, "integrity_verdict": None, "integrity_findings": [], "integrity_applied": [],
        "integrity_not_applicable": {}, "integrity_off": [], "integrity_error": None, "known_failure": None,
        "known_failure_strict": False,
    }


def set_profile_facts(record: ProfileRecord, profile: Profile) -> None:
    """Fill the descriptive part of a record (model, GPU, engine, workload) from the profile."""
    eng, hw, model, workload = profile.engine, profile.hardware, profile.model, profile.workload
    record.update({
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


def integrity_part(record: ProfileRecord) -> ProfileRecord:
    """The record without its accuracy half (what a pytest integrity item reports: the accuracy item reports the
    whole record, and an integrity item's copy of the comparison would only double what travels over xdist)."""
    part = record.copy()
    part.update({"node_id": None, "rows": [], "assumptions": [], "primary_quantity": None,
                 "primary_error_pct": None, "match_quality": None, "recommendations": [], "error": None,
                 "accuracy_verdict": None})
    return part


def row_of(record: Mapping[str, Any], quantity: str) -> RowRecord | None:
    return next((r for r in record.get("rows") or [] if r["quantity"] == quantity), None)


def fails_the_run(record: ProfileRecord) -> bool:
    """Whether this record makes a run fail, as pytest would judge its two items: a failed accuracy or integrity
    verdict, or a strict known failure that passed (xpassed)."""
    return (record["accuracy_verdict"] == "failed" or record["integrity_verdict"] == "failed"
            or (record["accuracy_verdict"] == "xpassed" and record["known_failure_strict"]))
