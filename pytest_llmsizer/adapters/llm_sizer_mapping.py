"""Map a profile to the original LLM Sizer's inputs, and its answer back to our per-GPU bytes. Pure: no I/O.

The original LLM Sizer (github.com/AMD-melliott/llm-sizer) is a TypeScript calculator with its own model and GPU
catalogs (``llm_sizer_catalog`` finds a profile's model and GPU in them). Its
``calculate`` takes a model id, a GPU id, a GPU count N, a weight quantization (fp16|fp8|int8|int4), a KV
quantization (fp16_bf16|fp8_bf16|int8), a batch size B, one sequence length S and a user count U, and answers GB
(1e9 bytes) for the WHOLE deployment (``../shared/notes/llm-sizer-origin.md`` section 2.1):

* ``baseWeights`` = parameters x bits / 8, all ranks together (plus ``visionWeights`` and ``projectorWeights`` for
  its multimodal entries);
* ``kvCache`` = 2 x layers x KV heads x hidden/heads x KV bytes x B x S x U, all ranks together;
* ``activations``, ``frameworkOverhead``, ``multiGPUOverhead``; ``usedVRAM`` is their sum.
* The GPU enters only ``totalVRAM`` (and the speed estimate), never a memory figure.

What it can be compared with, and so what this adapter returns:

* **weights per GPU, always**: (baseWeights + visionWeights + projectorWeights) x 1e9 / N with N = TP x PP (a
  data-parallel replica holds a full TP x PP copy, so DP does not divide the weights).
* **kv_cache and total per GPU only when the engine allocates KV for the workload** (``engine.name ==
  "transformers"`` with a ``workload``): KV then grows to B x (input + output) tokens, which is what LLM Sizer's
  formula counts. vLLM, SGLang and TensorRT-LLM preallocate a KV pool from ``gpu_memory_utilization`` x GPU memory
  minus everything else, whatever the workload (origin notes 6.1.1): the profiled ``kv_cache`` is that pool and the
  profiled total is mostly that pool, so a B x S figure is not an estimate of either. In particular
  ``max_num_seqs`` x ``max_model_len`` is a bound on concurrent tokens, not the pool's size (the pool may hold far
  more tokens, or fewer), so it would not make LLM Sizer's KV comparable either.
* never ``kv_cache_tokens`` or ``max_concurrency``: LLM Sizer has no KV-capacity concept.

For those engine-log profiles (no workload) the adapter passes B = 1 and S = ``max_model_len`` (else LLM Sizer's own
default, 4096): one full-length sequence. Only weights are returned, and weights do not depend on B or S.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_llmsizer.adapters.llm_sizer_catalog import Decline, SizerCatalog, match_gpu, match_model
from pytest_llmsizer.units import GB

DEFAULT_SEQ_LENGTH = 4096
"""LLM Sizer's own default ``--seq-length`` (its CLI and UI), used when the profile gives no max_model_len."""

DYNAMIC_KV_ENGINES = frozenset({"transformers"})
"""Engines whose KV cache grows with the workload (B x S tokens), the only case LLM Sizer's KV formula describes."""

PREALLOCATING_ENGINES = frozenset({"vllm", "sglang", "tensorrt-llm"})
"""Engines that reserve a KV pool from a memory fraction at start-up, whatever the workload."""

WEIGHT_PARTS = ("baseWeights", "visionWeights", "projectorWeights")
"""The parts of LLM Sizer's ``memoryBreakdown`` that are weights."""

_DEFAULT_BITS = {"awq": 4, "mxfp4": 4, "nvfp4": 4, "fp8": 8}
"""Bit widths a quantization method implies when neither the profile nor the checkpoint's config says."""


@dataclass(frozen=True)
class SizerInputs:
    """One call of LLM Sizer's ``calculate`` (the fields of its ``CalculateOptions``)."""

    model: str
    gpu: str
    gpus: int
    quant: str
    kv_quant: str
    batch_size: int
    seq_length: int
    users: int = 1

    def options(self) -> dict[str, Any]:
        """The object its ``buildCalculateResult`` takes (what its CLI builds from the command line)."""
        return {"model": self.model, "gpu": self.gpu, "gpus": self.gpus, "quant": self.quant,
                "kvQuant": self.kv_quant, "type": "generation", "batchSize": self.batch_size,
                "seqLength": self.seq_length, "users": self.users}

    def cli_args(self) -> list[str]:
        """The same call as arguments of ``npx tsx src/cli/index.ts``: what a user types to reproduce it."""
        return ["calculate", "-m", self.model, "-g", self.gpu, "-n", str(self.gpus), "--quant", self.quant,
                "--kv-quant", self.kv_quant, "--batch-size", str(self.batch_size), "--seq-length",
                str(self.seq_length), "--users", str(self.users), "-o", "json"]


