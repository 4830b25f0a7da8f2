"""Real vLLM startup-log records as calculator test cases (shared by accuracy.py and fit.py).

The records are read from ../shared/data at run time; nothing from them is copied into the project.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pytest_llmsizer.calculator import Estimate, EstimateRequest, estimate  # noqa: E402
from pytest_llmsizer.calculator.resolve import request_from_options  # noqa: E402
from pytest_llmsizer.calculator.versions import version_from_log_format  # noqa: E402
from pytest_llmsizer.units import GiB  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "vllm-startup-logs"
ACCELERATORS = {"H200": "NVIDIA H200", "B200": "NVIDIA B200", "MI300X": "AMD Instinct MI300X"}


@dataclass(frozen=True)
class Case:
    """One real log record, normalised: what the engine was asked, and what it logged."""

    source: str
    record_id: str
    model: str
    settings: dict[str, Any]
    measured: dict[str, float]  # component -> value (GiB for memory; tokens; x)


def split_of(record_id: str) -> str:
    """Deterministic half split by record id: 'fit' or 'holdout'."""
    return "fit" if int(hashlib.sha256(record_id.encode()).hexdigest(), 16) % 2 == 0 else "holdout"


def used_for_fitting(case: Case) -> bool:
    """Whether ``benchmarks/fit.py`` may fit on this record: vme-dev, "fit" split, a release build (a development
    build is not a release's behaviour). Everything else is held out."""
    version = str(case.settings.get("engine_version") or "")
    return case.source == "vme-dev" and split_of(case.record_id) == "fit" and ".dev" not in version


def _runtime_args(text: str | None) -> dict[str, str]:
    args = {}
    for part in (text or "").split(";"):
        key, _, value = part.partition(":")
        if key.strip():
            args[key.strip()] = value.strip()
    return args


def vme_cases(path: Path) -> list[Case]:
    cases = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        args = _runtime_args(r.get("runtime_args"))
        settings: dict[str, Any] = {
            "gpu": ACCELERATORS.get(r["accelerator"], r["accelerator"]),
            "gpu_memory_bytes": round(r["gpu_total_gib"] * GiB),
            "tensor_parallel_size": r.get("tensor_parallel_size") or 1,
            "pipeline_parallel_size": r.get("pipeline_parallel_size") or 1,
            "data_parallel_size": r.get("data_parallel_size") or 1,
            "enable_expert_parallel": "enable-expert-parallel" in args,
            "language_model_only": "language-model-only" in args,
            "kv_cache_dtype": r.get("kv_cache_dtype"),
            "gpu_memory_utilization": r.get("gpu_memory_utilization"),
            "max_model_len": r.get("max_model_len"),
            "enforce_eager": bool(r.get("enforce_eager")),
            "engine_version": r.get("vllm_version"),
            "quantization": r.get("quantization"),
        }
        for key, field in (("max-num-seqs", "max_num_seqs"), ("max-num-batched-tokens", "max_num_batched_tokens"),
                           ("block-size", "block_size")):
            if key in args:
                settings[field] = int(args[key])
        if "dtype" in args and args["dtype"] not in ("auto", ""):
            settings["dtype"] = args["dtype"]
        measured = {}
        for comp, field in (("weights", "weights_gib"), ("kv_cache", "available_kv_cache_gib"),
                            ("kv_cache_tokens", "kv_cache_tokens"), ("max_concurrency", "max_concurrency"),
                            ("cuda_graphs", "cuda_graphs_gib")):
            if r.get(field) is not None:
                measured[comp] = float(r[field])
        if r.get("max_concurrency_tokens") and r.get("max_model_len") and \
                r["max_concurrency_tokens"] != r["max_model_len"]:
            measured.pop("max_concurrency", None)  # concurrency quoted for another length: not comparable
        cases.append(Case("vme-dev", r["id"], r["model"], settings, measured))
    return cases


def issue_thread_cases(path: Path) -> tuple[list[Case], list[tuple[str, str]]]:
    """Complete issue-thread records: a model, a GPU or its memory, and at least one logged quantity."""
    cases, incomplete = [], []
    for i, line in enumerate(path.read_text().splitlines()):
        r = json.loads(line)
        rid = f"{r['source']}#{i}"
        measured = {}
        for comp, field in (("weights", "weights_gib"), ("kv_cache", "kv_cache_gib"),
                            ("kv_cache_tokens", "kv_cache_tokens"), ("max_concurrency", "max_concurrency"),
                            ("activations", "activation_peak_gib"), ("non_torch", "non_torch_gib"),
                            ("cuda_graphs", "cuda_graph_gib")):
            if r.get(field) is not None:
                measured[comp] = float(r[field])
        if not (r.get("gpu_name") or r.get("total_gpu_memory_gib")) or not measured:
            incomplete.append((rid, "record lacks the GPU (name or memory) or any logged quantity"))
            continue
        settings = {
            "gpu": r.get("gpu_name"),
            "gpu_memory_bytes": round(r["total_gpu_memory_gib"] * GiB) if r.get("total_gpu_memory_gib") else None,
            "tensor_parallel_size": r.get("tensor_parallel_size") or 1,
            "pipeline_parallel_size": r.get("pipeline_parallel_size") or 1,
            "kv_cache_dtype": r.get("kv_cache_dtype"),
            "gpu_memory_utilization": r.get("gpu_memory_utilization"),
            "max_model_len": r.get("max_model_len"),
            "max_num_seqs": r.get("max_num_seqs"),
            "max_num_batched_tokens": r.get("max_num_batched_tokens"),
            "block_size": r.get("block_size"),
            "enforce_eager": bool(r.get("enforce_eager")),
            "engine_version": r.get("vllm_version") or version_from_log_format(r.get("log_lines")),
            "dtype": r.get("dtype"),
        }
        model = r["model"].split(" (")[0]
        cases.append(Case("issue-threads", rid, model, settings, measured))
    return cases, incomplete


def request_for(case: Case) -> EstimateRequest:
    """The calculator request a record implies (the same path as ``llmsizer estimate``)."""
    settings = {k: v for k, v in case.settings.items() if v is not None}
    gpu = settings.pop("gpu", None)
    memory = settings.pop("gpu_memory_bytes", None)
    reported = settings.pop("quantization", None)
    # vLLM reports the scheme it detected in the checkpoint. The catalog entry (or its name suffix) usually carries
    # the details (scales, ignore lists); only when it knows no quantization at all is the reported one applied.
    request = request_from_options(case.model, gpu=gpu, gpu_memory_bytes=memory, **settings)
    if request.arch.quantization is None and reported in ("fp8", "modelopt"):
        request = request_from_options(case.model, gpu=gpu, gpu_memory_bytes=memory, quantization="fp8",
                                       **settings)
    return request


def calculated(est: Estimate) -> dict[str, float]:
    """The logged quantities as the calculator predicts them (GiB for memory)."""
    pg = est.per_gpu_bytes
    return {
        "weights": pg["weights"] / GiB, "kv_cache": est.details.get("kv_cache_available_bytes", pg["kv_cache"]) / GiB,
        "kv_cache_tokens": float(est.kv_cache_tokens or 0), "max_concurrency": float(est.max_concurrency or 0),
        "activations": pg["activations"] / GiB, "non_torch": pg["non_torch"] / GiB,
        "cuda_graphs": pg["cuda_graphs"] / GiB,
    }




def run_case(case: Case) -> dict[str, float]:
    return calculated(estimate(request_for(case)))

