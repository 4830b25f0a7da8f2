"""The fused-MoE kernel vLLM runs per version, format and GPU, its buffers, and what the pre-capture warm-ups leave
cached (``calculator/moe_kernels.py``; the facts are read from vLLM 0.11.2-0.20.0 and FlashInfer 0.6.3 source)."""

from __future__ import annotations

import pytest

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator import estimate
from pytest_llmsizer.calculator.moe_kernels import deepgemm_warmup_bytes, flashinfer_expert_padding, moe_kernel
from pytest_llmsizer.calculator.resolve import request_from_options
from pytest_llmsizer.catalog.models import resolve_model

M = 8192  # max_num_batched_tokens of every record


def _kernel(model: str, version: tuple[int, int], *, tp: int = 1, cc: str | None = "9.0", platform: str = "cuda",
            ep: bool = False):
    return moe_kernel(resolve_model(model).arch, M, tp, 2, version=version, platform=platform,
                      compute_capability=cc, expert_parallel=ep)


def test_a_dense_model_has_no_moe_kernel():
    assert _kernel("meta-llama/Llama-3.1-8B", (0, 13)) is None


def test_unquantized_experts_before_014_allocate_per_call_and_from_014_use_the_workspace():
    # Qwen3-VL-30B-A3B: hidden 2048, 8 of 128 experts of width 768 -> N = 1536 w13 rows
    old = _kernel("Qwen/Qwen3-VL-30B-A3B-Instruct", (0, 13))
    assert old is not None and old.name == "triton" and old.persistent_bytes == 0
    assert old.transient_bytes == 2 * M * 8 * (max(1536, 2048) + 1536 / 2)  # cache13 + cache2
    for version in ((0, 14), (0, 16), (0, 20)):
        new = _kernel("Qwen/Qwen3-VL-30B-A3B-Instruct", version)
        assert new is not None and new.name == "triton-modular" and new.transient_bytes == 0
        assert new.persistent_bytes == 2 * M * 8 * (max(768, 2048) + max(1536, 2048))


def test_fp8_block_experts_on_hopper_run_flashinfer_only_on_016_under_tp():
    # DeepSeek-R1 at TP 8: hidden 7168, 8 experts of width 2048 / 8 = 256 per rank, N = 512
    kinds = {v: _kernel("deepseek-ai/DeepSeek-R1-0528", v, tp=8).name for v in ((0, 13), (0, 14), (0, 16), (0, 17))}
    assert kinds == {(0, 13): "triton", (0, 14): "triton-modular", (0, 16): "flashinfer-cutlass",
                     (0, 17): "triton-modular"}
    fi = _kernel("deepseek-ai/DeepSeek-R1-0528", (0, 16), tp=8)
    assert fi is not None and fi.transient_bytes == M * 8 * (7168 * 2 + 2 * 256 * 2 + 256 * 2 + 7168 * 2)
    assert _kernel("deepseek-ai/DeepSeek-R1-0528", (0, 17), tp=8, ep=True).name == "flashinfer-cutlass"
    blackwell = _kernel("deepseek-ai/DeepSeek-R1-0528", (0, 17), tp=8, cc="10.0")
    assert blackwell is not None and blackwell.name == "flashinfer-trtllm" and not blackwell.traced
    assert _kernel("deepseek-ai/DeepSeek-R1-0528", (0, 16), tp=8, cc="12.0").name == "triton-modular"


def test_modelopt_fp8_experts_take_flashinfer_from_016_and_plain_experts_size_their_own_activation():
    # Nemotron-3-Nano: relu^2 experts (not gated), hidden 2688, 6 experts of width 1856, static per-tensor fp8
    old = _kernel("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-FP8", (0, 13))
    assert old is not None and old.name == "triton" and old.transient_bytes == 2 * M * 6 * (max(1856, 2688) + 1856)
    new = _kernel("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-FP8", (0, 16))
    assert new is not None and new.name == "flashinfer-cutlass"
    assert new.transient_bytes == M * 6 * (2688 * 1 + 1856 * 2 + 1856 * 1 + 2688 * 2)  # fp8 inputs


def test_compressed_tensors_fp8_runs_cutlass_with_shared_buffers_on_hopper_only():
    cutlass = _kernel("RedHatAI/Qwen3-235B-A22B-FP8-dynamic", (0, 11), tp=4)
    assert cutlass is not None and cutlass.name == "cutlass-fp8-modular" and cutlass.transient_bytes == 0
    ampere = _kernel("RedHatAI/Qwen3-235B-A22B-FP8-dynamic", (0, 11), tp=4, cc="8.0")
    assert ampere is not None and ampere.name == "triton" and ampere.transient_bytes > 0
    rocm = _kernel("RedHatAI/Qwen3-235B-A22B-FP8-dynamic", (0, 11), tp=4, cc="gfx942", platform="rocm")
    assert rocm is not None and rocm.name == "triton"


