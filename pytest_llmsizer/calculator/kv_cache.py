"""KV cache: bytes per token per layer, vLLM's page and block bookkeeping, capacity in tokens and concurrency.

Follows vLLM V1 (``kv_cache_interface.py``, ``kv_cache_utils.py``; memory-physics.md 2.4 and 3.2):

* a layer's page holds ``block_size`` tokens: full/sliding/chunked attention B x kv_heads_per_rank x (d_k + d_v) x
  b_kv; MLA B x (kv_lora_rank + qk_rope_head_dim) x b_kv on every rank (the latent is not split by TP), plus the
  DeepSeek-V3.2 indexer keys; Mamba/GDN layers hold a fixed state per request, one "page" each;
* a uniform model gets num_blocks = floor(available / (page x layers));
* a hybrid model groups layers by kind into groups of G layers; one pool tensor is shared by one layer of every
  group, so num_blocks = floor(available / (page x G)), and for Mamba the attention block size is raised until one
  attention page holds a Mamba state;
* a request of max_model_len needs ceil(tokens / B) pages of full attention, a window's worth for sliding and
  chunked layers, one page per Mamba layer; concurrency = num_blocks / pages per request.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator.params import kv_heads_per_rank
from pytest_llmsizer.catalog.arch import ModelArch
from pytest_llmsizer.errors import EstimateError

KV_DTYPE_ALIASES = {
    "auto": None, "fp8": "fp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "fp8_inc": "fp8", "fp8_ds_mla": "fp8_ds_mla",
    "bfloat16": "bfloat16", "float16": "float16", "half": "float16", "bf16": "bfloat16", "fp16": "float16",
    "float32": "float32", "nvfp4": "nvfp4", "int8": "int8",
}


def kv_element_bytes(kv_cache_dtype: str | None, model_dtype: str) -> float:
    """Bytes per cached element: ``auto`` keeps the model dtype; fp8 variants 1 byte; nvfp4 4.5 bits."""
    name = (kv_cache_dtype or "auto").lower()
    if name not in KV_DTYPE_ALIASES:
        raise EstimateError(f"unknown --kv-cache-dtype {kv_cache_dtype!r}; expected one of "
                            f"{', '.join(sorted(KV_DTYPE_ALIASES))}")
    resolved = KV_DTYPE_ALIASES[name] or model_dtype
    if resolved == "fp8_ds_mla":
        return 1.0
    return k.DTYPE_BYTES[resolved]


@dataclass(frozen=True)
class LayerKv:
    """One layer's KV spec on one rank."""

    kind: str  # full | sliding | chunked | mla | state
    bytes_per_token: float  # 0 for state layers
    state_bytes: int = 0  # per request, for Mamba / linear-attention layers
    window: int | None = None


def attention_bytes_per_token(arch: ModelArch, tp: int, kv_dtype: str | None, model_dtype: str, *,
                              full: bool = False) -> float:
    """KV bytes per token for one attention layer on one rank (``full``: a full-attention layer, which in Gemma-4
    has its own head size and KV-head count; K and V are both cached even where values equal keys)."""
    b = kv_element_bytes(kv_dtype, model_dtype)
    if full and arch.global_head_dim:
        heads = kv_heads_per_rank(arch.global_kv_heads or arch.num_kv_heads, tp)
        return heads * 2 * arch.global_head_dim * b
    if arch.mla is not None:
        if (kv_dtype or "").lower() in ("fp8_ds_mla",) or (arch.indexer is not None and b == 1):
            per = float(k.FP8_DS_MLA_BYTES_PER_TOKEN)
        else:
            per = (arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim) * b
        if arch.indexer is not None:
            per += arch.indexer.index_head_dim * (1 + 4 / k.INDEXER_SCALE_BLOCK)
        return per
    heads = kv_heads_per_rank(arch.num_kv_heads, tp)
    return heads * (arch.head_dim + arch.value_head_dim) * b


