"""What any calculator returns, in one shape: ``CalculatorResult``, and ``normalise_result`` that makes one.

A calculator is any callable ``(Profile) -> result`` where the result is an ``Estimate``, a ``CalculatorResult``,
or a mapping with ``per_gpu_bytes`` (component -> bytes, any subset of ``MEMORY_COMPONENTS``) and optionally
``kv_cache_tokens`` and ``max_concurrency``. How a calculator is found and run is ``pytest_llmsizer.pluggable``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_llmsizer.calculator.request import Estimate
from pytest_llmsizer.errors import CalculatorError
from pytest_llmsizer.profile.model import Profile

MEMORY_COMPONENTS = ("weights", "kv_cache", "activations", "non_torch", "cuda_graphs", "framework_overhead",
                     "multi_gpu_overhead", "total")



@dataclass(frozen=True)
class CalculatorResult:
    per_gpu_bytes: dict[str, int]
    kv_cache_tokens: int | None = None
    max_concurrency: float | None = None
    assumptions: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)


Calculator = Callable[[Profile], Any]



def normalise_result(result: Any) -> CalculatorResult:
    """Accept an ``Estimate``, a ``CalculatorResult`` or a mapping; reject anything else with a clear message."""
    if isinstance(result, CalculatorResult):
        return result
    if isinstance(result, Estimate):
        return CalculatorResult(dict(result.per_gpu_bytes), result.kv_cache_tokens, result.max_concurrency,
                                list(result.assumptions), dict(result.inputs))
    if not isinstance(result, Mapping) or not isinstance(result.get("per_gpu_bytes"), Mapping):
        raise CalculatorError(f"calculator returned {type(result).__name__}; expected an object with "
                              "'per_gpu_bytes' (component -> bytes)")
    per_gpu: dict[str, int] = {}
    for name, value in result["per_gpu_bytes"].items():
        if name not in MEMORY_COMPONENTS:
            raise CalculatorError(f"calculator returned unknown component {name!r}; expected {MEMORY_COMPONENTS}")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CalculatorError(f"calculator returned per_gpu_bytes.{name} = {value!r}; expected bytes")
        per_gpu[name] = int(value)
    tokens = result.get("kv_cache_tokens")
    conc = result.get("max_concurrency")
    return CalculatorResult(
        per_gpu, int(tokens) if isinstance(tokens, (int, float)) else None,
        float(conc) if isinstance(conc, (int, float)) else None,
        [str(a) for a in result.get("assumptions") or []], dict(result.get("inputs") or {}),
    )
