"""ROCm's "Model loading took": device-level used memory (calculator/platform.py), against real MI300X logs."""

from __future__ import annotations

from pytest_llmsizer.calculator import estimate
from pytest_llmsizer.calculator.params import Sharding
from pytest_llmsizer.calculator.platform import rocm_load_features
from pytest_llmsizer.calculator.resolve import request_from_options
from pytest_llmsizer.catalog.models import resolve_model
from pytest_llmsizer.units import GiB


def weights_gib(model: str, gpu: str, **settings) -> float:
    result = estimate(request_from_options(model, gpu=gpu, engine_version="0.14.1", max_model_len=8192, **settings))
    return result.per_gpu_bytes["weights"] / GiB


def test_cuda_load_figure_is_the_tensors_alone():
    result = estimate(request_from_options("Qwen/Qwen3-VL-30B-A3B-Instruct", gpu="H200", max_model_len=8192))
    assert result.details["load_figure_terms_bytes"] == {}


def test_moe_padding_is_256_bytes_per_row_whose_stride_is_a_multiple_of_512():
    arch = resolve_model("Qwen/Qwen3-VL-30B-A3B-Instruct").arch  # 48 MoE layers, 128 experts, I 768, h 2048
    f = rocm_load_features(arch, range(arch.num_layers), Sharding(), 2.0, "AMD Instinct MI300X")
    # w13: 128 x 1536 rows of 4096 B; w2: 128 x 2048 rows of 1536 B (both multiples of 512): +256 B per row
    assert f.moe_padding == 48 * (128 * 1536 + 128 * 2048) * 256
    assert f.moe16_expert_bytes == 48 * 128 * 3 * 2048 * 768 * 2


def test_qwen3_vl_moe_bf16_on_mi300x_matches_the_logged_79_29_gib():
    # vme-dev: MI300X TP1 v0.14.1 logged 79.29 GiB (H200: 58.23 GiB for the same checkpoint)
    assert abs(weights_gib("Qwen/Qwen3-VL-30B-A3B-Instruct", "MI300X") - 79.29) < 0.5
    assert abs(weights_gib("Qwen/Qwen3-VL-30B-A3B-Instruct", "H200") - 58.23) < 0.5


def test_held_out_maverick_bf16_on_mi300x_tp8():
    # holdout record (not used to fit): 126.73 GiB logged at TP8; tensors alone are 93.6 GiB
    assert abs(weights_gib("meta-llama/Llama-4-Maverick-17B-128E-Instruct", "MI300X",
                           tensor_parallel_size=8) - 126.73) / 126.73 < 0.02


def test_dense_fp8_checkpoint_pays_the_fnuz_mask_of_its_largest_weight():
    # Llama-3.3-70B FP8-dynamic TP1: gate_up 57344 x 8192 one-byte mask (0.44 GiB) + load growth; logged 68.36
    model = "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic"
    assert abs(weights_gib(model, "MI300X") - 68.36) < 0.1
    assert weights_gib(model, "MI300X") - weights_gib(model, "H200") > 0.5


def test_online_fp8_quantization_leaves_part_of_the_16_bit_copy():
    request = request_from_options("RedHatAI/Ministral-3-14B-Instruct-2512", gpu="MI300X", quantization="fp8",
                                   engine_version="0.14.1", max_model_len=8192)
    assert request.arch.quantization is not None and request.arch.quantization.online
    terms = estimate(request).details["load_figure_terms_bytes"]
    assert terms["online_quant_reserve"] > 2 * GiB  # logged 17.60 GiB vs 14.71 on H200


def test_fnuz_is_decided_by_the_catalog_gfx_target_not_the_name():
    from pytest_llmsizer.calculator.platform import fp8_is_fnuz
    from pytest_llmsizer.catalog.gpus import resolve_gpu

    # vLLM: 'gfx94' in gcnArchName (RocmPlatform.is_fp8_fnuz); MI300X/MI325X are gfx942, MI355X gfx950 (OCP e4m3fn)
    assert fp8_is_fnuz(resolve_gpu("MI300X").compute_capability, "AMD Instinct MI300X")
    assert fp8_is_fnuz(resolve_gpu("MI325X").compute_capability, None)
    assert not fp8_is_fnuz(resolve_gpu("MI355X").compute_capability, "AMD Instinct MI355X")
    assert not fp8_is_fnuz(resolve_gpu("H200").compute_capability, "NVIDIA H200")
    # a GPU outside the catalog: only its name is left
    assert fp8_is_fnuz(None, "AMD Instinct MI300A") and not fp8_is_fnuz(None, None)
