"""pytest-llmsizer: validate LLM inference GPU-memory calculators against real measurements.

Public API (documented in README.md):

- ``load_profile(path)``: read a profile of any supported format into the native ``Profile``;
- ``estimate(model, gpu=..., ...)``: the built-in calculator, per GPU, as ``llmsizer estimate`` runs it;
- ``validate_profile(path, ...)``: compare a profile with a calculator, as ``llmsizer validate`` does.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["DataQualityWarning", "__version__", "estimate", "load_profile", "validate_profile"]


def estimate(model: str, *, gpu: str | None = None, gpu_memory_gib: float | None = None,
             quantization: str | None = None, **settings: Any) -> Any:
    """Estimate per-GPU memory for ``model`` (HF id or config.json path) on ``gpu`` (name) or ``gpu_memory_gib``.

    ``settings`` are the ``EstimateRequest`` fields (tensor_parallel_size, engine, engine_version, max_model_len,
    kv_cache_dtype, batch_size, input_len, output_len, ...). Returns an ``Estimate``; ``.to_json()`` is the
    ``llmsizer estimate --json`` object.
    """
    from pytest_llmsizer.calculator import estimate as run
    from pytest_llmsizer.calculator.resolve import request_from_options
    from pytest_llmsizer.units import GiB

    memory = round(gpu_memory_gib * GiB) if gpu_memory_gib else None
    return run(request_from_options(model, gpu=gpu, gpu_memory_bytes=memory, quantization=quantization, **settings))


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package (or its pure core) does not import pytest or every module.
    if name == "DataQualityWarning":
        from pytest_llmsizer.collect import DataQualityWarning

        return DataQualityWarning
    if name == "load_profile":
        from pytest_llmsizer.profile.load import load_profile

        return load_profile
    if name == "validate_profile":
        from pytest_llmsizer.api import validate_profile

        return validate_profile
    raise AttributeError(f"module 'pytest_llmsizer' has no attribute {name!r}")
