"""The transformers engine model against the first real-GPU profiles (profiles/gpu-transformers: NVIDIA H200,
torch 2.11, transformers 5.17, random weights with the checkpoints' tensor sizes).

Each test pins one piece of Hugging Face physics the calculator now prices, on the measured bytes, and each would
fail with the model it replaced (given in the comment): vLLM's rotary cache in the weights, input + output cached
tokens, a full window kept by sliding layers, vLLM's chunked fused-MoE term.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmsizer.calculator.activations import dense_forward_bytes, transformers_forward_bytes
from pytest_llmsizer.calculator.moe_kernels import moe_kernel
from pytest_llmsizer.calculator.resolve import request_from_profile
from pytest_llmsizer.pluggable.loader import builtin
from pytest_llmsizer.profile import Profile
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.units import GiB, MiB

GPU_PROFILES = sorted((Path(__file__).resolve().parents[1] / "profiles" / "gpu-transformers").glob("*.json"))


def _profile(stem_prefix: str) -> Profile:
    [path] = [p for p in GPU_PROFILES if p.name.startswith(stem_prefix)]
    return load_profile(path)


def test_the_h200_profiles_are_there() -> None:
    assert len(GPU_PROFILES) == 7


@pytest.mark.parametrize("path", GPU_PROFILES, ids=[p.stem.split("--transformers--")[0] for p in GPU_PROFILES])
def test_weights_are_the_parameters_without_a_rotary_cache(path: Path) -> None:
    """memory_allocated() after the build is the parameters, rounded up by the allocator: never less than the
    calculation, and at most 64 MiB more (gemma-3-1b-it: 50.5 MiB, its 78 MLP matrices of 15.19 MiB each take 16 MiB
    blocks; the others within 2 MiB). With vLLM's max_position x rotary_dim cache, Mistral-Nemo's calculation was
    0.244 GiB above the measurement."""
    profile = load_profile(path)
    measured = profile.measurements.components.weights.bytes
    calculated = builtin(profile).per_gpu_bytes["weights"]
    assert 0 <= measured - calculated < 64 * MiB


@pytest.mark.parametrize("path", GPU_PROFILES, ids=[p.stem.split("--transformers--")[0] for p in GPU_PROFILES])
def test_kv_cache_is_input_plus_output_minus_one_tokens(path: Path) -> None:
    """generate() never feeds back its last sampled token, and transformers' sliding-window layers keep window - 1
    tokens: the calculated KV bytes and tokens are the measured ones. The profiler's cache walk also counts each
    sliding layer's 8-byte window scalar (gemma-3-1b-it: 22 x 8 = 176 B)."""
    profile = load_profile(path)
    est = builtin(profile)
    assert est.kv_cache_tokens == profile.measurements.kv_cache_tokens
    measured = profile.measurements.components.kv_cache.bytes
    sliding = sum(1 for kind in request_from_profile(profile).arch.layer_attention if kind == "sliding")
    assert 0 <= measured - est.per_gpu_bytes["kv_cache"] <= 8 * sliding


def test_gemma_sliding_layers_hold_window_minus_one_tokens() -> None:
    # 4 global layers x 1087 tokens + 22 local layers x 511 tokens, x 4 sequences x 1 KV head x (256 + 256) x 2 B
    est = builtin(_profile("google--gemma-3-1b-it"))
    assert est.per_gpu_bytes["kv_cache"] == 4 * (4 * 1087 + 22 * 511) * 1024


def test_moe_experts_hold_every_token_top_k_times() -> None:
    """transformers' grouped_mm experts hold four [tokens x top_k, hidden] tensors at their peak, unchunked: for
    Qwen3-30B-A3B at 2 x 512 tokens 4 x 8192 x 2048 x 2 B = 128 MiB beside the dense part both engines share. (vLLM's
    Triton kernel of 0.13 holds 1024 x 8 x (max(1536, 2048) + 768) x 2 B = 44 MiB there; the measured activation
    remainder is 0.217 GiB, and a vLLM-style term gave 0.054 GiB, -75%.)"""
    profile = _profile("Qwen--Qwen3-30B-A3B")
    arch = request_from_profile(profile).arch
    hf = transformers_forward_bytes(arch, 1024, 1, 2)
    assert hf - dense_forward_bytes(arch, 1024, 1, 2) == 4 * 8192 * 2048 * 2
    vllm = moe_kernel(arch, 1024, 1, 2, version=(0, 13), platform="cuda", compute_capability="9.0")
    assert vllm is not None and vllm.transient_bytes == 1024 * 8 * (2048 + 768) * 2
    measured = profile.measurements.components.activations.bytes
    calculated = builtin(profile).per_gpu_bytes["activations"]
    assert 0.6 * measured < calculated < measured
    assert calculated / GiB == pytest.approx(0.144, abs=0.001)


def test_dense_models_keep_the_shared_forward_term() -> None:
    arch = request_from_profile(_profile("meta-llama--Llama-3.1-8B--transformers--tp1--bs8")).arch
    assert transformers_forward_bytes(arch, 4096, 1, 2) == dense_forward_bytes(arch, 4096, 1, 2)
