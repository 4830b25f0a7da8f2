"""DeepSeek-V4 compressed attention and Kimi-Linear, against the figures of ../shared/notes/architectures.md.

The page sizes and per-request states below are the note's Python-checked numbers (sections 2 and 4); the V4-Pro
weights are the ones vLLM logged (vme-dev records 3a25a248 / f645b14b, committed as profiles/vme-dev/).
"""

from __future__ import annotations

import pytest

from pytest_llmsizer.calculator import deepseek_v4, estimate
from pytest_llmsizer.calculator.kv_cache import attention_bytes_per_token, state_bytes_per_request
from pytest_llmsizer.calculator.resolve import request_from_options
from pytest_llmsizer.catalog.models import resolve_model
from pytest_llmsizer.errors import EstimateError
from pytest_llmsizer.units import GiB


@pytest.fixture(scope="module")
def pro():
    return resolve_model("deepseek-ai/DeepSeek-V4-Pro").arch


@pytest.fixture(scope="module")
def flash():
    return resolve_model("deepseek-ai/DeepSeek-V4-Flash").arch


def test_v4_layer_layout(pro, flash) -> None:
    assert pro.compressed_attention.compress_ratios.count(4) == 30
    assert pro.compressed_attention.compress_ratios.count(128) == 31
    assert flash.compressed_attention.compress_ratios.count(4) == 21
    assert flash.compressed_attention.compress_ratios.count(128) == 20
    assert flash.compressed_attention.compress_ratios[:2] == (0, 0)
    assert pro.compressed_attention.expert_format == "mxfp4"
    assert resolve_model("nvidia/DeepSeek-V4-Flash-NVFP4").arch.compressed_attention.expert_format == "nvfp4"


def test_v4_pages_at_block_256(pro) -> None:
    # architectures.md section 2, "Pages at block_size 256 (Python-checked)"
    assert deepseek_v4.pages(pro, 256) == {
        "swa": 37_440, "c4_kv": 37_440, "c128_kv": 1_728, "indexer_k": 8_640,
        "c4_state": 32_832, "c128_state": 32_832, "indexer_state": 8_640,
    }


def test_v4_growing_bytes_per_token_per_layer(pro) -> None:
    p = deepseek_v4.pages(pro, 256)
    assert (p["c4_kv"] + p["indexer_k"]) / 256 == 180  # 146.25 KV + 33.75 indexer
    assert p["c128_kv"] / 256 == 6.75


def test_v4_block_size_must_hold_a_ratio_128_entry(pro) -> None:
    with pytest.raises(EstimateError, match="multiple of 128"):
        deepseek_v4.pages(pro, 64)


def test_v4_tokens_are_concurrency_times_max_model_len(pro) -> None:
    layers = range(pro.num_layers)
    cap = deepseek_v4.kv_capacity(pro, layers, 20 * GiB, block_size=256, max_model_len=800_000,
                                  max_num_batched_tokens=512)
    per_request, _, _ = deepseek_v4.request_bytes(pro, layers, block_size=256, max_model_len=800_000,
                                                  max_num_batched_tokens=512)
    assert cap.max_concurrency == pytest.approx(20 * GiB / per_request)
    assert cap.tokens == int(cap.max_concurrency * 800_000)


def test_v4_fixed_part_grows_with_batched_tokens(pro) -> None:
    layers = range(pro.num_layers)
    small = deepseek_v4.request_bytes(pro, layers, block_size=256, max_model_len=8192, max_num_batched_tokens=512)
    large = deepseek_v4.request_bytes(pro, layers, block_size=256, max_model_len=8192, max_num_batched_tokens=8192)
    assert large[0] > 5 * small[0]  # window and compressor states are sized for admission: min(w - 1 + T, L)


def test_v4_refuses_when_one_max_length_request_does_not_fit() -> None:
    """vLLM's check_enough_kv_cache_memory applies to V4 too: a pool smaller than one max_model_len request's
    pages (concurrency below 1) is a refusal, with the longest length that fits."""
    req = request_from_options("deepseek-ai/DeepSeek-V4-Pro", gpu="H200", tensor_parallel_size=8,
                               max_model_len=1_048_576, gpu_memory_utilization=0.77, engine_version="0.20")
    result = estimate(req)
    assert 0 < result.max_concurrency < 1
    assert result.details["kv_capacity"]["request_bytes"] > result.details["kv_cache_available_bytes"] > 0
    assert not result.fits
    assert any("To serve at least one request" in p for p in result.problems)
    assert 0 < result.details["longest_fitting_max_model_len"] < 1_048_576
    roomy = estimate(request_from_options("deepseek-ai/DeepSeek-V4-Pro", gpu="H200", tensor_parallel_size=8,
                                          max_model_len=1_048_576, engine_version="0.20"))
    assert roomy.max_concurrency > 1 and roomy.fits


@pytest.mark.parametrize("ep", [True, False])
def test_v4_pro_weights_on_h200_tp8_match_the_logs(ep: bool) -> None:
    logged = 102.34 if ep else 102.77  # GiB, vLLM 0.20.2 "Model loading took", vme-dev 3a25a248 / f645b14b
    req = request_from_options("deepseek-ai/DeepSeek-V4-Pro", gpu="H200", tensor_parallel_size=8,
                               enable_expert_parallel=ep, max_model_len=8192, engine_version="0.20.2")
    weights = estimate(req).per_gpu_bytes["weights"] / GiB
    assert weights == pytest.approx(logged, rel=0.03)


def test_kimi_linear_layout_and_state() -> None:
    a = resolve_model("moonshotai/Kimi-Linear-48B-A3B-Instruct").arch
    assert a.layer_attention.count("linear") == 20 and a.layer_attention.count("full") == 7
    assert [i + 1 for i, kind in enumerate(a.layer_attention) if kind == "full"] == [4, 8, 12, 16, 20, 24, 27]
    assert a.layer_mlp[0] == "dense" and set(a.layer_mlp[1:]) == {"moe"}
    # architectures.md section 4: KDA state 2,170,880 B per layer per request (TP 1, bf16 conv, fp32 recurrent)
    assert state_bytes_per_request(a, "linear", 1, "bfloat16") == 2_170_880
    # MLA: 576 x 2 B = 1,152 B per token per layer, not divided by TP
    assert attention_bytes_per_token(a, 4, None, "bfloat16") == 1_152
