"""Engine policies: how vLLM reserves memory, and what a plain (non-reserving) engine needs.

vLLM (memory-physics.md 2.1): requested = gpu_memory_utilization x total memory; the KV cache is what is left of
that after weights, the profile run's activation peak, non-torch memory and (from v0.21) the CUDA-graph estimate.
A plain Hugging Face transformers engine instead needs weights + the KV of the workload's sequences + the activation
peak of its forward pass + the CUDA context.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict
from typing import Any

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator import deepseek_v4
from pytest_llmsizer.calculator.activations import transformers_forward_bytes, vllm_activation_peak
from pytest_llmsizer.calculator.coefficient_set import BUILTIN_NAME, CoefficientSet, builtin_set
from pytest_llmsizer.calculator.cuda_graphs import bound_release, logged_graph_bytes, released_bytes
from pytest_llmsizer.calculator.feasibility import (
    length_problem,
    memory_problems,
    parallel_problems,
    pipeline_parallel_problem,
    removed_architecture_problem,
)
from pytest_llmsizer.calculator.kv_cache import (
    KvLayout,
    kv_capacity,
    kv_element_bytes,
    kv_layout,
    layer_specs,
    request_kv_bytes,
)
from pytest_llmsizer.calculator.moe_kernels import deepgemm_warmup_bytes, flashinfer_expert_padding, moe_kernel
from pytest_llmsizer.calculator.params import Sharding, pipeline_stages, stage_inventory, total_parameters
from pytest_llmsizer.calculator.platform import RocmLoadFeatures, rocm_load_features, rocm_load_terms
from pytest_llmsizer.calculator.request import Estimate, EstimateRequest
from pytest_llmsizer.calculator.versions import parse_vllm_version, version_bucket
from pytest_llmsizer.calculator.weights import (
    dtype_bytes,
    mla_absorbed_bytes,
    quantized_kinds,
    rotary_cache_bytes,
    serving_dtype,
    split_unconverted_layers,
    weight_bytes,
)
from pytest_llmsizer.catalog.arch import ModelArch
from pytest_llmsizer.errors import EstimateError
from pytest_llmsizer.units import GiB


def _interpolate_by_tp(table: dict[int, float], tp: int) -> float:
    if tp in table:
        return table[tp]
    keys = sorted(table)
    if tp <= keys[0]:
        return table[keys[0]]
    if tp >= keys[-1]:
        return table[keys[-1]]
    lo = max(x for x in keys if x < tp)
    hi = min(x for x in keys if x > tp)
    frac = (math.log2(tp) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
    return table[lo] + frac * (table[hi] - table[lo])


def non_torch_bytes(platform: str, gpus: int, version: tuple[int, int],
                    table: dict[str, dict[str, dict[int, float]]] | None = None) -> tuple[int, str | None]:
    """Non-torch memory for a platform and GPUs per replica at a vLLM version, and the fallback it needed, if any.

    The fitted table (``table``, default the built-in ``NON_TORCH_GIB``) has gaps (no ROCm TP 8 record of vLLM 0.18
    in the fit half, say); a gap takes the nearest older version bucket's value, which the estimate reports as an
    assumption.
    """
    table = k.NON_TORCH_GIB if table is None else table
    buckets = list(k.VERSION_BUCKETS)
    start = buckets.index(version_bucket(version))
    for name in reversed(buckets[: start + 1]):
        sizes = table.get(name, {}).get(platform, {})
        if gpus in sizes or (sizes and min(sizes) < gpus < max(sizes)):
            note = None if name == buckets[start] else (
                f"non-torch memory for {platform} x{gpus} not fitted for vLLM {buckets[start]}; "
                f"used the {name} value")
            return round(_interpolate_by_tp(sizes, gpus) * GiB), note
    oldest = next((table[b] for b in buckets if table.get(b)), None) or k.NON_TORCH_GIB[buckets[0]]
    sizes = oldest.get(platform) or oldest.get("cuda") or next(iter(oldest.values()))
    return round(_interpolate_by_tp(sizes, gpus) * GiB), (
        f"non-torch memory for {platform} x{gpus} outside the fitted range; extrapolated from the nearest size")


def _coefficients(req: EstimateRequest, version: tuple[int, int] | None,
                  assumptions: list[str]) -> CoefficientSet | None:
    """The request's calibration (None: the built-in set), named in the assumptions with any scope mismatch."""
    calibration = req.calibration
    if calibration is None or calibration is builtin_set():
        return None
    assumptions.append(f"{calibration.describe()} in use instead of the built-in coefficients")
    mismatch = calibration.mismatch(version, req.platform)
    if mismatch:
        assumptions.append(mismatch)
    return calibration


