"""DeepSeek-V4 compressed attention: weights per rank and the KV pool (../shared/notes/architectures.md section 2).

KV cache (vLLM forces ``fp8_ds_mla``; every spec has one KV head, replicated across TP ranks):

* every layer keeps a sliding window of 128 tokens in 64-token pages of 584 B per token (448 fp8 NoPE + 64 bf16 RoPE
  + 7 scale + 1 pad), each page aligned to 576 B: 37,440 B;
* a layer with compress ratio r (4 or 128) also keeps one 584 B entry per r tokens in pages of ``block_size`` tokens
  (256 by default: 37,440 B at r = 4, 1,728 B at r = 128); ratio-4 layers add the lightning indexer's key cache,
  132 B (128 fp8 + 4 B scale) per 4 tokens (8,640 B per 256-token page);
* each compressor keeps a small fp32 sliding state: 2 x coff x head_dim per slot (coff 2 at r = 4, 1 at r = 128), in
  blocks of 4 (r = 4) or 8 (r = 128) slots, window coff x r; the indexer's compressor likewise with its 128-wide
  head.

How vLLM packs these into pools (read only in stored copies, not at a recorded commit): the specs are bucketed into
page-size groups, the repeating "layer tuple" is [C4 indexer, C4 KV, C128 KV], groups are split to equal tuple
counts, and window/state pages are padded up to a page size of the MLA groups. Modelled here as: tuples =
max(#C4 layers, #C128 layers) for both compressed kinds; each state page padded to the smallest MLA page that holds
it (compressor 32,832 -> 37,440; the indexer compressor's 8,640 and the window's 37,440 already are one).

What a request of max_model_len L needs, with T = max_num_batched_tokens (admission sizing of sliding specs):
growing pages ceil(L / block) per compressed layer, plus fixed window/state pages ceil(min(w - 1 + T, L) / b) + 1.
vLLM reports capacity as max_concurrency = pool / per-request bytes and "GPU KV cache size" = max_concurrency x L
(vllm#51041), so tokens / GiB is not a per-token cost for this model.
"""

from __future__ import annotations

import math

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator.kv_cache import KvCapacity, sliding_window_pages
from pytest_llmsizer.calculator.params import Inventory, Sharding, padded_vocab_per_rank
from pytest_llmsizer.calculator.weights import quantized_bytes_per_param
from pytest_llmsizer.catalog.arch import CompressedAttentionSpec, ModelArch
from pytest_llmsizer.errors import EstimateError

ENTRY_BYTES = 584
"""One cached latent: 448 fp8 NoPE + 64 bf16 RoPE (128 B) + 7 B scale + 1 B pad."""
DEFAULT_BLOCK_SIZE = 256
"""The V4 attention backend's preferred cache block size (DeepseekSparseSWABackend.get_preferred_block_size)."""
ALIGNMENT = 576
"""Every V4 page is padded to a multiple of 576 B."""
SWA_BLOCK = 64
"""Tokens per sliding-window page (fixed by the backend)."""
INDEXER_SCALE_BYTES = 4
FP32 = 4
COMPRESSOR_BLOCK = {4: 4, 128: 8}
"""Slots per compressor-state page by compress ratio."""


def _spec(arch: ModelArch) -> CompressedAttentionSpec:
    spec = arch.compressed_attention
    if spec is None:
        raise EstimateError(f"{arch.id} has no DeepSeek-V4 compressed attention")
    return spec


def _aligned(n_bytes: int) -> int:
    return math.ceil(n_bytes / ALIGNMENT) * ALIGNMENT


def _coff(ratio: int) -> int:
    return 2 if ratio == 4 else 1


# -- KV cache ------------------------------------------------------------------------------------------------------


