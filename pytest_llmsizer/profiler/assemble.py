"""Profiles from what a run measured: the engine log for the components, the device for the totals.

Nothing is invented: a component the log does not state stays absent, the device readings are the device's, and a
number derived by formula (transformers activations) says so with its formula. Pure: no file or device access.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from pytest_llmsizer.errors import LlmsizerError, ProfileError
from pytest_llmsizer.profile.errors_fmt import problems_from_validation
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.profile.vllm_log import profile_from_log  # the one import of the vLLM log reader
from pytest_llmsizer.profiler.devices import DeviceInfo
from pytest_llmsizer.profiler.sampler import MemoryTrace
from pytest_llmsizer.units import GiB

_HF_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class RunFacts:
    """What every profiled run knows besides its log: the request, the devices and the software."""

    model: str
    engine: str
    batch_size: int
    input_len: int
    output_len: int
    tensor_parallel_size: int
    devices: tuple[DeviceInfo, ...]
    device_tool: str
    trace: MemoryTrace
    reference: str
    software: dict[str, str] = field(default_factory=dict)
    extra_args: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    notes: tuple[str, ...] = ()


def engine_args_dict(args: list[str]) -> dict[str, Any]:
    """``--max-model-len 4096 --enforce-eager`` -> {"max-model-len": "4096", "enforce-eager": True}, verbatim."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if eq:
                out[name] = value
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                out[name] = args[i + 1]
                i += 1
            else:
                out[name] = True
        else:
            out.setdefault("_positional", []).append(arg)
        i += 1
    return out


def _device_block(facts: RunFacts, gpus: int) -> dict[str, Any]:
    t = facts.trace
    return {"tool": facts.device_tool, "baseline_bytes": t.baseline[:gpus], "peak_bytes": t.peak[:gpus],
            "final_bytes": t.final[:gpus], "unit_read": "B", "provenance": "device"}


def _device_notes(facts: RunFacts, gpus: int) -> str:
    t = facts.trace
    start = (f"{t.peak_from_s:.1f} s after launch (readings before left out: the model was built from its config, "
             f"see below)" if t.peak_from_s > 0 else "launch")
    parts = [f"[profiler] device memory sampled by {facts.device_tool}: {t.samples} readings over {t.seconds:.1f} s; "
             f"baseline = median of 3 readings before launch, peak = highest reading per GPU from {start} to exit "
             f"(the reading after exit included), final = the reading after exit."]
    if len(t.baseline) > gpus:
        others = [i for i in range(gpus, len(t.baseline)) if t.peak[i] > t.baseline[i]]
        parts.append(f"{len(t.baseline)} GPUs visible, the run used the first {gpus}"
                     + (f"; GPU {', '.join(map(str, others))} also grew during the run (another process?)"
                        if others else "") + ".")
    return " ".join(parts)


def _validate(data: dict[str, Any], reference: str) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as e:
        raise ProfileError(reference, problems_from_validation(e)) from None


def _hardware(facts: RunFacts, gpus: int, memory_bytes: int | None) -> dict[str, Any]:
    first = facts.devices[0]
    names = {d.name for d in facts.devices[:gpus]}
    return {
        "gpu_name": first.name if len(names) == 1 else " + ".join(sorted(names)),
        "vendor": first.vendor if first.vendor in ("nvidia", "amd") else "other",
        "gpu_count": gpus,
        "memory_per_gpu_bytes": memory_bytes,
        "driver": first.driver,
    }


def vllm_profile(log_text: str, facts: RunFacts, *, failure: str | None = None) -> tuple[Profile, str | None]:
    """The profile of one vLLM run and the failure (None when sound).

    The components, KV capacity and engine settings come from the log through the project's vLLM log reader; a log
    the reader cannot turn into a profile is itself a failure, and the profile then holds the device readings only.
    """
    tp = facts.tensor_parallel_size
    runtime_total = facts.devices[0].runtime_total_bytes if facts.devices else None
    try:
        base = profile_from_log(log_text, source=facts.reference, model=facts.model, gpu=facts.devices[0].name,
                                tp=tp)
        data = base.model_dump(mode="json", exclude_none=True)
    except (LlmsizerError, ProfileError) as e:
        reason = e.render() if isinstance(e, ProfileError) else str(e)
        failure = failure or f"the log could not be read into a profile: {reason}"
        data = {"model": {"id": facts.model}, "engine": {"name": "vllm", "tensor_parallel_size": tp},
                "source": {"reference": facts.reference}, "measurements": {}}
    gpus = int(data.get("hardware", {}).get("gpu_count", tp))
    if gpus > len(facts.devices):
        raise LlmsizerError(f"the run used {gpus} GPUs but only {len(facts.devices)} are visible to the profiler")
    logged = data.get("hardware", {}).get("memory_per_gpu_bytes")
    data["hardware"] = _hardware(facts, gpus, logged if logged is not None else runtime_total)
    if logged is not None and runtime_total is not None and logged != runtime_total:
        data.setdefault("source", {})["notes"] = " ".join(filter(None, [
            data.get("source", {}).get("notes"),
            f"[profiler] memory_per_gpu_bytes is the log's total_gpu_memory; the device reports "
            f"{runtime_total / GiB:.3f} GiB visible to the runtime."]))
    if failure is None and not facts.trace.grew(range(gpus)):
        failure = (f"peak equals baseline: no GPU the run used rose above its baseline "
                   f"({', '.join(f'GPU {i} {facts.trace.baseline[i] / GiB:.2f} GiB' for i in range(gpus))}); "
                   "the engine did not run on the GPUs the profiler watched, or did not allocate")
    _common(data, facts, gpus, failure)
    engine = data.setdefault("engine", {})
    if facts.extra_args:
        engine["extra_args"] = {**engine.get("extra_args", {}), **facts.extra_args}
    return _validate(data, facts.reference), failure