def test_expert_parallelism_keeps_whole_experts():
    tp = _kernel("Qwen/Qwen3-235B-A22B-Instruct-2507", (0, 13), tp=4)
    ep = _kernel("Qwen/Qwen3-235B-A22B-Instruct-2507", (0, 13), tp=4, ep=True)
    assert tp is not None and ep is not None
    # 8 experts of width 1536, hidden 4096: N = 768 per rank under TP, 3072 under EP
    assert tp.transient_bytes == 2 * M * 8 * (4096 + 384) and ep.transient_bytes == 2 * M * 8 * (4096 + 1536)


def test_formats_whose_kernel_was_not_traced_say_so():
    est = estimate(request_from_options("Qwen/Qwen3-30B-A3B", gpu="H100", engine_version="0.13.0",
                                        quantization="awq"))
    assert any("not traced" in a and "awq" in a for a in est.assumptions)
    traced = estimate(request_from_options("Qwen/Qwen3-30B-A3B", gpu="H100", engine_version="0.13.0"))
    assert not any("not traced" in a for a in traced.assumptions)


def test_the_deepgemm_warmup_reserve_follows_torchs_block_reuse():
    arch = resolve_model("deepseek-ai/DeepSeek-R1-0528").arch
    max_m = 8192 * 8 + 256 * 127  # 98048, a multiple of 128
    w13 = [max_m * 7168, max_m * 56 * 4, max_m * 512 * 2]  # fp8 input, fp32 scales, bf16 output
    w2_out = max_m * 7168 * 2  # its fp8 input and scales fit in the freed w13 blocks; the output does not
    assert deepgemm_warmup_bytes(arch, M, 8, platform="cuda", compute_capability="9.0") == sum(w13) + w2_out
    assert deepgemm_warmup_bytes(arch, M, 8, platform="cuda", compute_capability="8.0") == 0
    assert deepgemm_warmup_bytes(arch, M, 8, platform="rocm", compute_capability="gfx942") == 0
    dense = resolve_model("RedHatAI/Qwen3-235B-A22B-FP8-dynamic").arch  # per-channel, not block-128
    assert deepgemm_warmup_bytes(dense, M, 4, platform="cuda", compute_capability="9.0") == 0


@pytest.mark.parametrize(("version", "dominant"), [("0.13.0", "deepgemm"), ("0.16.0", "forward")])
def test_the_release_is_the_larger_of_the_deepgemm_reserve_and_the_warmup_forward(version, dominant):
    est = estimate(request_from_options("deepseek-ai/DeepSeek-R1-0528", gpu="H200", tensor_parallel_size=8,
                                        engine_version=version, max_model_len=8192))
    t = est.details["cuda_graph_terms"]
    rho = k.CUDA_GRAPH_RELEASE["<0.17"]["cuda"]
    forward = rho * t["release_dense_bytes"] + t["release_moe_bytes"]
    assert t["released_cache_bytes"] == round(max(t["release_deepgemm_bytes"], forward))
    assert (t["release_deepgemm_bytes"] > forward) == (dominant == "deepgemm")
    assert ("DeepGEMM" in t["released_by"]) == (dominant == "deepgemm")
    assert est.per_gpu_bytes["cuda_graphs"] == t["pool_bytes"] - t["released_cache_bytes"]


def test_flashinfer_pads_plain_fp8_experts_to_128_from_017_and_the_weights_carry_it():
    """``prepare_fp8_moe_layer_for_fi`` rounds the per-rank expert intermediate up to 16 (0.16; gated experts after)
    or 128 (plain experts from 0.17): Nemotron-3-Nano FP8's 1856 stays on 0.16 and becomes 1920 from 0.17. vme-dev
    logs 30.52 GiB of weights on 0.13-0.16 and 31.40 from 0.18 for the same checkpoint."""
    arch = resolve_model("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-FP8").arch

    def factor(version: tuple[int, int], **kw: object) -> float:
        options = {"platform": "cuda", "compute_capability": "9.0", **kw}
        return flashinfer_expert_padding(arch, 1, version=version, **options)  # type: ignore[arg-type]

    assert factor((0, 16)) == 1.0 and factor((0, 14)) == 1.0
    assert factor((0, 17)) == factor((0, 20)) == 1920 / 1856
    assert factor((0, 18), platform="rocm", compute_capability="gfx942") == 1.0
    assert factor((0, 18), compute_capability="8.0") == 1.0  # Ampere: no FlashInfer fp8 MoE
    weights = {}
    for version in ("0.16.0", "0.18.0"):
        est = estimate(request_from_options("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-FP8", gpu="H200",
                                            engine_version=version, max_model_len=8192))
        weights[version] = est.per_gpu_bytes["weights"]
    extra = 23 * 128 * 2 * 2688 * (1920 - 1856)  # MoE layers x experts x (w1 + w2) x hidden x padding, fp8
    assert weights["0.18.0"] - weights["0.16.0"] == pytest.approx(extra, abs=1)
    assert weights["0.18.0"] == pytest.approx(31.40 * 2**30, rel=0.002)  # logged on 0.18-0.20
