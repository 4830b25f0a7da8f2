"""Python API: validate one profile the way the plugin and ``llmsizer validate`` do, on the same core.

    >>> from pytest_llmsizer import validate_profile
    >>> report = validate_profile("profiles/vllm-issue-threads/vllm-33155--gpt-oss-120b.json")
    >>> report.summary.overall_match, round(report.summary.total_percent_diff, 2)
    ('Excellent', -0.29)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmsizer.calculator.resolve import request_from_profile
from pytest_llmsizer.calculator.result import Calculator, CalculatorResult
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.pluggable.loader import builtin, load_calculator
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.profile.model import Profile, Quantization
from pytest_llmsizer.units import GB
from pytest_llmsizer.validation.compare import CAPACITY_QUANTITIES, Outcome
from pytest_llmsizer.validation.integrity import Finding, IntegrityReport
from pytest_llmsizer.validation.pipeline import validate
from pytest_llmsizer.validation.record import ProfileRecord, outcome_of, row_of
from pytest_llmsizer.validation.tolerances import DEFAULT_TOLERANCES, Tolerances


@dataclass(frozen=True)
class Summary:
    overall_match: str | None
    """Band of the total error (Excellent, Good, Acceptable, Fair, Poor); for a profile without a measured total,
    of the worst of weights, KV cache and KV tokens (``basis`` says which)."""
    total_percent_diff: float | None
    """(profiled - calculated) / profiled x 100 of that quantity."""
    basis: str | None
    total_actual_gb: float | None
    total_calculated_gb: float | None
    total_difference_gb: float | None
    """The absolute error, GB (1e9 bytes); None when the basis is not a memory quantity."""
    passed: bool
    """Every gating quantity within its tolerance."""


@dataclass
class ValidationReport:
    profile_file: str
    profile: Profile
    calculator: str
    outcome: Outcome
    summary: Summary
    recommendations: list[str]
    calculator_inputs: dict[str, Any]
    integrity: IntegrityReport
    record: ProfileRecord

    def to_json(self) -> dict[str, Any]:
        integrity = self.integrity
        record = self.record
        return {
            "profile_file": self.profile_file,
            "calculator": self.calculator,
            "model": self.profile.model.model_dump(mode="json", exclude_none=True),
            "hardware": self.profile.hardware.model_dump(mode="json", exclude_none=True),
            "engine": self.profile.engine.model_dump(mode="json", exclude_none=True),
            "workload": self.profile.workload.model_dump(mode="json") if self.profile.workload else None,
            "calculator_inputs": self.calculator_inputs,
            "comparison": self.outcome.to_json()["rows"],
            "summary": self.summary.__dict__,
            "recommendations": self.recommendations,
            "assumptions": self.outcome.assumptions,
            "integrity": {
                "failed": integrity.failed,
                "findings": [f.__dict__ for f in integrity.findings],
                "not_applicable": dict(integrity.not_applicable),
            },
            "verdicts": {"accuracy": record["accuracy_verdict"], "integrity": record["integrity_verdict"]},
            "known_failure": record["known_failure"],
            "error": record["error"],
        }


def apply_overrides(profile: Profile, *, model_id: str | None = None, gpu_id: str | None = None,
                    inference_quant: str | None = None, kv_quant: str | None = None,
                    model_params: int | None = None) -> Profile:
    """The profile as the user corrects it: another model id, GPU, quantization, KV dtype or parameter count."""
    model_update: dict[str, Any] = {}
    if model_id:
        model_update["id"] = model_id
    if inference_quant:
        model_update["quantization"] = None if inference_quant in ("none", "fp16", "bf16") else Quantization(
            method=inference_quant)
    if model_params:
        model_update["num_parameters"] = int(model_params)
    model = profile.model.model_copy(update=model_update)
    hardware = profile.hardware.model_copy(update={"gpu_name": gpu_id}) if gpu_id else profile.hardware
    engine = profile.engine.model_copy(update={"kv_cache_dtype": kv_quant}) if kv_quant else profile.engine
    return profile.model_copy(update={"model": model, "hardware": hardware, "engine": engine})


def calculator_inputs(profile: Profile) -> dict[str, Any]:
    """What a person would type into any other calculator for this profile (the built-in resolver's view)."""
    eng, wl = profile.engine, profile.workload
    inputs: dict[str, Any] = {
        "model": profile.model.id,
        "parameters_b": round(profile.model.num_parameters / 1e9, 3) if profile.model.num_parameters else None,
        "gpu": profile.hardware.gpu_name,
        "gpus": profile.hardware.gpu_count,
        "tensor_parallel_size": eng.tensor_parallel_size,
        "pipeline_parallel_size": eng.pipeline_parallel_size,
        "dtype": profile.model.dtype,
        "inference_quantization": profile.model.quantization.method if profile.model.quantization else None,
        "kv_cache_dtype": eng.kv_cache_dtype,
        "batch_size": wl.batch_size if wl else None,
        "input_len": wl.input_tokens if wl else None,
        "output_len": wl.output_tokens if wl else None,
        "sequence_length": (wl.input_tokens + wl.output_tokens) if wl else None,
    }
    try:
        from pytest_llmsizer.calculator import estimate

        resolved = estimate(request_from_profile(profile)).inputs
    except LlmsizerError as e:
        inputs["resolution_error"] = str(e)
        return inputs
    for key in ("gpu_memory_gib", "gpu_memory_utilization", "max_model_len", "max_num_seqs",
                "max_num_batched_tokens", "block_size", "engine_version_assumed", "num_parameters"):
        inputs[key] = resolved.get(key)
    if inputs["parameters_b"] is None and resolved.get("num_parameters"):
        inputs["parameters_b"] = round(resolved["num_parameters"] / 1e9, 3)
    inputs["dtype"] = inputs["dtype"] or resolved.get("dtype")
    return inputs


def summary_of(record: ProfileRecord) -> Summary:
    """The guide's summary of a record: overall match, the error that set it, the absolute error."""
    quantity, pct = record["primary_quantity"], record["primary_error_pct"]
    row = row_of(record, quantity) if quantity else None
    memory = row is not None and row["quantity"] not in CAPACITY_QUANTITIES and row["calculated"] is not None
    return Summary(
        overall_match=record["match_quality"],
        total_percent_diff=pct,
        basis=quantity,
        total_actual_gb=row["profiled"] / GB if memory and row else None,
        total_calculated_gb=row["calculated"] / GB if memory and row and row["calculated"] is not None else None,
        total_difference_gb=row["difference"] / GB if memory and row and row["difference"] is not None else None,
        passed=record["accuracy_verdict"] in ("passed", "xpassed"),
    )


def report_from_record(profile: Profile, record: ProfileRecord, *, with_inputs: bool = True) -> ValidationReport:
    """The rich view of a pipeline record (for the text report and the API)."""
    integrity = IntegrityReport(
        findings=tuple(Finding(**f) for f in record["integrity_findings"]),
        applied=tuple(record["integrity_applied"]),
        not_applicable=dict(record["integrity_not_applicable"]),
        off=tuple(record["integrity_off"]),
    )
    return ValidationReport(profile_file=record["profile_file"], profile=profile, calculator=record["calculator"],
                            outcome=outcome_of(record), summary=summary_of(record),
                            recommendations=list(record["recommendations"]),
                            calculator_inputs=calculator_inputs(profile) if with_inputs else {},
                            integrity=integrity, record=record)


def total_calculator(total_gb: float) -> Calculator:
    """A "calculator" that knows only a total (``llmsizer validate --calculator-total GB``, GB = 1e9 bytes)."""

    def calculate(profile: Profile) -> CalculatorResult:
        return CalculatorResult({"total": round(total_gb * GB)})

    return calculate


def validate_loaded(profile: Profile, profile_file: str, *, calculator: Calculator | None = None,
                    calculator_name: str = "builtin", calculator_total_gb: float | None = None,
                    tolerances: Tolerances | None = None) -> ValidationReport:
    """Validate an already loaded (and possibly overridden) profile through the one pipeline.

    Raises the calculator's error (``EstimateError``, ``CatalogError``, ...) when it cannot estimate the profile,
    as a one-profile API should; ``llmsizer batch`` and the plugin keep it in the record instead.
    """
    tolerances = tolerances or DEFAULT_TOLERANCES
    if calculator_total_gb is not None:
        if profile.measurements.components.total is None:
            raise LlmsizerError(f"{profile_file}: the profile holds no measured total to compare "
                                "--calculator-total with")
        calculator, calculator_name = total_calculator(calculator_total_gb), f"total {calculator_total_gb:g} GB"
    calc = calculator or builtin
    errors: list[LlmsizerError] = []

    def remembering(p: Profile) -> Any:
        try:
            return calc(p)
        except LlmsizerError as e:
            errors.append(e)
            raise

    record = validate(profile, profile_file, calculator=remembering, calculator_name=calculator_name,
                      tolerances=tolerances)
    if errors:
        raise errors[0]
    return report_from_record(profile, record)


def validate_profile(path: str | Path, *, calculator: str | Calculator | None = None, model_id: str | None = None,
                     gpu_id: str | None = None, inference_quant: str | None = None, kv_quant: str | None = None,
                     model_params: int | None = None, tolerances: Tolerances | None = None) -> ValidationReport:
    """Load a profile (any supported format), apply overrides, compare it with a calculator.

    ``calculator``: None or "builtin" for the built-in calculator, a "module:attribute" / entry-point name, or a
    callable. Raises the project's typed errors (``ProfileError``, ``CatalogError``, ``EstimateError``, ...).
    """
    profile = apply_overrides(load_profile(path), model_id=model_id, gpu_id=gpu_id, inference_quant=inference_quant,
                              kv_quant=kv_quant, model_params=model_params)
    if callable(calculator):
        calc, name = calculator, getattr(calculator, "__name__", "custom")
    else:
        calc, name = load_calculator(calculator), calculator or "builtin"
    return validate_loaded(profile, str(path), calculator=calc, calculator_name=name, tolerances=tolerances)
