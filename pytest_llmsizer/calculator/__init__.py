"""The built-in calculator: pure functions from an ``EstimateRequest`` to an ``Estimate`` (per GPU, bytes)."""

from __future__ import annotations

from pytest_llmsizer.calculator.engines import estimate_transformers, estimate_vllm
from pytest_llmsizer.calculator.request import COMPONENTS, Estimate, EstimateRequest
from pytest_llmsizer.errors import EstimateError


def estimate(request: EstimateRequest) -> Estimate:
    """Estimate per-GPU memory for ``request`` with the engine it names."""
    if request.gpu_memory_bytes <= 0:
        raise EstimateError("GPU memory must be positive")
    for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
        if getattr(request, name) < 1:
            raise EstimateError(f"{name} must be >= 1")
    if request.engine == "vllm":
        return estimate_vllm(request)
    if request.engine == "transformers":
        return estimate_transformers(request)
    raise EstimateError(f"unknown engine {request.engine!r}; expected vllm or transformers")


__all__ = ["COMPONENTS", "Estimate", "EstimateRequest", "estimate"]