def _rocm_load(coefficients: CoefficientSet | None) -> dict | None:
    if coefficients is None:
        return None
    return {**coefficients.table("rocm_load"), "load_growth_gib": coefficients.table("rocm_load_growth_gib")}


V0_DEFAULTS_VERSION = (0, 7)
"""The newest (major, minor) whose API server ran the V0 engine by default (V1 became the default in 0.8)."""


def runs_on_v0(arch: ModelArch, version: tuple[int, int]) -> bool:
    """Whether vLLM runs this model on its V0 engine: every model before 0.8; encoder-decoder models (Mllama), which
    V1 never served, until V0's removal in 0.11."""
    return version <= V0_DEFAULTS_VERSION or arch.cross_attention is not None


def batch_defaults(version: tuple[int, int], gpu_memory_bytes: int, gpu_name: str | None,
                   max_model_len: int) -> k.BatchDefaults:
    """vLLM's max_num_batched_tokens / max_num_seqs defaults for the API server, by version and GPU size."""
    if version < (0, 8):
        return k.BatchDefaults(max(max_model_len, k.V0_MIN_BATCHED_TOKENS), k.V0_MAX_NUM_SEQS)
    if version < (0, 10):
        return k.BATCH_DEFAULTS_V1_EARLY
    # vLLM itself matches the device NAME here (arg_utils._set_default_args: `"a100" not in device_name`, PR #17885)
    is_a100 = bool(gpu_name and "a100" in gpu_name.lower())
    if gpu_memory_bytes >= k.LARGE_GPU_THRESHOLD_BYTES and not is_a100:
        return k.BATCH_DEFAULTS_LARGE_GPU
    return k.BATCH_DEFAULTS_SMALL_GPU


# -- the vLLM budget identity and the KV capacity bookkeeping: ONE home, used by the estimate below, the
# integrity check ``vllm_budget_identity`` and ``benchmarks/fit.py`` -------------------------------------------------

GRAPH_ESTIMATE_IN_BUDGET = (
    "vLLM >= 0.21 subtracts its own CUDA-graph estimate from the KV budget (first capture + second capture x "
    "(captures - 1)); the calculator subtracts the modelled pool instead. Logs show vLLM's estimate above the pool "
    "(0.13 vs 0.09 GiB in the one log we hold; vllm#45178, #50780 report several times more), so the KV cache may "
    "come out high by the difference; the log's 'CUDA graph pool memory: X (actual), Y (estimated)' line gives it")
"""Said with every estimate that charges graphs inside the budget: the estimator's over-count is not modelled (one
log of it in ../shared/data; memory-physics.md 2.3 and 3.4)."""


def cuda_graphs_in_budget(version: tuple[int, int] | None, enforce_eager: bool | None) -> bool | None:
    """Whether vLLM charges the CUDA-graph estimate to the KV budget: from v0.21 (``CUDA_GRAPHS_IN_BUDGET_SINCE``),
    unless eager. None when the version is unknown (then either may hold)."""
    if enforce_eager:
        return False
    if version is None:
        return None
    return version >= k.CUDA_GRAPHS_IN_BUDGET_SINCE


def vllm_kv_pool_bytes(gpu_memory_bytes: int, utilization: float, *, weights: int, activations: int,
                       non_torch: int, cuda_graphs: int = 0) -> int:
    """vLLM's budget identity (memory-physics.md 2.1): the KV pool is what ``utilization x total memory`` leaves
    after the weights, the profile run's activation peak, non-torch memory and the CUDA graphs charged in the budget
    (pass 0 where ``cuda_graphs_in_budget`` is False). Negative when nothing is left (vLLM then refuses to start)."""
    return int(utilization * gpu_memory_bytes) - weights - activations - non_torch - cuda_graphs