def pages(arch: ModelArch, block_size: int) -> dict[str, int]:
    """Page bytes of every V4 KV spec at a cache block size (tokens per page of the compressed specs)."""
    spec = _spec(arch)
    if block_size % 128:
        raise EstimateError(f"{arch.id}: DeepSeek-V4 needs a block size that is a multiple of 128 (its ratio-128 "
                            f"layers store one entry per 128 tokens); got {block_size}")
    index_entry = spec.index_head_dim + INDEXER_SCALE_BYTES
    out = {
        "swa": _aligned(SWA_BLOCK * ENTRY_BYTES),
        "c4_kv": _aligned(block_size // 4 * ENTRY_BYTES),
        "c128_kv": _aligned(block_size // 128 * ENTRY_BYTES),
        "indexer_k": _aligned(block_size // 4 * index_entry),
        "c4_state": _aligned(COMPRESSOR_BLOCK[4] * 2 * _coff(4) * spec.head_dim * FP32),
        "c128_state": _aligned(COMPRESSOR_BLOCK[128] * 2 * _coff(128) * spec.head_dim * FP32),
        "indexer_state": _aligned(COMPRESSOR_BLOCK[4] * 2 * _coff(4) * spec.index_head_dim * FP32),
    }
    return out


def _padded(page: int, mla_pages: list[int]) -> int:
    """A window/state page padded up to the smallest MLA page that holds it (itself when none does)."""
    return min((p for p in mla_pages if p >= page), default=page)


def request_bytes(arch: ModelArch, layers: range, *, block_size: int, max_model_len: int,
                  max_num_batched_tokens: int) -> tuple[int, int, float]:
    """(bytes one max_model_len request needs on one rank, layer tuples, growing bytes per token)."""
    spec = _spec(arch)
    p = pages(arch, block_size)
    ratios = [spec.compress_ratios[i] for i in layers]
    tuples = max(ratios.count(4), ratios.count(128))
    mla = [p["c4_kv"], p["c128_kv"], p["indexer_k"]]
    window = arch.sliding_window or 128
    growing_pages = math.ceil(max_model_len / block_size)
    growing = tuples * growing_pages * (p["c4_kv"] + p["indexer_k"] + p["c128_kv"])
    c4_state = sliding_window_pages(_coff(4) * 4, COMPRESSOR_BLOCK[4], max_model_len, max_num_batched_tokens)
    c128_state = sliding_window_pages(_coff(128) * 128, COMPRESSOR_BLOCK[128], max_model_len, max_num_batched_tokens)
    fixed = tuples * c4_state * (_padded(p["c4_state"], mla) + _padded(p["indexer_state"], mla))
    fixed += tuples * c128_state * _padded(p["c128_state"], mla)
    fixed += len(ratios) * sliding_window_pages(window, SWA_BLOCK, max_model_len, max_num_batched_tokens) * \
        _padded(p["swa"], mla)
    per_token = tuples * (p["c4_kv"] + p["indexer_k"] + p["c128_kv"]) / block_size
    return int(growing + fixed), tuples, per_token


def kv_capacity(arch: ModelArch, layers: range, available_bytes: int, *, block_size: int, max_model_len: int,
                max_num_batched_tokens: int) -> KvCapacity:
    """Concurrency and vLLM's reported token figure (max_concurrency x max_model_len) for one rank's pool."""
    per_request, tuples, per_token = request_bytes(arch, layers, block_size=block_size, max_model_len=max_model_len,
                                                   max_num_batched_tokens=max_num_batched_tokens)
    p = pages(arch, block_size)
    tuple_page = p["c4_kv"] + p["indexer_k"] + p["c128_kv"]
    usable = max(available_bytes, 0)
    concurrency = usable / per_request if per_request else None
    return KvCapacity(
        num_blocks=int(usable // (tuple_page * tuples)) if tuples else 0, block_size=block_size,
        page_bytes=tuple_page, group_size=tuples, num_groups=3,
        tokens=int((concurrency or 0) * max_model_len), max_concurrency=concurrency, bytes_per_token=per_token,
        request_bytes=per_request,
    )


# -- weights -------------------------------------------------------------------------------------------------------


def _inventory(arch: ModelArch, layers: range, *, first: bool, last: bool, sh: Sharding,
               vocab_rows: int) -> tuple[Inventory, Inventory]:
    """Parameters one rank holds, by kind: (stored in the weight dtype or quantized, stored fp32).

    Sharding (vLLM ``deepseek_v4_attention.py``, ``deepseek_compressor.py``): wq_b, wo_a (o_groups / TP groups), wo_b
    and the shared expert are split by TP; fused_wqa_wkv, the compressors and the indexer are replicated; experts are
    split over TP or the expert-parallel group. Compressor position embeddings (ape), attention sinks, router biases
    and hyper-connection mixers are fp32.
    """
    spec = _spec(arch)
    moe = arch.moe
    assert moe is not None
    h, tp, heads = arch.hidden_size, sh.tp, arch.num_attention_heads
    params = Inventory()
    fp32 = Inventory()
    for i in layers:
        ratio = spec.compress_ratios[i]
        params["attention"] += h * (spec.q_lora_rank + spec.head_dim)  # fused_wqa_wkv (replicated)
        params["attention"] += spec.q_lora_rank * heads * spec.head_dim / tp  # wq_b
        params["attention"] += heads * spec.head_dim * spec.o_lora_rank / tp  # wo_a (grouped)
        params["attention"] += spec.o_groups * spec.o_lora_rank * h / tp  # wo_b
        params["norm"] += spec.q_lora_rank + spec.head_dim + 2 * h
        fp32["attention_sink"] += heads / tp
        if ratio:
            coff = _coff(ratio)
            params["compressor"] += h * 2 * coff * spec.head_dim  # fused wkv + wgate (replicated)
            params["norm"] += spec.head_dim
            fp32["compressor_ape"] += ratio * coff * spec.head_dim
        if ratio == 4:
            params["indexer"] += spec.q_lora_rank * spec.index_n_heads * spec.index_head_dim  # wq_b
            params["indexer"] += h * spec.index_n_heads  # weights_proj
            params["indexer"] += h * 2 * 2 * spec.index_head_dim  # the indexer's compressor
            params["norm"] += 2 * spec.index_head_dim
            fp32["compressor_ape"] += 4 * 2 * spec.index_head_dim
        ep_ranks = tp * sh.dp if sh.expert_parallel else tp
        params["experts"] += moe.num_experts * 3 * h * moe.expert_intermediate_size / ep_ranks
        params["shared_expert"] += 3 * h * moe.shared_intermediate_size / tp
        params["router"] += h * moe.num_experts
        fp32["router_bias"] += moe.num_experts
        mix = (2 + spec.hc_mult) * spec.hc_mult
        fp32["hyper_connections"] += 2 * (mix * spec.hc_mult * h + mix + 3)  # hc_attn and hc_ffn fn, base, scale
    if first:
        params["embedding"] += vocab_rows * h
    if last:
        params["norm"] += h
        params["lm_head"] += vocab_rows * h
        fp32["hyper_connections"] += spec.hc_mult * h * spec.hc_mult + spec.hc_mult + 1  # hc_head
    return params, fp32


def stage_weight_bytes(arch: ModelArch, layers: range, *, first: bool, last: bool, sh: Sharding,
                       dtype_bytes: float) -> dict[str, float]:
    """Weight bytes one rank of a pipeline stage holds, by kind (``_inventory`` priced).

    Linear layers outside the experts are FP8 with 128 x 128 block scales (the checkpoint's quantization_config,
    priced by ``weights.quantized_bytes_per_param``); routed experts are MXFP4 when ``expert_dtype`` is fp4;
    embeddings, lm_head, norms and the router stay 16-bit. (``expert_format`` nvfp4: NVIDIA's re-quantization stores
    the experts NVFP4 and keeps the rest as released.)
    """
    spec = _spec(arch)
    q = arch.quantization
    fp8 = quantized_bytes_per_param(q, arch.hidden_size) if q is not None and q.method == "fp8" else dtype_bytes
    expert_b = {"mxfp4": k.MXFP4_BYTES_PER_PARAM, "nvfp4": k.NVFP4_BYTES_PER_PARAM}.get(spec.expert_format or "", fp8)
    params, fp32 = _inventory(arch, layers, first=first, last=last, sh=sh,
                              vocab_rows=padded_vocab_per_rank(arch.vocab_size, sh.tp))
    price = {"attention": fp8, "compressor": fp8, "indexer": fp8, "shared_expert": fp8, "experts": expert_b}
    out = {kind: n * price.get(kind, dtype_bytes) for kind, n in params.items()}
    out["fp32_tensors"] = sum(fp32.values()) * FP32
    return out


def total_parameters(arch: ModelArch) -> int:
    """Logical parameter count of the decoder (no MTP layer, no vocabulary padding): the one-rank inventory."""
    params, fp32 = _inventory(arch, range(arch.num_layers), first=True, last=True, sh=Sharding(),
                              vocab_rows=arch.vocab_size)
    return int(sum(params.values()) + sum(fp32.values()))
