"""Parameter inventory per GPU: how many parameters of each kind one rank holds.

The inventory is kept by *kind* because kinds differ in two ways that decide memory: whether a quantization format
applies to them (linear layers yes; embeddings, lm_head, norms, routers, convolutions no) and how vLLM shards them
(column/row-parallel linears split by TP; norms, routers, MLA down-projections and vision towers replicated;
K/V projections replicated when there are fewer KV heads than ranks; experts split over TP or the EP group).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

from pytest_llmsizer.calculator.coefficients import VOCAB_PADDING
from pytest_llmsizer.catalog.arch import ModelArch

# Kinds of parameters. "Linear" kinds can be quantized; the others stay in the activation dtype (16 bit).
LINEAR_KINDS = ("attention", "linear_attention", "mamba", "dense_mlp", "experts", "shared_expert", "moe_latent")
PLAIN_KINDS = ("embedding", "lm_head", "norm", "router", "conv", "bias", "indexer", "vision")


class Inventory(dict[str, float]):
    """Parameters per kind on one rank. Counts are fractional (a column-parallel linear holds heads / TP of its rows,
    a vision tower 1 / TP when split), which ``collections.Counter`` (typed as int counts) cannot hold, so this keeps
    the two Counter behaviours the inventory relies on: a missing kind reads as 0 without being inserted, and
    ``+=`` adds kind by kind and then drops kinds that are not positive."""

    def __missing__(self, key: str) -> float:
        return 0

    def __iadd__(self, other: Mapping[str, float]) -> Inventory:
        for kind, count in other.items():
            self[kind] += count
        for kind in [kind for kind, count in self.items() if not count > 0]:
            del self[kind]
        return self


@dataclass(frozen=True)
class Sharding:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    expert_parallel: bool = False
    replicate_vision: bool = True
    language_model_only: bool = False


def kv_heads_per_rank(num_kv_heads: int, tp: int) -> int:
    """vLLM ``ModelConfig.get_num_kv_heads``: max(1, n_kv // tp); heads are replicated when n_kv < tp."""
    return max(1, num_kv_heads // tp)


def padded_vocab_per_rank(vocab: int, tp: int) -> int:
    """Rows of the vocab-parallel embedding / lm_head on one rank (padded to a multiple of 64 x TP)."""
    step = VOCAB_PADDING * tp
    return math.ceil(vocab / step) * step // tp


def pipeline_stages(num_layers: int, pp: int) -> list[range]:
    """Layer ranges per pipeline stage, as vLLM ``get_pp_indices`` splits them (extra layers go to the stages
    just before the last one)."""
    base = num_layers // pp
    sizes = [base] * pp
    for i in range(2, num_layers % pp + 2):
        sizes[-i] += 1
    out, start = [], 0
    for size in sizes:
        out.append(range(start, start + size))
        start += size
    return out


def _attention_layer(arch: ModelArch, tp: int, *, full: bool = False) -> Inventory:
    h, d, dv = arch.hidden_size, arch.head_dim, arch.value_head_dim
    c: Inventory = Inventory()
    if full and arch.global_head_dim:
        # Gemma-4 global layers: their own head size and KV heads; with k_eq_v there is no v_proj at all
        dg = arch.global_head_dim
        q_heads = arch.num_attention_heads / tp
        kv = kv_heads_per_rank(arch.global_kv_heads or arch.num_kv_heads, tp)
        c["attention"] += h * q_heads * dg + h * kv * dg * (1 if arch.global_k_eq_v else 2) + q_heads * dg * h
        if arch.qk_norm:
            c["norm"] += 2 * dg
        return c
    if arch.mla is not None:
        m = arch.mla
        heads = arch.num_attention_heads / tp
        q_head = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            c["attention"] += h * m.q_lora_rank  # q_a_proj (replicated; quantized in fp8 checkpoints)
            c["norm"] += m.q_lora_rank
            c["attention"] += m.q_lora_rank * heads * q_head  # q_b_proj (column parallel)
        else:
            c["attention"] += h * heads * q_head
        c["attention"] += h * (m.kv_lora_rank + m.qk_rope_head_dim)  # kv_a_proj_with_mqa (replicated)
        c["norm"] += m.kv_lora_rank
        c["attention"] += m.kv_lora_rank * heads * (m.qk_nope_head_dim + m.v_head_dim)  # kv_b_proj
        c["attention"] += heads * m.v_head_dim * h  # o_proj (row parallel)
        if arch.indexer is not None:
            ix = arch.indexer
            q_in = m.q_lora_rank or h
            c["indexer"] += q_in * ix.index_n_heads * ix.index_head_dim + h * ix.index_head_dim
            c["indexer"] += h * ix.index_n_heads + 2 * ix.index_head_dim
    else:
        q_heads = arch.num_attention_heads / tp
        kv = kv_heads_per_rank(arch.num_kv_heads, tp)
        q_width = q_heads * d * (2 if arch.attention_out_gate else 1)
        c["attention"] += h * q_width + h * kv * (d + dv) + q_heads * dv * h
        if arch.attention_bias:
            c["bias"] += q_heads * d + kv * (d + dv)
        if arch.qk_norm:
            c["norm"] += 2 * d
    return c


def _linear_attention_layer(arch: ModelArch, tp: int) -> Inventory:
    la = arch.linear_attention
    assert la is not None
    h = arch.hidden_size
    key_dim = la.num_key_heads * la.key_head_dim
    value_dim = la.num_value_heads * la.value_head_dim
    c: Inventory = Inventory()
    c["linear_attention"] += h * (2 * key_dim + 2 * value_dim) / tp  # in_proj_qkvz
    c["linear_attention"] += h * 2 * la.num_value_heads / tp  # in_proj_ba
    c["linear_attention"] += value_dim * h / tp  # out_proj
    c["conv"] += (2 * key_dim + value_dim) * la.conv_kernel / tp
    c["norm"] += 2 * la.num_value_heads / tp + la.value_head_dim  # A_log, dt_bias, gated RMS norm
    return c


def _mamba_layer(arch: ModelArch, tp: int) -> Inventory:
    mb = arch.mamba
    assert mb is not None
    h = arch.hidden_size
    d_inner = mb.num_heads * mb.head_dim
    conv_dim = d_inner + 2 * mb.n_groups * mb.state_size
    c: Inventory = Inventory()
    c["mamba"] += h * (2 * d_inner + 2 * mb.n_groups * mb.state_size + mb.num_heads) / tp  # in_proj
    c["mamba"] += d_inner * h / tp  # out_proj
    c["conv"] += conv_dim * (mb.conv_kernel + (1 if mb.conv_bias else 0)) / tp  # conv1d weight (+ bias)
    c["norm"] += (3 * mb.num_heads + d_inner) / tp  # A, D, dt_bias, gated norm
    if mb.proj_bias:
        c["bias"] += (2 * d_inner + 2 * mb.n_groups * mb.state_size + mb.num_heads) / tp + h
    return c


def _mlp_layer(arch: ModelArch, kind: str, sh: Sharding) -> Inventory:
    h, tp = arch.hidden_size, sh.tp
    c: Inventory = Inventory()
    if kind == "dense":
        mats = 3 if arch.mlp_gated else 2
        c["dense_mlp"] += mats * h * arch.intermediate_size / tp
        if arch.mlp_bias:
            c["bias"] += (mats - 1) * arch.intermediate_size / tp + h
    elif kind == "moe":
        moe = arch.moe
        assert moe is not None
        mats = 3 if moe.gated else 2
        width = moe.latent_size or h  # LatentMoE: routed experts work in the latent width
        per_expert = mats * width * moe.expert_intermediate_size
        ep_ranks = tp * sh.dp if sh.expert_parallel else tp
        c["experts"] += moe.num_experts * per_expert / ep_ranks
        if moe.expert_bias:
            c["bias"] += moe.num_experts * ((mats - 1) * moe.expert_intermediate_size + width) / ep_ranks
        if moe.latent_size:
            # fc1_latent_proj (h -> latent) and fc2_latent_proj (latent -> h): ReplicatedLinear, on every rank
            c["moe_latent"] += 2 * h * moe.latent_size
        c["router"] += h * moe.num_experts
        if moe.router_bias:
            c["router"] += moe.num_experts  # e_score_correction_bias (fp32 in the checkpoint)
        if arch.dense_mlp_with_moe:
            c += _mlp_layer(arch, "dense", sh)
        if moe.shared_intermediate_size:
            c["shared_expert"] += (3 if moe.gated else 2) * h * moe.shared_intermediate_size / tp
            if moe.shared_expert_gate:
                c["router"] += h
    return c


def cross_attention_extra_parameters(arch: ModelArch) -> int:
    """What a Mllama cross-attention layer holds beyond a self-attention layer of the same shape: q_norm and k_norm
    (head_dim each, replicated) and the tanh gates cross_attn_attn_gate and cross_attn_mlp_gate (one each)."""
    return 2 * arch.head_dim + 2


def layer_inventory(arch: ModelArch, index: int, sh: Sharding) -> Inventory:
    """Parameters of one decoder layer on one rank, by kind."""
    kind = arch.layer_attention[index]
    c: Inventory = Inventory()
    if kind in ("full", "sliding", "chunked"):
        c += _attention_layer(arch, sh.tp, full=kind == "full")
    elif kind == "linear":
        c += _linear_attention_layer(arch, sh.tp)
    elif kind == "mamba":
        c += _mamba_layer(arch, sh.tp)
    c += _mlp_layer(arch, arch.layer_mlp[index], sh)
    if arch.cross_attention is not None and index in arch.cross_attention.layers:
        c["norm"] += cross_attention_extra_parameters(arch)
    # a block with one mixer (Nemotron-H patterns: Mamba, attention or MLP alone) has one norm, else two; Gemma-2/3
    # also normalise both mixers' outputs (two more)
    one_mixer = kind == "none" or arch.layer_mlp[index] == "none"
    c["norm"] += (1 if one_mixer else 4 if arch.sandwich_norms else 2) * arch.hidden_size
    return c


def _vision_per_rank(arch: ModelArch, sh: Sharding) -> float:
    """The vision tower on one rank: split over TP where its model code always splits it (Mllama), else whole or
    split as ``mm_encoder_tp_mode`` says."""
    vision = arch.vision
    assert vision is not None
    if vision.tp_split_parameters:
        return vision.num_parameters - vision.tp_split_parameters + vision.tp_split_parameters / sh.tp
    return vision.num_parameters / (1 if sh.replicate_vision else sh.tp)


def stage_inventory(arch: ModelArch, layers: range, *, first: bool, last: bool, sh: Sharding) -> Inventory:
    """Parameters one rank of a pipeline stage holds, by kind."""
    c: Inventory = Inventory()
    rows = padded_vocab_per_rank(arch.vocab_size, sh.tp)
    if first:
        c["embedding"] += padded_vocab_per_rank(arch.vocab_size + arch.extra_embedding_rows, sh.tp) * arch.hidden_size
        if arch.vision is not None and not sh.language_model_only:
            c["vision"] += _vision_per_rank(arch, sh)
    if last:
        c["norm"] += arch.hidden_size
        if not arch.tie_word_embeddings or not first:
            c["lm_head"] += rows * arch.hidden_size
    # layers of the same (attention, MLP, cross-attention or not) kind hold the same parameters: price each once
    cross = set(arch.cross_attention.layers) if arch.cross_attention is not None else set()
    kinds: dict[tuple[str, str, bool], list[int]] = {}
    for i in layers:
        kinds.setdefault((arch.layer_attention[i], arch.layer_mlp[i], i in cross), []).append(i)
    for indices in kinds.values():
        one = layer_inventory(arch, indices[0], sh)
        for kind, params in one.items():
            c[kind] += params * len(indices)
    return c


@functools.lru_cache(maxsize=1024)
def total_parameters(arch: ModelArch) -> int:
    """Logical parameter count of the whole model (no sharding, no padding, no MTP layers). Cached: an architecture
    is immutable, and the plugin asks once per profile."""
    if arch.compressed_attention is not None:
        from pytest_llmsizer.calculator.deepseek_v4 import total_parameters as v4_total  # DeepSeek-V4's own layout

        return v4_total(arch)
    sh = Sharding()
    c = stage_inventory(arch, range(arch.num_layers), first=True, last=True, sh=sh)
    embedding_rows = arch.vocab_size + arch.extra_embedding_rows
    c["embedding"] -= (padded_vocab_per_rank(embedding_rows, 1) - embedding_rows) * arch.hidden_size
    if c.get("lm_head"):
        c["lm_head"] -= (padded_vocab_per_rank(arch.vocab_size, 1) - arch.vocab_size) * arch.hidden_size
    return int(sum(c.values()))


def mtp_parameters(arch: ModelArch) -> int:
    """Parameters of the multi-token-prediction layers a checkpoint stores (not loaded without speculative
    decoding): per step, its decoder layer(s) (the spelled-out MTP pattern, else one layer like the last one:
    full attention and the last layer's MLP), eh_proj (2h -> h) and three norms (enorm, hnorm, final norm)
    (DeepSeek-V3 ``model.layers.61``; Nemotron-H ``nemotron_h_mtp.py``; architectures.md section 1)."""
    if not arch.num_mtp_layers:
        return 0
    sh = Sharding()
    if arch.mtp_layer_attention:
        layers = list(zip(arch.mtp_layer_attention, arch.mtp_layer_mlp, strict=True))
    else:
        layers = [("full", arch.layer_mlp[-1])]
    step: Inventory = Inventory()
    for attention, mlp in layers:
        probe = arch.model_copy(update={"layer_attention": (attention,), "layer_mlp": (mlp,)})
        step += layer_inventory(probe, 0, sh)
    h = arch.hidden_size
    per_step = sum(step.values()) + 2 * h * h + 3 * h
    return int(per_step * arch.num_mtp_layers)


REPORTED_COUNT_TERMS = {
    "mtp": ("multi-token-prediction layers stored in the checkpoint", mtp_parameters),
    "mtp_embeddings": ("the MTP module stores its own embed_tokens and shared_head.head (DeepSeek-V3 / GLM-4.5 "
                       "layout)", lambda a: 2 * a.vocab_size * a.hidden_size * a.num_mtp_layers),
    "embeddings_counted_twice": ("the source counts the tied embedding twice (as embed_tokens and lm_head)",
                                 lambda a: a.vocab_size * a.hidden_size),
    "mxfp4_scales": ("the source counts MXFP4 block scales (one E8M0 per 32 expert weights) as parameters",
                     lambda a: _expert_parameters(a) // 32),
}
"""Named physical reasons a published parameter total differs from the served inventory (``total_parameters``),
each with the parameters it adds. A catalog entry lists the ones that apply (``reported_count_includes``);
never a fudge factor."""


def _expert_parameters(arch: ModelArch) -> int:
    c = stage_inventory(arch, range(arch.num_layers), first=False, last=False, sh=Sharding())
    return int(c.get("experts", 0))


def reported_comparable_total(arch: ModelArch) -> int:
    """``total_parameters`` plus the named terms the published total of this entry includes."""
    return total_parameters(arch) + sum(REPORTED_COUNT_TERMS[name][1](arch) for name in arch.reported_count_includes)