def kv_tokens_from_blocks(num_gpu_blocks: int, block_size: int | None) -> int:
    """vLLM's KV capacity in tokens from its block count ("# GPU blocks: N"): N x block_size (default 16)."""
    return num_gpu_blocks * (block_size or k.DEFAULT_BLOCK_SIZE)


def _weights_per_stage(req: EstimateRequest, dtype: str, coefficients: CoefficientSet | None = None, *,
                       rotary_cache: bool = True, vllm_version: tuple[int, int] | None = None,
                       ) -> tuple[list[int], list[range], dict[str, int], list[dict[str, int]],
                                  list[RocmLoadFeatures | None]]:
    """Weight bytes per pipeline stage as vLLM logs them ("Model loading took"), the first stage's bytes by kind,
    and per stage the platform's load-figure terms beyond the weights and the features they are priced from (ROCm:
    ``calculator.platform``; the calibration fits the reserves to these features, so they have this one home).
    ``rotary_cache=False`` leaves out vLLM's max_position x rotary_dim cos/sin buffer, for an engine that has none;
    ``vllm_version`` (vLLM only) adds the padding its FlashInfer fp8 MoE path gives expert weights
    (``moe_kernels.flashinfer_expert_padding``)."""
    arch = req.arch
    sh = Sharding(
        tp=req.tensor_parallel_size, pp=req.pipeline_parallel_size, dp=req.data_parallel_size,
        expert_parallel=req.enable_expert_parallel, replicate_vision=req.mm_encoder_tp_mode != "weights",
        language_model_only=req.language_model_only,
    )
    stages = pipeline_stages(arch.num_layers, sh.pp)
    rotary = rotary_cache_bytes(arch, dtype) if rotary_cache else 0
    totals: list[int] = []
    first_breakdown: dict[str, int] = {}
    platform_terms: list[dict[str, int]] = []
    platform_features: list[RocmLoadFeatures | None] = []
    for i, layers in enumerate(stages):
        if arch.compressed_attention is not None:  # DeepSeek-V4: its own inventory and pricing
            by_kind = deepseek_v4.stage_weight_bytes(arch, layers, first=i == 0, last=i == len(stages) - 1, sh=sh,
                                                     dtype_bytes=dtype_bytes(dtype))
            if i == 0:
                first_breakdown = {kind: round(v) for kind, v in sorted(by_kind.items())}
            platform_terms.append({})  # ROCm load terms are not modelled for V4 (no MI300X log of it)
            platform_features.append(None)
            totals.append(int(sum(by_kind.values())) + rotary)
            continue
        inv = split_unconverted_layers(arch, stage_inventory(arch, layers, first=i == 0, last=i == len(stages) - 1,
                                                             sh=sh), layers, sh, arch.quantization)
        by_kind = weight_bytes(arch, inv, dtype=dtype, quant=arch.quantization, tp=sh.tp)
        if i == 0:
            first_breakdown = {kind: round(v) for kind, v in sorted(by_kind.items())}
        if vllm_version is not None and by_kind.get("experts"):
            factor = flashinfer_expert_padding(arch, sh.tp, version=vllm_version, platform=req.platform,
                                               compute_capability=req.gpu_compute_capability,
                                               expert_parallel=req.enable_expert_parallel)
            if factor != 1.0:
                by_kind["experts_flashinfer_padding"] = by_kind["experts"] * (factor - 1)
        attention_layers = sum(1 for i in layers if arch.layer_attention[i] == "full")
        absorbed = mla_absorbed_bytes(arch, attention_layers, sh.tp, dtype, arch.quantization)
        if absorbed:
            by_kind["mla_absorbed"] = absorbed
        terms: dict[str, int] = {}
        features = None
        if req.platform == "rocm" and req.engine == "vllm":
            quantized = sum(inv.get(kind, 0) for kind in quantized_kinds(arch.quantization))
            features = rocm_load_features(arch, layers, sh, dtype_bytes(dtype), req.gpu_name, quantized,
                                          compute_capability=req.gpu_compute_capability)
            terms = rocm_load_terms(features, sh.tp * sh.pp, _rocm_load(coefficients))
        platform_terms.append(terms)
        platform_features.append(features)
        totals.append(int(sum(by_kind.values())) + rotary + sum(terms.values()))
    return totals, stages, first_breakdown, platform_terms, platform_features


