"""The built-in calculator against hand-worked cases and against numbers real vLLM logs printed.

Every expected number below is worked out by hand in its comment (or quoted from the named log), not read back
from the code.
"""

from __future__ import annotations

import pytest

from pytest_llmsizer.calculator import EstimateRequest, estimate
from pytest_llmsizer.calculator.kv_cache import attention_bytes_per_token, kv_capacity, layer_specs
from pytest_llmsizer.calculator.params import (
    Sharding,
    kv_heads_per_rank,
    padded_vocab_per_rank,
    pipeline_stages,
    stage_inventory,
    total_parameters,
)
from pytest_llmsizer.calculator.weights import quantized_bytes_per_param
from pytest_llmsizer.catalog.arch import QuantSpec
from pytest_llmsizer.catalog.models import resolve_model
from pytest_llmsizer.errors import EstimateError
from pytest_llmsizer.units import GiB


def arch(model_id: str):
    return resolve_model(model_id).arch


# --- KV bytes per token per layer (memory-physics.md 2.4 checks) ---------------------------------------------------


def kv_per_token(model_id: str, tp: int = 1, kv: str | None = None) -> float:
    a = arch(model_id)
    specs = layer_specs(a, range(a.num_layers), tp, kv, "bfloat16")
    return sum(s.bytes_per_token for s in specs)


def test_llama_31_8b_keeps_131072_kv_bytes_per_token():
    # 32 layers x 2 (K and V) x 8 KV heads x head_dim 128 x 2 bytes = 131,072
    assert kv_per_token("meta-llama/Llama-3.1-8B") == 131_072


def test_deepseek_r1_tp8_keeps_70272_bytes_per_token_per_rank():
    # MLA: 61 layers x (kv_lora_rank 512 + qk_rope_head_dim 64) x 2 bytes = 70,272, not divided by TP
    assert kv_per_token("deepseek-ai/DeepSeek-R1", tp=8) == 70_272
    assert kv_per_token("deepseek-ai/DeepSeek-R1", tp=1) == 70_272


def test_llama_33_70b_tp4_and_qwen3_235b_tp4():
    # 80 x 2 x (8 KV heads / 4 ranks) x 128 x 2 = 81,920; Qwen3-235B: 94 x 2 x (4 / 4) x 128 x 2 = 48,128
    assert kv_per_token("meta-llama/Llama-3.3-70B-Instruct", tp=4) == 81_920
    assert kv_per_token("Qwen/Qwen3-235B-A22B", tp=4) == 48_128


def test_deepseek_v32_indexer_adds_132_bytes_per_layer():
    # 61 x (576 x 2 + 128 x (1 + 4/128)) = 61 x (1152 + 132) = 78,324 (physics 2.4)
    assert kv_per_token("deepseek-ai/DeepSeek-V3.2", tp=8) == pytest.approx(78_324)


def test_head_dim_from_config_not_hidden_over_heads():
    # Qwen3-0.6B: hidden 1024 / 16 heads = 64, but head_dim is 128: 28 x 2 x 8 x 128 x 2 = 114,688
    assert kv_per_token("Qwen/Qwen3-0.6B") == 114_688


def test_kv_heads_replicated_when_fewer_than_ranks():
    assert kv_heads_per_rank(8, 16) == 1
    assert kv_heads_per_rank(8, 4) == 2
    # Llama-3.1-8B at TP 16: one KV head per rank: 32 x 2 x 1 x 128 x 2
    assert kv_per_token("meta-llama/Llama-3.1-8B", tp=16) == 16_384


def test_fp8_kv_cache_halves_the_bytes():
    assert kv_per_token("meta-llama/Llama-3.1-8B", kv="fp8_e4m3") == 65_536


def test_unknown_kv_dtype_is_an_estimate_error():
    with pytest.raises(EstimateError, match="kv-cache-dtype"):
        attention_bytes_per_token(arch("meta-llama/Llama-3.1-8B"), 1, "fp7", "bfloat16")


def test_sliding_window_layers_hold_a_window_per_request():
    a = arch("openai/gpt-oss-20b")  # 12 sliding (window 128) + 12 full layers
    specs = layer_specs(a, range(a.num_layers), 1, None, "bfloat16")
    kinds = sorted({s.kind for s in specs})
    assert kinds == ["full", "sliding"]
    cap = kv_capacity(specs, 10 * GiB, block_size=16, max_model_len=131072, max_num_batched_tokens=8192)
    # two groups of 12 layers: a page = 16 tokens x 8 KV heads x head_dim 64 x 2 (K,V) x 2 B = 32,768 B
    assert cap.group_size == 12 and cap.num_groups == 2
    assert cap.num_blocks == 10 * GiB // (32_768 * 12)
    # full layers: 131072/16 = 8192 pages; sliding: ceil((128 - 1 + 8192)/16) + 1 = 521 pages
    assert cap.max_concurrency == pytest.approx(cap.num_blocks / (8192 + 521))