def _common(data: dict[str, Any], facts: RunFacts, gpus: int, failure: str | None) -> None:
    data["workload"] = {"batch_size": facts.batch_size, "input_tokens": facts.input_len,
                        "output_tokens": facts.output_len}
    data.setdefault("measurements", {})["device"] = _device_block(facts, gpus)
    source = data.setdefault("source", {})
    notes = [n for n in (source.get("notes"), _device_notes(facts, gpus)) if n]
    if facts.seconds is not None:
        notes.append(f"[profiler] the engine ran {facts.seconds:.1f} s.")
    notes += [f"[profiler] {n}" for n in facts.notes]
    source.update({
        "reference": facts.reference,
        "kind": "measured-run",
        "collected": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "notes": " ".join(notes)[:5000],
        "software": dict(facts.software) or None,
        "failure": failure[:5000] if failure else None,
    })
    if source.get("original_format") is None:
        source.pop("original_format", None)
    for key in [k for k, v in source.items() if v is None]:
        del source[key]


@dataclass(frozen=True)
class TransformersMeasurement:
    """What one in-process transformers run measured on its GPU (bytes)."""

    weights_allocated: int
    """torch.cuda.memory_allocated() after loading, before any input"""
    reserved_after_load: int
    """torch.cuda.memory_reserved() after loading"""
    device_used_after_load: int
    """the device reader's reading after loading"""
    kv_cache_bytes: int
    """bytes of the tensors of the KV cache generate() returned"""
    kv_cache_tokens: int
    """tokens the returned cache holds per sequence x batch (the longest layer)"""
    allocator_peak: int
    """torch.cuda.max_memory_allocated() during generate(), after a reset"""
    runtime_total_bytes: int
    """torch.cuda.mem_get_info()[1]: the device total the runtime sees"""
    num_parameters: int
    dtype: str
    generated_tokens: int
    """new tokens per sequence generate() produced"""


def transformers_profile(m: TransformersMeasurement, facts: RunFacts, *, config: dict[str, Any] | None,
                         failure: str | None = None) -> tuple[Profile, str | None]:
    """The profile of one transformers run: weights and KV measured, activations the measured remainder."""
    base = facts.trace.baseline[0]
    activations = m.allocator_peak - m.weights_allocated - m.kv_cache_bytes
    non_torch = m.device_used_after_load - base - m.reserved_after_load
    total = facts.trace.peak[0] - base
    comps: dict[str, Any] = {
        "weights": {"bytes": m.weights_allocated, "provenance": "device", "confidence": "high", "unit_read": "B",
                    "note": "torch.cuda.memory_allocated() after the model was built on the GPU, before any input"},
        "kv_cache": {"bytes": m.kv_cache_bytes, "provenance": "device", "confidence": "high", "unit_read": "B",
                     "note": f"bytes of the KV-cache tensors generate() returned ({m.kv_cache_tokens} cached "
                             f"tokens per sequence in the longest layer, batch {facts.batch_size})"},
        "activations": {"bytes": activations, "provenance": "derived", "confidence": "medium", "unit_read": "B",
                        "note": f"derived: allocator peak during generate() {m.allocator_peak} B - weights "
                                f"{m.weights_allocated} B - KV cache {m.kv_cache_bytes} B (the measured remainder)"},
        "non_torch": {"bytes": non_torch, "provenance": "device", "confidence": "medium", "unit_read": "B",
                      "note": f"device reading after load {m.device_used_after_load} B - baseline {base} B - "
                              f"torch.cuda.memory_reserved() {m.reserved_after_load} B: CUDA context, cuBLAS "
                              "workspaces, other memory outside torch's allocator"},
        "total": {"bytes": total, "provenance": "device", "confidence": "high", "unit_read": "B",
                  "note": "device peak - device baseline (the process's whole footprint on the GPU, including "
                          "allocator caching and the CUDA context)"},
    }
    if activations < 0 or non_torch < 0:
        comps = {k: v for k, v in comps.items() if v["bytes"] >= 0}
    data: dict[str, Any] = {
        "model": {"id": facts.model, "num_parameters": m.num_parameters, "dtype": m.dtype, "config": config},
        "engine": {"name": "transformers", "tensor_parallel_size": 1},
        "source": {"reference": facts.reference, "original_format": "llmsizer profile transformers"},
        "measurements": {"components": comps, "kv_cache_tokens": m.kv_cache_tokens * facts.batch_size},
    }
    if config is None:
        del data["model"]["config"]
    data["hardware"] = _hardware(facts, 1, m.runtime_total_bytes)
    if failure is None and not facts.trace.grew([0]):
        failure = "peak equals baseline: the device reading never rose above the baseline during the run"
    if failure is None and m.generated_tokens != facts.output_len:
        failure = f"generate() produced {m.generated_tokens} new tokens, not the {facts.output_len} asked for"
    _common(data, facts, 1, failure)
    if facts.extra_args:
        data["engine"]["extra_args"] = dict(facts.extra_args)
    return _validate(data, facts.reference), failure


def model_id_for(model: str, config: dict[str, Any] | None, file_name: str | None) -> str:
    """The id a profile names: the Hugging Face id given, else the config's ``_name_or_path`` when it is one,
    else ``org/name`` from a shared/data/model-configs file name (``org--name.json``), else the file name."""
    if config is None:
        return model
    name = config.get("_name_or_path")
    if isinstance(name, str) and _HF_ID.fullmatch(name):
        return name
    if file_name:
        stem = file_name.removesuffix(".json")
        if stem == "config":
            return model
        if "--" in stem:
            org, _, rest = stem.partition("--")
            return f"{org}/{rest}"
        return stem
    return model