def _common_inputs(req: EstimateRequest, dtype: str) -> dict[str, Any]:
    q = req.arch.quantization
    return {
        "model": req.arch.id,
        "num_parameters": total_parameters(req.arch),
        "gpu": req.gpu_name,
        "gpu_compute_capability": req.gpu_compute_capability,
        "gpu_memory_bytes": req.gpu_memory_bytes,
        "gpu_memory_gib": round(req.gpu_memory_bytes / 2**30, 3),
        "platform": req.platform,
        "engine": req.engine,
        "tensor_parallel_size": req.tensor_parallel_size,
        "pipeline_parallel_size": req.pipeline_parallel_size,
        "data_parallel_size": req.data_parallel_size,
        "enable_expert_parallel": req.enable_expert_parallel,
        "dtype": dtype,
        "quantization": q.model_dump(mode="json", exclude_defaults=True) if q else None,
        "kv_cache_dtype": req.kv_cache_dtype or "auto",
        "language_model_only": req.language_model_only,
        "mm_encoder_tp_mode": req.mm_encoder_tp_mode or "weights-replicated",
    }


def unexplained_key_assumptions(arch: ModelArch) -> list[str]:
    """One sentence per config key the reader neither uses nor knows to be irrelevant (``catalog.config_keys``)."""
    return [f"config key {key} not understood: the estimate may be wrong" for key in arch.unexplained_config_keys]