@dataclass(frozen=True)
class Plan:
    """What to ask LLM Sizer for one profile, which quantities its answer may be compared with, and why."""

    inputs: SizerInputs
    returned: tuple[str, ...]
    num_parameters: int
    assumptions: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------------------------------------------
# quantization


def _quant_of(profile: Mapping[str, Any], arch: Mapping[str, Any] | None) -> tuple[str | None, int | None, str]:
    pq = profile.get("model", {}).get("quantization") or {}
    aq = (arch or {}).get("quantization") or {}
    method = str(pq.get("method") or aq.get("method") or "").casefold() or None
    bits = pq.get("bits") or aq.get("bits") or (_DEFAULT_BITS.get(method) if method else None)
    detail = " ".join(str(x) for x in (pq.get("detail"), aq.get("source_method")) if x).casefold()
    return method, bits, detail


def weight_quantization(profile: Mapping[str, Any], arch: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """LLM Sizer's ``--quant`` for the profile's weights (fp16|fp8|int8|int4), with a note when it approximates."""
    method, bits, detail = _quant_of(profile, arch)
    if method and method not in ("none", "null"):
        if bits is None:
            raise Decline(f"quantization {method!r} with no bit width in the profile or the checkpoint config: "
                          "no LLM Sizer equivalent known")
        if bits == 4:
            return "int4", f"{method} {bits}-bit weights -> LLM Sizer int4 (4 bits a parameter, no scales)"
        if bits == 8:
            if "fp8" in method or "fp8" in detail:
                return "fp8", None
            return "int8", f"{method} 8-bit weights -> LLM Sizer int8"
        if bits == 16:
            return "fp16", None
        raise Decline(f"{method} {bits}-bit weights: LLM Sizer knows 16, 8 and 4 bits only")
    dtype = str(profile.get("model", {}).get("dtype") or "").casefold()
    if dtype in ("float32", "fp32", "float"):
        raise Decline("float32 weights: LLM Sizer's weight options are fp16, fp8, int8 and int4 (no fp32)")
    return "fp16", None


def kv_quantization(profile: Mapping[str, Any]) -> str | None:
    """LLM Sizer's ``--kv-quant`` for the profile's KV cache dtype; None when it has no equivalent."""
    kv = str(profile.get("engine", {}).get("kv_cache_dtype") or "auto").casefold()
    if kv.startswith("fp8") or "fp8" in kv:
        return "fp8_bf16"
    if kv in ("auto", "bfloat16", "float16", "fp16", "bf16", "half"):
        return "fp16_bf16"
    if kv == "int8":
        return "int8"
    return None


# ---------------------------------------------------------------------------------------------------------------
# the plan and the answer


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def plan_for(request: Mapping[str, Any], catalog: SizerCatalog) -> Plan:
    """The LLM Sizer call for one protocol request (``llmsizer-calculator/1``), or ``Decline`` with the reason.

    Reads only the profile's facts (model id, GPU name, quantization, KV dtype, TP, PP, workload, engine) and the
    checkpoint's quantization from ``inputs.architecture`` when the profile does not state it; never the
    measurements.
    """
    profile = request.get("profile")
    if not isinstance(profile, Mapping) or not isinstance(profile.get("model"), Mapping):
        raise Decline("request has no profile.model")
    inputs = request.get("inputs") if isinstance(request.get("inputs"), Mapping) else None
    arch = inputs.get("architecture") if inputs and isinstance(inputs.get("architecture"), Mapping) else None
    engine = profile.get("engine") or {}
    hardware = profile.get("hardware") or {}
    model_id = str(profile["model"].get("id") or "")
    if not model_id:
        raise Decline("profile.model.id is empty")

    quant_problem: Decline | None = None
    try:
        quant, quant_note = weight_quantization(profile, arch)
    except Decline as e:  # said after the model is found: "not in the catalog" is the more basic reason
        quant, quant_note, quant_problem = "", None, e
    model, how = match_model(model_id, catalog, quantized=quant != "fp16")
    if quant_problem is not None:
        raise quant_problem
    gpu, gpu_how = match_gpu(hardware.get("gpu_name"), hardware.get("memory_per_gpu_bytes"), catalog)
    tp = _positive_int(engine.get("tensor_parallel_size")) or 1
    pp = _positive_int(engine.get("pipeline_parallel_size")) or 1
    n = tp * pp

    assumptions = [f"model {model_id!r} -> LLM Sizer {model.id!r} {how} ({model.parameters_billions:g}B parameters "
                   "in its catalog)", f"GPU {gpu_how}"]
    if quant_note:
        assumptions.append(quant_note)
    stated = profile.get("workload")
    workload: Mapping[str, Any] | None = stated if isinstance(stated, Mapping) else None
    engine_name = str(engine.get("name") or "vllm")
    kv_quant = kv_quantization(profile)
    if engine_name in DYNAMIC_KV_ENGINES and workload is not None:  # KV grows with this workload
        if kv_quant is None:
            raise Decline(f"KV cache dtype {engine.get('kv_cache_dtype')!r}: LLM Sizer knows fp16/bf16, fp8 "
                          "and int8 only")
        batch = _positive_int(workload.get("batch_size")) or 1
        seq = int(workload.get("input_tokens") or 0) + int(workload.get("output_tokens") or 0)
        if seq <= 0:
            raise Decline("workload has no tokens (input_tokens + output_tokens = 0)")
        returned: tuple[str, ...] = ("weights", "kv_cache", "total")
        assumptions.append(f"{engine_name} allocates KV for the workload: batch {batch} x sequence {seq} "
                           "(input + output tokens), 1 user; weights, kv_cache and total compared")
    else:
        if kv_quant is None:
            assumptions.append(f"KV cache dtype {engine.get('kv_cache_dtype')!r} has no LLM Sizer equivalent: "
                               "fp16_bf16 passed (KV is not compared)")
            kv_quant = "fp16_bf16"
        batch = 1
        max_len = _positive_int(engine.get("max_model_len"))
        seq = max_len or DEFAULT_SEQ_LENGTH
        returned = ("weights",)
        if engine_name in DYNAMIC_KV_ENGINES:
            why = "the profile has no workload"
        elif engine_name in PREALLOCATING_ENGINES:
            why = f"{engine_name} preallocates its KV pool from gpu_memory_utilization"
        else:
            why = f"engine {engine_name!r} is not known to size its KV cache by the workload"
        assumptions.append(f"only weights compared: {why}, so LLM Sizer's batch x sequence KV (batch 1 x "
                           f"{seq} tokens, {'max_model_len' if max_len else 'its default length'}), "
                           "activations and overhead describe no profiled quantity")
    assumptions.append(f"LLM Sizer answers GB (1e9 bytes) for the whole deployment, TP {tp} x PP {pp} = {n} "
                       f"GPU(s); divided by {n} for per-GPU bytes")
    return Plan(SizerInputs(model.id, gpu.id, n, quant, kv_quant, batch, seq), returned,
                round(model.parameters_billions * 1e9), tuple(assumptions))


def _gb(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"LLM Sizer answered {where} = {value!r}; expected a non-negative number of GB")
    return float(value)


def per_gpu_bytes(gb_whole: float, gpus: int) -> int:
    """Whole-deployment GB (1e9 bytes, LLM Sizer's unit) -> bytes on one of ``gpus`` GPUs."""
    return round(gb_whole * GB / gpus)


def answer_from(result: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    """The protocol answer for LLM Sizer's ``CalculateResult``: only the quantities ``plan.returned`` names."""
    breakdown = result.get("memoryBreakdown")
    if not isinstance(breakdown, Mapping):
        raise ValueError(f"LLM Sizer answered no memoryBreakdown object: {sorted(result)}")
    n = plan.inputs.gpus
    weights_gb = _gb(breakdown.get("baseWeights"), "memoryBreakdown.baseWeights")
    extra = [p for p in WEIGHT_PARTS[1:] if breakdown.get(p)]
    for part in extra:
        weights_gb += _gb(breakdown[part], f"memoryBreakdown.{part}")
    out: dict[str, int] = {"weights": per_gpu_bytes(weights_gb, n)}
    assumptions = list(plan.assumptions)
    if extra:
        assumptions.append(f"weights = baseWeights + {' + '.join(extra)} (its multimodal entry)")
    if "kv_cache" in plan.returned:
        out["kv_cache"] = per_gpu_bytes(_gb(breakdown.get("kvCache"), "memoryBreakdown.kvCache"), n)
    if "total" in plan.returned:
        out["total"] = per_gpu_bytes(_gb(result.get("usedVRAM"), "usedVRAM"), n)
    return {
        "per_gpu_bytes": out,
        "assumptions": assumptions,
        "inputs": {"num_parameters": plan.num_parameters, "llm_sizer": plan.inputs.options(),
                   "llm_sizer_cli": shlex.join(["npx", "tsx", "src/cli/index.ts", *plan.inputs.cli_args()])},
    }

