"""The built-in calculator: pure functions from an ``EstimateRequest`` to an ``Estimate`` (per GPU, bytes)."""

from __future__ import annotations

import math

from pytest_llmsizer.calculator.engines import estimate_transformers, estimate_vllm
from pytest_llmsizer.calculator.request import COMPONENTS, Estimate, EstimateRequest
from pytest_llmsizer.errors import EstimateError

MAX_TOKEN_SETTING = 2**40
"""Bound of every token or sequence count (about 1.1e12): far above any real deployment, and low enough that the
engines' float arithmetic cannot overflow (a profile may hold any integer JSON allows, up to 1.8e308)."""
TOKEN_SETTINGS = ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "block_size", "batch_size", "input_len",
                  "output_len")


def estimate(request: EstimateRequest) -> Estimate:
    """Estimate per-GPU memory for ``request`` with the engine it names."""
    if request.gpu_memory_bytes <= 0:
        raise EstimateError("GPU memory must be positive")
    for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
        if getattr(request, name) < 1:
            raise EstimateError(f"{name} must be >= 1")
    for name in TOKEN_SETTINGS:
        value = getattr(request, name)
        if value is not None and not 0 <= value <= MAX_TOKEN_SETTING:
            big = isinstance(value, int) and abs(value) >= 10**15  # repr of a huge int is long, or even refused
            shown = f"about 10^{int(value.bit_length() * math.log10(2))}" if big else repr(value)
            raise EstimateError(f"{name} = {shown} is out of range (0 to 2^40)")
    util = request.gpu_memory_utilization
    if util is not None and not (math.isfinite(util) and 0 < util <= 1):
        raise EstimateError(f"gpu_memory_utilization = {util!r} must be in (0, 1]")
    if request.engine == "vllm":
        return estimate_vllm(request)
    if request.engine == "transformers":
        return estimate_transformers(request)
    raise EstimateError(f"unknown engine {request.engine!r}; expected vllm or transformers")


__all__ = ["COMPONENTS", "Estimate", "EstimateRequest", "estimate"]