def estimate_vllm(req: EstimateRequest) -> Estimate:
    arch = req.arch
    assumptions = list(req.assumptions) + unexplained_key_assumptions(arch)
    dtype = serving_dtype(arch, req.dtype)
    version = parse_vllm_version(req.engine_version)
    if version is None:
        version = k.DEFAULT_VLLM_VERSION
        assumptions.append(
            f"vLLM version {req.engine_version!r} not parseable; assumed {version[0]}.{version[1]}"
            if req.engine_version else f"no vLLM version given; assumed {version[0]}.{version[1]}"
        )
    tp, pp = req.tensor_parallel_size, req.pipeline_parallel_size
    coefficients = _coefficients(req, version, assumptions)
    util = req.gpu_memory_utilization or k.DEFAULT_GPU_MEMORY_UTILIZATION
    max_model_len = req.max_model_len or arch.max_model_len_limit
    if not max_model_len:
        raise EstimateError(f"{arch.id}: the config gives no max_position_embeddings; pass --max-model-len")
    problems = parallel_problems(arch, tp, req.data_parallel_size, req.enable_expert_parallel)
    if (no_pp := pipeline_parallel_problem(arch, pp)):
        problems.insert(0, no_pp)
    if (removed := removed_architecture_problem(arch, version)):
        problems.insert(0, removed)
    if (too_long := length_problem(max_model_len, arch.max_model_len_limit, req.allow_long_max_model_len)):
        problems.append(too_long)
    # vLLM 0.8-0.10 ran encoder-decoder models (Mllama) on the V0 engine, with V0's scheduler defaults
    v0 = runs_on_v0(arch, version)
    defaults = batch_defaults(min(version, V0_DEFAULTS_VERSION) if v0 else version, req.gpu_memory_bytes,
                              req.gpu_name, max_model_len)
    if arch.cross_attention is not None:
        assumptions.append(
            f"{arch.cross_attention.architecture} ran on vLLM's V0 engine only (0.10.2 was the last release to "
            f"serve it); the figures are V0's: every one of the {arch.num_layers} "
            f"decoder layers gets KV pages from one pool, the {len(arch.cross_attention.layers)} cross-attention "
            f"layers included; a request with an image also holds up to {arch.cross_attention.encoder_tokens_per_image}"
            " encoder tokens there, which the token capacity and concurrency here do not subtract")
    batched = req.max_num_batched_tokens or defaults.max_num_batched_tokens
    seqs = min(req.max_num_seqs or defaults.max_num_seqs, batched)
    block = req.block_size or (deepseek_v4.DEFAULT_BLOCK_SIZE if arch.compressed_attention else k.DEFAULT_BLOCK_SIZE)
    if not (req.max_num_batched_tokens and req.max_num_seqs):
        assumptions.append(
            f"vLLM {version[0]}.{version[1]} API-server defaults: max_num_batched_tokens={batched}, "
            f"max_num_seqs={seqs} (set --max-num-batched-tokens / --max-num-seqs if the deployment differs)"
        )
    weights_per_stage, stages, weights_by_kind, platform_terms, platform_features = _weights_per_stage(
        req, dtype, coefficients, vllm_version=version)
    stage = max(range(len(stages)), key=lambda i: weights_per_stage[i])
    weights = weights_per_stage[stage]
    act_b = dtype_bytes(dtype)
    moe = moe_kernel(arch, batched, tp, act_b, version=version, platform=req.platform,
                     compute_capability=req.gpu_compute_capability, expert_parallel=req.enable_expert_parallel)
    activations, act_terms = vllm_activation_peak(
        arch, max_num_batched_tokens=batched, max_num_seqs=seqs, tp=tp, act_bytes=act_b, version=version, moe=moe,
        sampler_table=coefficients.table("sampler_bytes_per_seq_vocab") if coefficients else None,
    )
    if moe is not None and not moe.traced:
        assumptions.append(
            f"the fused-MoE kernel vLLM runs for {arch.quantization.method if arch.quantization else '16-bit'} "
            f"experts{' on this GPU (FlashInfer TRT-LLM)' if moe.name == 'flashinfer-trtllm' else ''} was not "
            "traced: its buffers are priced as the Triton kernel's")
    non_torch, non_torch_note = non_torch_bytes(req.platform, tp * pp, version,
                                                coefficients.table("non_torch_gib") if coefficients else None)
    if non_torch_note:
        assumptions.append(non_torch_note)
    # graphs: the figure vLLM logs (pool - cache the capture releases; may be negative), pool: the graphs' memory
    graphs, pool, graph_terms = 0, 0, dict[str, Any]()
    if not req.enforce_eager:
        deepgemm = deepgemm_warmup_bytes(arch, batched, tp, platform=req.platform,
                                         compute_capability=req.gpu_compute_capability,
                                         expert_parallel=req.enable_expert_parallel)
        graphs, pool, graph_terms = logged_graph_bytes(
            arch, req.platform, version, seqs, len(stages[stage]),
            dense_bytes=float(act_terms["forward_dense_bytes"]), moe=moe, deepgemm_bytes=deepgemm,
            compute_capability=req.gpu_compute_capability,
            pool_table=coefficients.table("cuda_graph_pool_gib") if coefficients else None,
            release_table=coefficients.table("cuda_graph_release") if coefficients else None)
        if graph_terms["released_cache_bytes"] and req.gpu_compute_capability is None:
            unknown, fix = (("GPU not named", "name the GPU") if req.gpu_name is None else
                            (f"GPU {req.gpu_name!r} not in the GPU catalog", "name a catalog GPU"))
            assumptions.append(f"{unknown}: taken to be SM >= 9.0, where vLLM's pre-capture FlashInfer autotune "
                               f"leaves cached blocks that the CUDA-graph capture releases ({fix} to be sure)")
        if graph_terms["released_cache_bytes"] and deepgemm:
            without = released_bytes(float(graph_terms["release_coefficient"] or 0.0),
                                     dense_bytes=float(act_terms["forward_dense_bytes"]),
                                     moe_bytes=moe.transient_bytes if moe else 0.0, deepgemm_bytes=0)
            assumptions.append(
                f"DeepGEMM taken to be installed (vLLM's CUDA container images ship it; a plain pip install does not): "
                f"its warm-up of the fp8 block-quantized experts leaves {deepgemm / GiB:.2f} GiB cached, handed back "
                f"by the first CUDA-graph capture; without DeepGEMM vLLM would log "
                f"{(pool - round(without)) / GiB:.2f} GiB")
    graphs_in_budget = bool(cuda_graphs_in_budget(version, req.enforce_eager))
    if graphs_in_budget:
        assumptions.append(GRAPH_ESTIMATE_IN_BUDGET)
    requested = int(util * req.gpu_memory_bytes)
    kv_available = vllm_kv_pool_bytes(req.gpu_memory_bytes, util, weights=weights, activations=activations,
                                      non_torch=non_torch, cuda_graphs=pool if graphs_in_budget else 0)
    if arch.compressed_attention is not None:  # DeepSeek-V4: fixed + growing part per request
        capacities = [
            deepseek_v4.kv_capacity(arch, layers, kv_available, block_size=block, max_model_len=max_model_len,
                                    max_num_batched_tokens=batched)
            for layers in stages
        ]
        limiting = min(capacities, key=lambda c: c.num_blocks)
        v4_layers = stages[capacities.index(limiting)]

        def fits_len(length: int) -> bool:
            need, _, _ = deepseek_v4.request_bytes(arch, v4_layers, block_size=block, max_model_len=max(length, 1),
                                                   max_num_batched_tokens=batched)
            return need <= kv_available
    else:
        kv_specs = [layer_specs(arch, layers, tp, req.kv_cache_dtype, dtype) for layers in stages]
        capacities = [
            kv_capacity(specs, kv_available, block_size=block, max_model_len=max_model_len,
                        max_num_batched_tokens=batched)
            for specs in kv_specs
        ]
        # vLLM allocates the same block count on every stage: the smallest stage capacity decides (vllm#34076)
        limiting = min(capacities, key=lambda c: c.num_blocks)
        limiting_specs = kv_specs[capacities.index(limiting)]

        @functools.cache
        def layout() -> KvLayout:  # only needed when one max-length request does not fit
            return kv_layout(limiting_specs, block)

        def fits_len(length: int) -> bool:
            return layout().request_bytes(max(length, 1), batched) <= kv_available
    kv_bytes = max(kv_available, 0)
    if graph_terms.get("released_cache_bytes"):
        # no more can be released than the memory left free for caching; a deployment without a KV pool never
        # reaches the capture (vLLM stops first), so nothing is released there
        free = req.gpu_memory_bytes - weights - kv_bytes - non_torch if kv_available > 0 else 0
        graphs, graph_terms = bound_release(graph_terms, free)
    total = weights + kv_bytes + activations + non_torch + graphs

    memory, longest = memory_problems(kv_available, limiting, max_model_len, fits_len, v0=v0)
    problems += memory
    inputs = _common_inputs(req, dtype) | {
        "engine_version": req.engine_version,
        "engine_version_assumed": f"{version[0]}.{version[1]}",
        "coefficients": coefficients.name if coefficients else BUILTIN_NAME,
        "gpu_memory_utilization": util,
        "max_model_len": max_model_len,
        "max_num_seqs": seqs,
        "max_num_batched_tokens": batched,
        "block_size": block,
        "enforce_eager": req.enforce_eager,
        "allow_long_max_model_len": req.allow_long_max_model_len,
        "batch_size": req.batch_size,
        "input_len": req.input_len,
        "output_len": req.output_len,
    }
    details: dict[str, Any] = {
        "requested_bytes": requested,
        "kv_cache_available_bytes": kv_available,
        "cuda_graphs_in_budget": graphs_in_budget,
        "kv_bytes_per_token": limiting.bytes_per_token,
        "kv_capacity": asdict(limiting),
        "weights_by_kind_bytes": weights_by_kind,
        "weights_per_pipeline_stage_bytes": weights_per_stage,
        "load_figure_terms_bytes": platform_terms[stage],
        "load_figure_features": asdict(features) if (features := platform_features[stage]) else {},
        "activation_terms": act_terms,
        "cuda_graph_terms": graph_terms,
    }
    if longest is not None:
        details["longest_fitting_max_model_len"] = longest
    if req.batch_size and req.input_len is not None and req.output_len is not None and limiting.max_concurrency:
        need = req.input_len + req.output_len
        fits = need <= max_model_len and req.batch_size * need <= limiting.tokens
        details["workload_fits"] = fits
    return Estimate(
        per_gpu_bytes={"weights": weights, "kv_cache": kv_bytes, "activations": activations,
                       "non_torch": non_torch, "cuda_graphs": graphs, "total": total},
        kv_cache_tokens=limiting.tokens if kv_available > 0 else 0,
        max_concurrency=round(limiting.max_concurrency, 2) if limiting.max_concurrency is not None else None,
        inputs=inputs,
        assumptions=assumptions,
        details=details,
        problems=problems,
    )