def test_block_rounding_of_token_capacity():
    a = arch("meta-llama/Llama-3.1-8B")
    specs = layer_specs(a, range(a.num_layers), 1, None, "bfloat16")
    cap = kv_capacity(specs, 10 * GiB + 12345, block_size=16, max_model_len=8192, max_num_batched_tokens=8192)
    # a block of 16 tokens over 32 layers = 16 x 131,072 B = 2 MiB; 10 GiB + 12345 B -> 5120 whole blocks
    assert cap.num_blocks == 5120 and cap.tokens == 5120 * 16
    assert cap.max_concurrency == pytest.approx(5120 / 512)


# --- weights -------------------------------------------------------------------------------------------------------


def test_llama_31_8b_weights_match_vllm_log():
    # vllm#17122: "Model loading took 14.9889 GiB" for Llama-3.1-8B-Instruct at TP 1 (bf16)
    e = estimate(EstimateRequest(arch=arch("meta-llama/Llama-3.1-8B"), gpu_memory_bytes=80 * GiB))
    assert e.per_gpu_bytes["weights"] / GiB == pytest.approx(14.9889, rel=0.002)


def test_qwen3_30b_a3b_tp4_weights_match_vllm_log():
    # vllm#17469: "Model loading took 14.2474 GiB" per rank, Qwen3-30B-A3B, TP 4 on A10s
    e = estimate(EstimateRequest(arch=arch("Qwen/Qwen3-30B-A3B"), gpu_memory_bytes=22 * GiB,
                                 tensor_parallel_size=4, max_model_len=8192))
    assert e.per_gpu_bytes["weights"] / GiB == pytest.approx(14.2474, rel=0.005)


def test_tied_embeddings_counted_once():
    # Qwen3-0.6B ties lm_head to the embedding: 751,632,384 counts 151,936 x 1024 twice
    assert total_parameters(arch("Qwen/Qwen3-0.6B")) == 751_632_384 - 151_936 * 1024


def test_llama_31_8b_parameter_count():
    # Hugging Face safetensors total of Llama-3.1-8B: 8,030,261,248
    assert total_parameters(arch("meta-llama/Llama-3.1-8B")) == 8_030_261_248


def test_more_tp_never_more_weights_per_gpu():
    a = arch("meta-llama/Llama-3.3-70B-Instruct")
    per_rank = []
    for tp in (1, 2, 4, 8, 16):
        inv = stage_inventory(a, range(a.num_layers), first=True, last=True, sh=Sharding(tp=tp))
        per_rank.append(sum(inv.values()))
    assert per_rank == sorted(per_rank, reverse=True)


def test_vocab_padded_to_64_times_tp():
    assert padded_vocab_per_rank(128_256, 1) == 128_256  # already a multiple of 64
    assert padded_vocab_per_rank(151_936, 8) == 19_008  # 151,936 -> 512 x 297 = 152,064 rows, / 8 ranks


def test_pipeline_stages_put_extra_layers_before_the_last():
    assert [len(r) for r in pipeline_stages(61, 4)] == [15, 15, 16, 15]
    assert [len(r) for r in pipeline_stages(32, 2)] == [16, 16]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (QuantSpec(method="awq", bits=4, group_size=128), 0.5 + 2 / 128 + 0.5 / 128),  # 0.51953 (physics 3.1)
        (QuantSpec(method="gptq", bits=4, group_size=128), 0.5 + 2 / 128 + 0.5 / 128 + 4 / 4096),
        (QuantSpec(method="mxfp4", bits=4, group_size=32, zero_point=False), 0.53125),
        (QuantSpec(method="nvfp4", bits=4, group_size=16, zero_point=False), 0.5625),
        (QuantSpec(method="fp8", bits=8, fp8_scaling="tensor", zero_point=False), 1.0),
        (QuantSpec(method="fp8", bits=8, fp8_scaling="block", weight_block_size=(128, 128), zero_point=False),
         1 + 4 / 16384),
        (QuantSpec(method="bitsandbytes-4bit", bits=4, group_size=64, zero_point=False), 0.5 + 4 / 64),
    ],
)
def test_quantized_bytes_per_param(spec, expected):
    assert quantized_bytes_per_param(spec, 4096) == pytest.approx(expected)


def test_awq_keeps_embeddings_and_lm_head_at_16_bit():
    base = arch("meta-llama/Llama-3.1-8B")
    awq = base.model_copy(update={"quantization": QuantSpec(method="awq", bits=4, group_size=128)})
    w16 = estimate(EstimateRequest(arch=base, gpu_memory_bytes=80 * GiB)).details["weights_by_kind_bytes"]
    w4 = estimate(EstimateRequest(arch=awq, gpu_memory_bytes=80 * GiB)).details["weights_by_kind_bytes"]
    assert w4["embedding"] == w16["embedding"] and w4["lm_head"] == w16["lm_head"]
    assert w4["dense_mlp"] == pytest.approx(w16["dense_mlp"] / 2 * 0.51953125, rel=1e-6)


