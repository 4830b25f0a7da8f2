"""Detection and readers for the original LLM Sizer profiler formats (llm-sizer-origin.md sections 1.2-1.7).

Detection is by keys only, never by file name, and the most specific format is tried first: v3 files also
carry v2-looking keys (``benchmark_parameters``, ``memory_measurements.baseline``), which is how the original
validator came to misread v3 as v2. The readers live in ``early`` (torch, API), ``bench`` (bench
v1, v2.0) and ``v3``; the path-aware field reading and unit rules they share are in ``common``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_llmsizer.profile.legacy.bench import read_bench_v1, read_v2
from pytest_llmsizer.profile.legacy.early import read_legacy_api, read_legacy_torch
from pytest_llmsizer.profile.legacy.v3 import read_v3
from pytest_llmsizer.profile.model import Profile

TORCH = "llmsizer-legacy-torch"
API = "llmsizer-legacy-api"
BENCH_V1 = "llmsizer-bench-v1"
V2 = "llmsizer-v2.0"
V3 = "llmsizer-v3.0"
UNKNOWN = "unknown"

LEGACY_READERS: dict[str, Callable[[dict[str, Any], str], Profile]] = {
    TORCH: read_legacy_torch,
    API: read_legacy_api,
    BENCH_V1: read_bench_v1,
    V2: read_v2,
    V3: read_v3,
}

V3_TOP_KEYS = ("vllm_internal_metrics", "memory_timeline", "raw_logs", "detailed_gpu_metrics")
V3_BREAKDOWN_KEYS = (
    "kv_cache_allocated_gb",
    "kv_cache_used_gb",
    "graph_capture_gb",
    "vllm_reported_values_used",
)
V2_SNAPSHOTS = ("baseline", "post_warmup", "peak")


def _dict(value: Any) -> dict[str, Any]:
    """Detection must survive any JSON: a non-object where an object is expected simply matches nothing."""
    return value if isinstance(value, dict) else {}


def detect_legacy_format(data: dict[str, Any]) -> str:
    """The legacy format of a parsed JSON object by its keys (section 1.7), or ``"unknown"``."""
    if not isinstance(data, dict):
        return UNKNOWN
    version = data.get("profiler_version", data.get("schema_version"))
    mb = _dict(data.get("memory_breakdown"))
    mm = _dict(data.get("memory_measurements"))
    mi = _dict(data.get("model_info"))
    gi = _dict(data.get("gpu_info"))
    method = mb.get("estimation_method")

    if (
        version == "3.0"
        or method == "vllm_bench_enhanced_v3"
        or any(k in data for k in V3_TOP_KEYS)
        or any(k in mb for k in V3_BREAKDOWN_KEYS)
        or "peak_from_timeline" in mm
    ):
        return V3
    if (
        version == "2.0"
        or method == "vllm_bench_enhanced"
        or "calculator_comparison" in data
        or any(k in mm for k in V2_SNAPSHOTS)
    ):
        return V2
    if "benchmark_parameters" in data:
        return BENCH_V1 if "per_gpu_peak" in mm and version is None else UNKNOWN
    if (
        "inference_stats" in data
        or method == "vllm_preallocated_cache"
        or "gpu_memory_baseline" in gi
        or "model_id" in mi
    ):
        return API
    dtype = mi.get("dtype")
    torch_dtype = isinstance(dtype, str) and dtype.startswith("torch.")
    if "all_measurements" in data or torch_dtype or "total_gb" in mb:
        return TORCH
    return UNKNOWN
