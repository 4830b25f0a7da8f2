"""Recommendations from error patterns, as the original validation guide gives them, with the right sign.

difference = profiled - calculated: a positive difference means the calculator is too LOW (the original
validate-profile.py had this inverted, llm-sizer-origin.md 3.1). Every recommendation quotes the numbers that
triggered it.
"""

from __future__ import annotations

from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.units import GiB
from pytest_llmsizer.validation.compare import Outcome, Row

OVERHEAD_MIN_GIB = 0.25
"""An overhead difference below this is noise next to the 0.3 GiB error budget of memory-physics.md section 5."""
OVERHEAD_MIN_SHARE = 0.25
KV_MIN_PCT = 5.0
ACTIVATION_MIN_PCT = 20.0
QUANT_RATIO = 1.5


def _gib(value: float) -> str:
    return f"{value / GiB:.2f} GiB"


def _numbers(row: Row) -> str:
    assert row.calculated is not None and row.difference is not None
    pct = f", {row.percent:+.1f}%" if row.percent is not None else ""
    diff = f"{row.difference / GiB:+.2f} GiB"
    return f"profiled {_gib(row.profiled)} vs calculated {_gib(row.calculated)} (difference {diff}{pct})"


def _usable(row: Row | None) -> bool:
    return row is not None and row.calculated is not None and row.difference is not None


def recommendations(profile: Profile, outcome: Outcome) -> list[str]:
    advice: list[str] = []
    tp = profile.engine.tensor_parallel_size * profile.engine.pipeline_parallel_size
    for name in ("framework_overhead", "non_torch"):
        row = outcome.row(name)
        if not _usable(row):
            continue
        assert row is not None and row.difference is not None
        big = abs(row.difference) > max(OVERHEAD_MIN_GIB * GiB, OVERHEAD_MIN_SHARE * abs(row.profiled))
        if big and row.difference > 0 and tp > 1:
            advice.append(f"multi-GPU overhead: at {tp} GPUs the {name} memory is higher than calculated, "
                          f"{_numbers(row)}: add NCCL / custom all-reduce buffers for this parallel size")
        elif big and row.difference > 0:
            advice.append(f"framework overhead too low: {name} {_numbers(row)}: raise the runtime overhead term")
        elif big:
            advice.append(f"framework overhead too high: {name} {_numbers(row)}: lower the runtime overhead term")
    multi = outcome.row("multi_gpu_overhead")
    if _usable(multi) and multi is not None and multi.difference and multi.difference > OVERHEAD_MIN_GIB * GiB:
        advice.append(f"multi-GPU overhead: {_numbers(multi)}: the calculator under-counts communication buffers")
    kv = outcome.row("kv_cache")
    if _usable(kv) and kv is not None and kv.percent is not None and abs(kv.percent) > KV_MIN_PCT:
        if kv.percent < 0:
            advice.append(f"KV cache smaller than calculated: {_numbers(kv)}: the engine kept more memory for "
                          "weights, activations or non-torch than calculated, or gpu_memory_utilization was lower")
        else:
            advice.append(f"KV cache larger than calculated: {_numbers(kv)}: the calculator over-reserves "
                          "activations, non-torch memory or CUDA graphs, or gpu_memory_utilization was higher")
    act = outcome.row("activations")
    if _usable(act) and act is not None and act.percent is not None and abs(act.percent) > ACTIVATION_MIN_PCT:
        direction = "lower" if act.percent < 0 else "higher"
        advice.append(f"activations {direction} than calculated: {_numbers(act)}: check max_num_batched_tokens, "
                      "max_num_seqs and the sampler term for this engine version")
    weights = outcome.row("weights")
    if _usable(weights) and weights is not None and weights.calculated:
        ratio = weights.profiled / weights.calculated
        quant = profile.model.quantization.method if profile.model.quantization else None
        if ratio > QUANT_RATIO and quant:
            advice.append(f"quantization may not be applied: weights are {ratio:.2f}x the calculated {quant} size, "
                          f"{_numbers(weights)}")
        elif ratio > QUANT_RATIO:
            advice.append(f"weights {ratio:.2f}x calculated, {_numbers(weights)}: check dtype, TP split and "
                          "whether the parameter count includes every tensor")
        elif ratio < 1 / QUANT_RATIO:
            advice.append(f"weights {ratio:.2f}x calculated, {_numbers(weights)}: the checkpoint may be quantized "
                          "although the profile declares no quantization")
    return advice
