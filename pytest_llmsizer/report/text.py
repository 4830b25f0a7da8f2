"""Human-readable validation report of one profile (``llmsizer validate`` and ``llmsizer batch``)."""

from __future__ import annotations

from typing import Any

from pytest_llmsizer.api import ValidationReport
from pytest_llmsizer.profile.model import COMPONENT_NAMES
from pytest_llmsizer.units import GB, GiB
from pytest_llmsizer.validation.compare import render_table


def _mem(value: float | None) -> str:
    return "-" if value is None else f"{value / GiB:.2f} GiB ({value / GB:.2f} GB)"


def _kv(pairs: list[tuple[str, Any]]) -> list[str]:
    width = max(len(k) for k, _ in pairs)
    return [f"  {k:<{width}}  {'-' if v is None else v}" for k, v in pairs]


def render_validation(report: ValidationReport) -> str:
    p = report.profile
    eng, hw, wl = p.engine, p.hardware, p.workload
    lines = [f"LLM sizer validation: {report.profile_file}", "=" * 72, "", "MODEL INFORMATION"]
    lines += _kv([
        ("model", p.model.id),
        ("parameters", f"{p.model.num_parameters / 1e9:.2f} B" if p.model.num_parameters else None),
        ("dtype", p.model.dtype),
        ("quantization", p.model.quantization.method if p.model.quantization else None),
    ])
    lines += ["", "TEST CONFIGURATION"]
    lines += _kv([
        ("GPU", hw.gpu_name),
        ("GPUs", hw.gpu_count),
        ("memory per GPU", _mem(hw.memory_per_gpu_bytes) if hw.memory_per_gpu_bytes else None),
        ("engine", f"{eng.name} {eng.version or '(version not recorded)'}"),
        ("tensor / pipeline parallel", f"{eng.tensor_parallel_size} / {eng.pipeline_parallel_size}"),
        ("gpu_memory_utilization", eng.gpu_memory_utilization),
        ("max_model_len", eng.max_model_len),
        ("kv_cache_dtype", eng.kv_cache_dtype),
        ("batch x (input + output)", f"{wl.batch_size} x ({wl.input_tokens} + {wl.output_tokens})" if wl else None),
        ("source", p.source.reference),
    ])
    lines += ["", "PROFILED RESULTS (ground truth, per GPU)"]
    comps = p.measurements.components
    pairs: list[tuple[str, Any]] = []
    for name in COMPONENT_NAMES:
        c = getattr(comps, name)
        if c is not None:
            pairs.append((name, f"{_mem(c.bytes)}  [{c.provenance.value}, {c.confidence.value}]"))
    if p.measurements.kv_cache_tokens is not None:
        pairs.append(("KV cache tokens", f"{p.measurements.kv_cache_tokens:,}"))
    if p.measurements.max_concurrency is not None:
        pairs.append(("max concurrency", f"{p.measurements.max_concurrency:.2f}x"))
    lines += _kv(pairs) if pairs else ["  (no measured component)"]
    lines += ["", "CALCULATOR INPUTS (type these into any calculator)"]
    lines += _kv(list(report.calculator_inputs.items()))
    lines += ["", f"VALIDATION RESULTS (calculator: {report.calculator}; difference = profiled - calculated)"]
    lines += ["  " + line for line in render_table(report.outcome).splitlines()]
    s = report.summary
    lines += ["", "SUMMARY"]
    lines += _kv([
        ("overall match", s.overall_match or "not compared"),
        (f"error ({s.basis or '-'})", "-" if s.total_percent_diff is None else f"{s.total_percent_diff:+.2f}%"),
        ("absolute error", "-" if s.total_difference_gb is None else
         f"{s.total_difference_gb * GB / GiB:+.3f} GiB ({s.total_difference_gb:+.3f} GB)"),
        ("within tolerances", "yes" if s.passed else "no"),
        ("known failure", report.record["known_failure"]),
        ("integrity", "failed" if report.integrity.failed else
         ("warnings" if report.integrity.findings else "passed")),
    ])
    if report.record["error"]:
        lines.append(f"  - error: {report.record['error']}")
    for f in report.integrity.findings:
        lines.append(f"  - {f.severity}: {f.message}")
    if report.recommendations:
        lines += ["", "RECOMMENDATIONS"] + [f"  - {r}" for r in report.recommendations]
    if report.outcome.assumptions:
        lines += ["", "CALCULATOR ASSUMPTIONS"] + [f"  - {a}" for a in report.outcome.assumptions]
    return "\n".join(lines)