def estimate_transformers(req: EstimateRequest) -> Estimate:
    """Required memory for batch x (input + output) tokens on an engine that allocates only what it uses."""
    arch = req.arch
    if req.batch_size is None or req.input_len is None or req.output_len is None:
        raise EstimateError("--engine transformers needs --batch-size, --input-len and --output-len")
    assumptions = list(req.assumptions) + unexplained_key_assumptions(arch)
    dtype = serving_dtype(arch, req.dtype)
    tp = req.tensor_parallel_size
    # Hugging Face's rotary embedding keeps only inv_freq (head_dim / 2 floats) and computes cos/sin for the positions
    # of each forward, so there is no max_position x rotary_dim cache as in vLLM: on the H200 profiles
    # (profiles/gpu-transformers) memory_allocated() after load is 2 bytes x parameters to within 2 MiB, where
    # vLLM's cache would add 0.031 GiB for Llama-3.1-8B and 0.244 GiB for Mistral-Nemo (max_position 1,024,000).
    weights_per_stage, stages, weights_by_kind, _, _ = _weights_per_stage(req, dtype, rotary_cache=False)
    stage = max(range(len(stages)), key=lambda i: weights_per_stage[i])
    weights = weights_per_stage[stage]
    # generate() caches the prompt and every generated token it feeds back; the last one is sampled, never fed, so a
    # sequence ends holding input + output - 1 tokens (1087 of 1024 + 64 on the H200 profiles, in every layer).
    seq_len = req.input_len + max(req.output_len - 1, 0)
    specs = layer_specs(arch, stages[stage], tp, req.kv_cache_dtype, dtype)
    kv = req.batch_size * request_kv_bytes(specs, seq_len)
    act_b = dtype_bytes(dtype)
    prefill = transformers_forward_bytes(arch, req.batch_size * req.input_len, tp, act_b)
    logits = req.batch_size * arch.vocab_size * k.LOGITS_BYTES
    activations = int(max(prefill, 0) + logits)
    coefficients = _coefficients(req, None, assumptions)
    context = coefficients.table("cuda_context_gib") if coefficients else {}
    gib = context.get(req.platform, context.get("cuda"))
    non_torch = k.CUDA_CONTEXT_BYTES if gib is None else round(gib * GiB)
    total = weights + kv + activations + non_torch
    per_seq = request_kv_bytes(specs, seq_len)
    free_for_kv = req.gpu_memory_bytes - weights - activations - non_torch
    concurrency = round(free_for_kv / per_seq, 2) if per_seq > 0 and free_for_kv > 0 else 0.0
    problems = []
    if total > req.gpu_memory_bytes:
        problems.append(f"CUDA out of memory: the workload needs {total / GiB:.2f} GiB per GPU, more than the "
                        f"{req.gpu_memory_bytes / GiB:.2f} GiB the GPU has.")
    assumptions.append("plain engine: KV grows with the workload, no pre-allocated pool; attention uses a "
                       "memory-efficient kernel (no T^2 score matrix)")
    kv_b = kv_element_bytes(req.kv_cache_dtype, dtype)
    inputs = _common_inputs(req, dtype) | {
        "batch_size": req.batch_size, "input_len": req.input_len, "output_len": req.output_len,
        "kv_cache_element_bytes": kv_b,
        "coefficients": coefficients.name if coefficients else BUILTIN_NAME,
    }
    return Estimate(
        per_gpu_bytes={"weights": weights, "kv_cache": kv, "activations": activations, "non_torch": non_torch,
                       "cuda_graphs": 0, "total": total},
        kv_cache_tokens=req.batch_size * seq_len,
        max_concurrency=concurrency,
        inputs=inputs,
        assumptions=assumptions,
        details={"weights_by_kind_bytes": weights_by_kind, "fits": total <= req.gpu_memory_bytes,
                 "kv_bytes_per_token": sum(s.bytes_per_token for s in specs)},
        problems=problems,
    )