# --- the vLLM engine model -----------------------------------------------------------------------------------------


def test_vllm_budget_identity_llm_d_h100():
    # llm-d H100 (79.18 GiB), Llama-3.1-8B, vLLM 0.11: 71.26 = 14.99 weights + 4.76 activation + 0.13 non-torch
    # + 51.38 KV (physics 2.1). The calculator must land within 1% on the KV pool.
    e = estimate(EstimateRequest(arch=arch("meta-llama/Llama-3.1-8B"), gpu_memory_bytes=round(79.18 * GiB),
                                 engine_version="0.11.0"))
    pg = e.per_gpu_bytes
    requested = 0.9 * 79.18 * GiB
    assert pg["weights"] + pg["activations"] + pg["non_torch"] + pg["kv_cache"] == pytest.approx(requested, abs=2)
    assert pg["kv_cache"] / GiB == pytest.approx(51.38, rel=0.01)
    assert pg["activations"] / GiB == pytest.approx(4.76, rel=0.05)


def test_cuda_graphs_inside_the_budget_from_v021():
    a = arch("meta-llama/Llama-3.1-8B")
    old = estimate(EstimateRequest(arch=a, gpu_memory_bytes=80 * GiB, engine_version="0.20.1"))
    new = estimate(EstimateRequest(arch=a, gpu_memory_bytes=80 * GiB, engine_version="0.21.0"))
    assert not old.details["cuda_graphs_in_budget"] and new.details["cuda_graphs_in_budget"]
    eager = estimate(EstimateRequest(arch=a, gpu_memory_bytes=80 * GiB, engine_version="0.21.0",
                                     enforce_eager=True))
    assert eager.per_gpu_bytes["cuda_graphs"] == 0


def test_unknown_version_is_an_explicit_assumption():
    e = estimate(EstimateRequest(arch=arch("meta-llama/Llama-3.1-8B"), gpu_memory_bytes=80 * GiB))
    assert any("no vLLM version given" in a for a in e.assumptions)
    assert e.inputs["engine_version_assumed"] == "0.11"


def test_more_tokens_never_need_less_kv_in_a_plain_engine():
    a = arch("meta-llama/Llama-3.1-8B")
    kv = [
        estimate(EstimateRequest(arch=a, gpu_memory_bytes=80 * GiB, engine="transformers", batch_size=4,
                                 input_len=n, output_len=128)).per_gpu_bytes["kv_cache"]
        for n in (0, 128, 1024, 4096)
    ]
    assert kv == sorted(kv)
    # 4 sequences x (4096 + 127) cached tokens x 131,072 B: generate() never feeds back the last token it samples
    assert kv[-1] == 4 * (4096 + 127) * 131_072


def test_engine_needs_workload_for_transformers():
    with pytest.raises(EstimateError, match="batch-size"):
        estimate(EstimateRequest(arch=arch("meta-llama/Llama-3.1-8B"), gpu_memory_bytes=80 * GiB,
                                 engine="transformers"))


def test_gemma4_global_layers_keep_their_own_kv_size():
    # sliding: 8 KV heads x (256 + 256) x 2 B = 8,192 B per layer; global: 2 x (512 + 512) x 2 B = 4,096 B
    # (K and V both cached although values equal keys): 25 x 8,192 + 5 x 4,096 = 225,280 B per token
    assert kv_per_token("google/gemma-4-26B-A4B") == 25 * 8_192 + 5 * 4_096
    a = arch("google/gemma-4-26B-A4B")
    specs = layer_specs(a, range(a.num_layers), 1, None, "bfloat16")
    cap = kv_capacity(specs, 10 * GiB, block_size=16, max_model_len=32768, max_num_batched_tokens=8192)
    # one page size for both groups: a global page holds 32 tokens (16 x 8,192 / 4,096), so a 32k request needs
    # 1,024 global pages and ceil((1024 - 1 + 8192) / 16) + 1 = 577 sliding pages per sliding group
    groups = cap.num_groups
    assert groups == 6  # 25 sliding layers in groups of 5, plus the 5 global layers
    assert cap.max_concurrency == pytest.approx(cap.num_blocks / (1024 + 5 * 577))


def test_nemotron_3_super_fp8_tp2_weighs_a_120b_fp8_model_not_three():
    """LatentMoE read (moe_latent_size): 120.7e9 parameters, FP8 except embeddings/lm_head/norms/routers, split over
    two GPUs is about 57 GiB each (the latent projections are replicated); ignoring the latent width gave 214 GiB."""
    from pytest_llmsizer.calculator.resolve import request_from_options

    request = request_from_options("nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8", gpu="H200",
                                   tensor_parallel_size=2, quantization="modelopt")
    result = estimate(request)
    assert 55 < result.per_gpu_bytes["weights"] / GiB < 59
    assert result.fits and result.kv_cache_tokens > 1_000_000
    assert not [a for a in result.assumptions if "not understood" in a]