def state_bytes_per_request(arch: ModelArch, kind: str, tp: int, model_dtype: str) -> int:
    """Fixed per-request state of one Mamba2 or Gated-DeltaNet layer on one rank (conv state + SSM state)."""
    b = k.DTYPE_BYTES.get(model_dtype, 2)
    if kind == "mamba" and arch.mamba is not None:
        mb = arch.mamba
        ssm_b = k.DTYPE_BYTES.get(mb.ssm_state_dtype or model_dtype, b)
        conv_dim = mb.num_heads * mb.head_dim + 2 * mb.n_groups * mb.state_size
        conv = (mb.conv_kernel - 1) * conv_dim / tp * b
        ssm = mb.num_heads / tp * mb.head_dim * mb.state_size * ssm_b
        return int(conv + ssm)
    if kind == "linear" and arch.linear_attention is not None:
        la = arch.linear_attention
        ssm_b = k.DTYPE_BYTES.get(la.state_dtype or model_dtype, b)
        conv_dim = 2 * la.num_key_heads * la.key_head_dim + la.num_value_heads * la.value_head_dim
        conv = (la.conv_kernel - 1) * conv_dim / tp * b
        recurrent = la.num_value_heads / tp * la.key_head_dim * la.value_head_dim * ssm_b
        return int(conv + recurrent)
    raise EstimateError(f"layer kind {kind!r} has no recurrent state")


def layer_specs(arch: ModelArch, layers: range, tp: int, kv_dtype: str | None, model_dtype: str) -> list[LayerKv]:
    if arch.compressed_attention is not None:
        raise EstimateError(f"{arch.id}: DeepSeek-V4 compressed attention is modelled for vLLM's paged pool only "
                            "(calculator/deepseek_v4.py), not per sequence")
    per_token = attention_bytes_per_token(arch, tp, kv_dtype, model_dtype)
    full_per_token = attention_bytes_per_token(arch, tp, kv_dtype, model_dtype, full=True)
    by_kind: dict[str, LayerKv | None] = {}  # one spec object per layer kind: layers of a kind are identical

    def spec(kind: str) -> LayerKv | None:
        if kind == "full":
            return LayerKv("mla" if arch.mla else "full", full_per_token)
        if kind == "sliding":
            return LayerKv("sliding", per_token, window=arch.sliding_window)
        if kind == "chunked":
            return LayerKv("chunked", per_token, window=arch.attention_chunk_size)
        if kind in ("mamba", "linear"):
            return LayerKv("state", 0.0, state_bytes=state_bytes_per_request(arch, kind, tp, model_dtype))
        return None

    specs = []
    for i in layers:
        kind = arch.layer_attention[i]
        if kind not in by_kind:
            by_kind[kind] = spec(kind)
        if (layer := by_kind[kind]) is not None:
            specs.append(layer)
    return specs


@dataclass(frozen=True)
class KvCapacity:
    num_blocks: int
    block_size: int
    page_bytes: int
    group_size: int
    num_groups: int
    tokens: int
    max_concurrency: float | None
    bytes_per_token: float
    """KV bytes per token per rank summed over all attention layers (the number vLLM users quote)."""
    request_bytes: int = 0
    """KV memory one request of max_model_len needs on this rank (its pages in every layer group): vLLM refuses to
    start when this exceeds the available KV memory (``check_enough_kv_cache_memory``)."""


def sliding_window_pages(window: int, block: int, max_model_len: int, batched_tokens: int) -> int:
    """vLLM's admission sizing of a sliding-window spec (``SlidingWindowSpec.max_memory_usage_bytes``): pages of
    ``block`` tokens for min(window - 1 + max_num_batched_tokens, max_model_len) tokens, plus one."""
    return math.ceil(min(window - 1 + batched_tokens, max_model_len) / block) + 1


def _request_pages(spec: LayerKv, max_model_len: int, block: int, batched_tokens: int) -> int:
    # ``block``: tokens in one page of this layer kind
    """Pages one request of max_model_len needs in one layer (``max_memory_usage_bytes`` / page)."""
    if spec.kind in ("full", "mla"):
        return math.ceil(max_model_len / block)
    if spec.kind == "sliding":
        assert spec.window
        return sliding_window_pages(spec.window, block, max_model_len, batched_tokens)
    if spec.kind == "chunked":
        assert spec.window
        return math.ceil(min(spec.window + batched_tokens, max_model_len) / block)
    return 1


