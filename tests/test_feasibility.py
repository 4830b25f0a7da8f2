"""Impossible deployments say so: the refusals vLLM would print, ``fits: false`` in JSON and exit 1.

The record-level test runs every real vLLM log the shared data holds: a deployment that started must not be called
impossible, and the ones whose logs show the refusal must be.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pytest_llmsizer.calculator import estimate
from pytest_llmsizer.calculator.feasibility import longest_fitting_length, parallel_problems
from pytest_llmsizer.calculator.resolve import request_from_options
from pytest_llmsizer.calculator.suggest import suggestions
from pytest_llmsizer.catalog.models import resolve_model
from pytest_llmsizer.errors import LlmsizerError
from tests.test_cli_estimate import run

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def est(model: str, **settings):
    request = request_from_options(model, **settings)
    return request, estimate(request)


def test_heads_not_divisible_by_tp_is_refused_with_vllms_reason():
    _, result = est("meta-llama/Llama-3.1-8B", gpu="H100", tensor_parallel_size=3)
    assert not result.fits
    assert ("Total number of attention heads (32) must be divisible by tensor parallel size (3)."
            in result.problems)
    assert result.to_json()["fits"] is False and result.to_json()["reasons"] == result.problems


def test_kv_heads_replicated_when_tp_is_a_multiple_but_refused_otherwise():
    arch = resolve_model("meta-llama/Llama-3.1-8B").arch  # 32 heads, 8 KV heads
    assert not [p for p in parallel_problems(arch, 16, 1, False) if "KV heads" in p]  # 16 = 2 x 8: replicated
    assert [p for p in parallel_problems(arch, 3, 1, False) if "KV heads (8)" in p]


def test_experts_not_divisible_under_expert_parallel():
    arch = resolve_model("Qwen/Qwen3-30B-A3B").arch  # 128 experts
    assert parallel_problems(arch, 2, 1, True) == []
    problems = parallel_problems(arch, 2, 3, True)
    assert any("Number of experts (128) is not divisible by the expert parallel size (6" in p for p in problems)


def test_one_max_length_request_must_fit_with_the_longest_length_that_does():
    request, result = est("meta-llama/Llama-3.1-70B-Instruct", gpu="H100", tensor_parallel_size=2)
    assert not result.fits
    (reason,) = result.problems
    assert reason.startswith("To serve at least one request with the model's max seq len (131072)")
    longest = result.details["longest_fitting_max_model_len"]
    assert f"estimated maximum model length is {longest}." in reason
    assert estimate(request_from_options("meta-llama/Llama-3.1-70B-Instruct", gpu="H100", tensor_parallel_size=2,
                                         max_model_len=longest)).fits
    assert not estimate(request_from_options("meta-llama/Llama-3.1-70B-Instruct", gpu="H100",
                                             tensor_parallel_size=2, max_model_len=longest + 16)).fits
    hints = suggestions(request, result)
    assert hints[0].startswith("--tp 4 would fit") and f"--max-model-len {longest}" in hints[1]


def test_no_kv_memory_at_all():
    _, result = est("meta-llama/Llama-3.1-70B", gpu_memory_bytes=80 * 2**30)
    assert result.problems == ["No available memory for the cache blocks. Try increasing `gpu_memory_utilization` "
                               "when initializing the engine."]
    assert result.kv_cache_tokens == 0


def test_max_model_len_above_the_models_limit_needs_the_override():
    _, result = est("meta-llama/Llama-3.1-8B", gpu="H200", max_model_len=262144)
    assert any(p.startswith("User-specified max_model_len (262144) is greater than the derived max_model_len "
                            "(131072)") for p in result.problems)
    _, allowed = est("meta-llama/Llama-3.1-8B", gpu="H200", max_model_len=262144, allow_long_max_model_len=True)
    assert not any("derived max_model_len" in p for p in allowed.problems)


def test_rope_scaling_factor_raises_the_derived_limit():
    # deepseek-coder-6.7b: max_position_embeddings 16384 with linear rope scaling x4 -> vLLM derives 65536
    arch = resolve_model("deepseek-ai/deepseek-coder-6.7b-instruct").arch
    assert arch.max_position_embeddings == 16384 and arch.max_model_len_limit == 65536
    # yarn: original_max_position_embeddings x factor (DeepSeek-V3: 4096 x 40 = its max_position_embeddings)
    assert resolve_model("deepseek-ai/DeepSeek-V3").arch.max_model_len_limit == 163840


def test_longest_fitting_length_is_a_binary_search():
    assert longest_fitting_length(1000, lambda n: n <= 437) == 437
    assert longest_fitting_length(1000, lambda n: False) == 0
    assert longest_fitting_length(1000, lambda n: True) == 1000


def test_cli_exit_1_and_json_fits_false():
    proc = run("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--tp", "3", "--json")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["fits"] is False and any("attention heads (32)" in r for r in out["reasons"])
    assert out["suggestions"] == [s for s in out["suggestions"] if s.startswith("--tp ")]
    table = run("estimate", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "--tp", "2")
    assert table.returncode == 1
    assert table.stdout.startswith("DOES NOT FIT: vLLM would refuse this deployment:")
    ok = run("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["fits"] is True


def test_real_logs_refused_exactly_where_vllm_refused():
    """Every real startup log: only the five whose log shows vLLM refusing or failing to start (or an OOM report)
    are flagged."""
    data = BENCHMARKS.parents[1] / "shared" / "data" / "vllm-startup-logs"
    if not data.is_dir():
        pytest.skip("../shared/data not beside the checkout")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from vllm_records import issue_thread_cases, request_for, vme_cases
    finally:
        sys.path.remove(str(BENCHMARKS))
    cases = vme_cases(data / "vme-dev.jsonl") + issue_thread_cases(data / "issue-threads.jsonl")[0]
    flagged, estimated = set(), 0
    for case in cases:
        try:
            result = estimate(request_for(case))
        except LlmsizerError:
            continue
        estimated += 1
        if not result.fits:
            flagged.add(case.record_id)
    assert estimated > 200
    # #27508#8 logged "4.54 GiB KV cache is needed ... (1.71 GiB)"; #33155#9 is an OOM report on one H100;
    # QwenLM/Qwen3#16#27 logged "max seq len (32768) is larger than ... KV cache (24320)"; #26612#33 (estimable since
    # the A800 is in the GPU catalog) logged its KV line followed by "EngineCore failed to start"; #6746#7 is titled
    # "The 8xH100 device failed to run meta-llama/Meta-Llama-3.1-405B-Instruct-FP8" and its excerpt stops after the
    # weights line (57.75 GB per GPU, which the catalog reproduces since it reads Meta's bf16 attention): that leaves
    # ~0.2 GiB of KV at the 0.9 default, short of one 131072-token request.
    assert flagged == {"vllm-project/vllm#27508#8", "vllm-project/vllm#33155#9", "QwenLM/Qwen3#16#27",
                       "vllm-project/vllm#26612#33", "vllm-project/vllm#6746#7"}


def test_plain_engine_workload_that_does_not_fit_is_out_of_memory():
    _, result = est("meta-llama/Llama-3.1-70B", gpu="H100", engine="transformers", batch_size=64, input_len=8192,
                    output_len=1024)
    assert not result.fits and result.problems[0].startswith("CUDA out of memory: the workload needs")
    _, small = est("meta-llama/Llama-3.1-8B", gpu="H100", engine="transformers", batch_size=1, input_len=512,
                   output_len=128)
    assert small.fits and small.problems == []


def test_v0_refusal_is_worded_as_v0_worded_it_against_a_real_log():
    """QwenLM/Qwen3#16 (vLLM ~0.3, V0, RTX 3090): "ValueError: The model's max seq len (32768) is larger than the
    maximum number of tokens that can be stored in KV cache (24320). ..." The V0 check is block_size x num_gpu_blocks
    against max_model_len, and its words are V0's, not V1's "To serve at least one request"."""
    data = BENCHMARKS.parents[1] / "shared" / "data" / "vllm-startup-logs"
    if not data.is_dir():
        pytest.skip("../shared/data not beside the checkout")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from vllm_records import issue_thread_cases, request_for
    finally:
        sys.path.remove(str(BENCHMARKS))
    (case,) = [c for c in issue_thread_cases(data / "issue-threads.jsonl")[0] if c.record_id == "QwenLM/Qwen3#16#27"]
    result = estimate(request_for(case))
    (reason,) = result.problems
    prefix = ("The model's max seq len (32768) is larger than the maximum number of tokens that can be stored in KV "
              "cache (")
    assert reason.startswith(prefix)
    stored = int(reason[len(prefix):].split(")")[0])
    assert stored == result.kv_cache_tokens == result.details["longest_fitting_max_model_len"]
    assert stored == pytest.approx(24320, rel=0.05)  # the logged capacity (1520 blocks x 16)
    assert reason.endswith("Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing "
                           "the engine.")
