"""The CUDA-graph pool model (calculator/cuda_graphs.py)."""

from __future__ import annotations

from pytest_llmsizer.calculator import estimate
from pytest_llmsizer.calculator.cuda_graphs import attention_backend, capture_sizes, graph_pool_bytes
from pytest_llmsizer.calculator.resolve import request_from_options
from pytest_llmsizer.catalog.models import resolve_model
from pytest_llmsizer.units import GiB


def test_capture_sizes_follow_vllms_default_list():
    sizes = capture_sizes(1024, (0, 18))
    assert sizes[:4] == (1, 2, 4, 8) and sizes[-1] == 512 and len(sizes) == 51
    assert capture_sizes(64, (0, 18))[-1] == 128  # min(2 x max_num_seqs, 512)
    assert len(capture_sizes(64, (0, 18))) < len(sizes)


def test_backend_classes():
    assert attention_backend(resolve_model("deepseek-ai/DeepSeek-R1").arch) == "mla"
    assert attention_backend(resolve_model("Qwen/Qwen3-Coder-Next").arch) == "hybrid"
    assert attention_backend(resolve_model("meta-llama/Llama-3.1-8B").arch) == "standard"


def test_fewer_sequences_fewer_graphs_smaller_pool():
    arch = resolve_model("meta-llama/Llama-3.3-70B-Instruct").arch
    big, _ = graph_pool_bytes(arch, "cuda", (0, 18), 1024, 80)
    small, terms = graph_pool_bytes(arch, "cuda", (0, 18), 16, 80)
    assert 0 < small < big and terms["capture_sizes"] == len(capture_sizes(16, (0, 18)))


def test_llama_70b_tp4_h200_v018_against_the_logged_pool():
    # vme-dev: "Graph capturing finished ... took 0.94-0.96 GiB" (H200, TP4, vLLM 0.18, max_num_seqs 1024)
    result = estimate(request_from_options("meta-llama/Llama-3.3-70B-Instruct", gpu="H200", tensor_parallel_size=4,
                                           engine_version="0.18.0", max_model_len=8192))
    assert abs(result.per_gpu_bytes["cuda_graphs"] / GiB - 0.95) < 0.15


def test_eager_means_no_graphs_and_a_negative_log_means_zero():
    eager = estimate(request_from_options("meta-llama/Llama-3.1-8B", gpu="H200", enforce_eager=True))
    assert eager.per_gpu_bytes["cuda_graphs"] == 0
    # before 0.17 on CUDA the median logged "took" is negative: the pool is predicted as 0, never negative
    old = estimate(request_from_options("meta-llama/Llama-3.1-8B", gpu="H200", engine_version="0.11.0"))
    assert old.per_gpu_bytes["cuda_graphs"] == 0