@dataclass(frozen=True)
class KvLayout:
    """vLLM's page layout for one rank's layers: block size (raised for Mamba/GDN), page bytes, layers per pool
    tensor (group size) and, per group, its layer spec and tokens per page."""

    block: int
    page: int
    group_size: int
    groups: tuple[tuple[LayerKv, int], ...]
    bytes_per_token: float
    has_attention: bool

    def request_pages(self, max_model_len: int, max_num_batched_tokens: int) -> int:
        """Pages (blocks) one request of ``max_model_len`` needs, over all groups."""
        return sum(_request_pages(spec, max_model_len, tokens, max_num_batched_tokens) for spec, tokens in self.groups)

    def request_bytes(self, max_model_len: int, max_num_batched_tokens: int) -> int:
        """KV memory one request of ``max_model_len`` needs on this rank."""
        return int(self.request_pages(max_model_len, max_num_batched_tokens) * self.page * self.group_size)


def kv_layout(specs: list[LayerKv], block_size: int) -> KvLayout:
    """The page layout vLLM derives from the layer specs (``unify_kv_cache_spec_page_size``, hybrid grouping)."""
    if not specs:
        raise EstimateError("model has no layer that holds KV cache or state")
    attention = [s for s in specs if s.kind != "state"]
    states = [s for s in specs if s.kind == "state"]
    block = block_size
    attn_page_per_token = max((s.bytes_per_token for s in attention), default=0.0)
    state_page = max((s.state_bytes for s in states), default=0)
    if states and attention:
        # raise the attention block size until an attention page holds a state page
        needed = math.ceil(state_page / attn_page_per_token)
        block = max(block, math.ceil(needed / k.MAMBA_BLOCK_ALIGNMENT) * k.MAMBA_BLOCK_ALIGNMENT)
    page = int(max(attn_page_per_token * block, state_page)) if attention else state_page

    counts = Counter((s.kind, s.window) for s in specs)
    if len(counts) == 1:
        group_size, keys = len(specs), [next(iter(counts))]
    else:
        group_size = min(counts.values())
        keys = []
        for key, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
            keys += [key] * math.ceil(n / group_size)
    by_key = {(s.kind, s.window): s for s in specs}

    def tokens_per_page(spec: LayerKv) -> int:
        # vLLM keeps one page size for every group: a layer kind with fewer bytes per token gets a larger block
        # (unify_kv_cache_spec_page_size), e.g. Gemma-4's global layers hold twice the tokens per page
        if spec.kind == "state" or not spec.bytes_per_token:
            return block
        return max(block, int(page // spec.bytes_per_token))

    groups = tuple((by_key[key], tokens_per_page(by_key[key])) for key in keys)
    return KvLayout(block=block, page=page, group_size=group_size, groups=groups,
                    bytes_per_token=sum(s.bytes_per_token for s in attention), has_attention=bool(attention))


def kv_capacity(specs: list[LayerKv], available_bytes: int, *, block_size: int, max_model_len: int,
                max_num_batched_tokens: int) -> KvCapacity:
    """vLLM's num_blocks, token capacity and max concurrency for ``available_bytes`` of KV memory on one rank."""
    layout = kv_layout(specs, block_size)
    page, group_size = layout.page, layout.group_size
    num_blocks = 0 if available_bytes <= 0 or page <= 0 else int(available_bytes // (page * group_size))
    pages_per_request = layout.request_pages(max_model_len, max_num_batched_tokens)
    concurrency = num_blocks / pages_per_request if pages_per_request else None
    tokens = (num_blocks // len(layout.groups)) * layout.block if layout.has_attention else 0
    return KvCapacity(
        num_blocks=num_blocks, block_size=layout.block, page_bytes=page, group_size=group_size,
        num_groups=len(layout.groups), tokens=tokens, max_concurrency=concurrency,
        bytes_per_token=layout.bytes_per_token, request_bytes=int(pages_per_request * page * group_size),
    )


def request_kv_bytes(specs: list[LayerKv], tokens: int) -> int:
    """KV bytes one sequence of ``tokens`` cached tokens holds on one rank, without paging (plain engines).

    A sliding or chunked layer keeps the last window - 1 tokens, as transformers' DynamicSlidingWindowLayer does (the
    next query, counting itself, then sees a window's worth): gemma-3-1b-it's 22 local layers on the H200 held 511
    tokens each with window 512 (profiles/gpu-transformers)."""
    total = 0.0
    for s in specs:
        if s.kind == "state":
            total += s.state_bytes
        elif s.kind in ("sliding", "chunked") and s.window:
            total += min(tokens, max(s.window - 1, 1)) * s.bytes_per_token
        else:
            total += tokens * s.bytes_per_token
    return int(total)
