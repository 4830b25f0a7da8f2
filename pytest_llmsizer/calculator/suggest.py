"""What would make a refused deployment start: the smallest tensor-parallel size, the longest max_model_len.

Kept apart from the engine model because a suggestion re-runs the estimate with other settings; the engine model
itself never calls back into ``estimate``.
"""

from __future__ import annotations

from dataclasses import replace

from pytest_llmsizer.calculator.request import Estimate, EstimateRequest

TP_CANDIDATES = (1, 2, 4, 8, 16)
"""Tensor-parallel sizes a suggestion tries (one node of 8 GPUs, or two)."""


def suggestions(request: EstimateRequest, result: Estimate) -> list[str]:
    """Plain sentences for a result that does not fit (empty when it fits or nothing would help)."""
    from pytest_llmsizer.calculator import estimate  # the package entry point (validation included)

    if result.fits or request.engine != "vllm":
        return []
    out: list[str] = []
    tp = request.tensor_parallel_size
    for candidate in TP_CANDIDATES:
        if candidate == tp:
            continue
        trial = estimate(replace(request, tensor_parallel_size=candidate))
        if trial.fits and (candidate > tp or not out):
            out.append(f"--tp {candidate} would fit: {trial.kv_cache_tokens:,} KV tokens, max concurrency "
                       f"{trial.max_concurrency}x")
            break
    length = result.details.get("longest_fitting_max_model_len")
    if length and length < result.inputs["max_model_len"]:
        trial = estimate(replace(request, max_model_len=length))
        if trial.fits:
            out.append(f"--max-model-len {length} is the longest that fits at this size")
    return out
