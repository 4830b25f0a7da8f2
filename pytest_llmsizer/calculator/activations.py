"""Activation peak of vLLM's profile run (``torch peak memory increase``), per GPU, and the forward-pass terms of
a plain transformers run.

vLLM sizes its KV pool after a dummy forward pass at max_num_batched_tokens tokens spread over
min(max_num_seqs, T) requests, followed by a sampler warm-up over those requests with top-k/top-p. The peak is the
larger of the forward pass and the sampler (which sorts fp32 [N, vocab] logits with int64 indices and holds the
[T, h] hidden states meanwhile). It does not depend on batch x sequence of a workload (memory-physics.md 2.2, 3.3).
"""

from __future__ import annotations

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator.moe_kernels import MoeKernel, moe_layers
from pytest_llmsizer.calculator.versions import version_bucket
from pytest_llmsizer.catalog.arch import ModelArch


def sampler_coefficient(version: tuple[int, int], table: dict[str, float] | None = None) -> tuple[float, str]:
    """c_v for a vLLM version (from ``table``, default the built-in set), and the source of that value."""
    bucket = version_bucket(version)
    if table is not None and bucket in table:
        return table[bucket], "calibration"
    return k.SAMPLER_BYTES_PER_SEQ_VOCAB[bucket], k.SAMPLER_COEFFICIENT_SOURCE


def _layer_bytes(arch: ModelArch, tokens: int, tp: int, act_bytes: float) -> float:
    """The hidden states, attention projections and dense MLP of one decoder layer over ``tokens`` tokens."""
    h, d = arch.hidden_size, arch.head_dim
    qkv = (arch.num_attention_heads + 2 * arch.num_kv_heads) * d / tp
    dense = 3 * arch.intermediate_size / tp if "dense" in arch.layer_mlp else 0
    return act_bytes * tokens * (2 * h + qkv + dense)


def dense_forward_bytes(arch: ModelArch, tokens: int, tp: int, act_bytes: float) -> float:
    """One decoder layer's forward pass over ``tokens`` tokens on one rank without the fused-MoE kernel's buffers:
    the hidden states, attention projections and dense MLP, and the router logits (fp32) of an MoE layer."""
    total = _layer_bytes(arch, tokens, tp, act_bytes)
    if (moe := moe_layers(arch)) is not None:
        total += 4 * tokens * moe.num_experts
    return total


def forward_bytes(arch: ModelArch, tokens: int, tp: int, act_bytes: float, moe: MoeKernel | None) -> float:
    """Live tensors of one decoder layer's forward pass over ``tokens`` tokens on one rank: the dense part and the
    buffers of the fused-MoE kernel vLLM runs (``moe_kernels.moe_kernel``, the one home of those sizes)."""
    return dense_forward_bytes(arch, tokens, tp, act_bytes) + (moe.total_bytes if moe else 0.0)


def transformers_forward_bytes(arch: ModelArch, tokens: int, tp: int, act_bytes: float) -> float:
    """Live tensors of one decoder layer's forward pass in Hugging Face transformers (5.x) over ``tokens`` tokens.

    The MoE term is not vLLM's. transformers' default experts implementation is ``grouped_mm`` (5.17:
    ``integrations/moe.py``, ``grouped_mm_experts_forward``; where torch has no grouped-GEMM kernel for the GPU it
    loops over the experts into the same outputs): it gathers a copy of every token for each of its top-k experts,
    S = tokens x top_k rows of the hidden size, and runs every expert at once, with no chunking. Its last step
    holds four [S, hidden] tensors at once: the sorted inputs, the masked down-projection output, the output weighted
    by the router and that output put back in token order. The expert intermediates ([S, 2 x I_e], [S, I_e]) are
    freed before that. For Qwen3-30B-A3B at 2 x 512 tokens that is
    4 x 8192 x 2048 x 2 B = 0.125 GiB, where vLLM's Triton kernel before 0.14 holds 0.043 GiB (moe_kernels)."""
    total = _layer_bytes(arch, tokens, tp, act_bytes)
    if (moe := moe_layers(arch)) is not None:
        total += act_bytes * 4 * tokens * moe.experts_per_token * arch.hidden_size
        total += 4 * tokens * moe.num_experts  # router probabilities in fp32
    return total


def vllm_activation_peak(arch: ModelArch, *, max_num_batched_tokens: int, max_num_seqs: int, tp: int,
                         act_bytes: float, version: tuple[int, int], moe: MoeKernel | None = None,
                         sampler_table: dict[str, float] | None = None) -> tuple[int, dict[str, float | str]]:
    """Peak torch memory increase of the profile run, and the terms it was built from. ``moe`` is the fused-MoE
    kernel at max_num_batched_tokens (``moe_kernels.moe_kernel``; None for a dense model)."""
    tokens = max_num_batched_tokens
    seqs = min(max_num_seqs, tokens)
    c_v, _ = sampler_coefficient(version, sampler_table)
    dense = dense_forward_bytes(arch, tokens, tp, act_bytes)
    forward = forward_bytes(arch, tokens, tp, act_bytes, moe)
    sampler = 2 * tokens * arch.hidden_size + c_v * seqs * arch.vocab_size
    peak = max(forward, sampler)
    terms: dict[str, float | str] = {
        "forward_bytes": forward, "forward_dense_bytes": dense, "sampler_bytes": sampler,
        "sampler_coefficient": c_v, "profile_tokens": tokens, "profile_seqs": seqs}
    if moe is not None:
        terms |= {"moe_kernel": moe.name, "moe_transient_bytes": moe.transient_bytes,
                  "moe_persistent_bytes": moe.persistent_bytes}
    return int(peak), terms
