"""Speed of the built-in calculator: estimates per second for a spread of architectures and settings.

Run: ``python benchmarks/calculator.py [--seconds S] [--gpu NAME]``

For each case (dense, GQA, MoE, MLA, sliding-window, hybrid Mamba and Gated-DeltaNet, quantized checkpoints; TP 1,
2 and 8; several vLLM versions; the transformers engine) it times, with ``time.perf_counter``, for about ``S``
seconds each (default 0.3):

* ``estimate``: ``estimate(request)`` on a request built once (catalog resolution excluded);
* ``resolve+estimate``: ``request_from_options(...)`` then ``estimate`` on every call, as ``llmsizer estimate``
  and the plugin do (catalog resolution included; the catalog's per-process caches are warm after the first call);
* ``cold resolve``: one ``request_from_options`` with the model and GPU lookup caches emptied first, in ms (what
  the first profile of a model pays).

It prints one table and exits 0 whatever the numbers (it measures, it does not judge). A case the calculator
refuses (for example a model too big for its GPUs) is listed with its error instead of rates.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_llmsizer.calculator import estimate
from pytest_llmsizer.calculator.resolve import request_from_options
from pytest_llmsizer.errors import LlmsizerError

DEFAULT_GPU = "NVIDIA H100 80GB HBM3"


@dataclass(frozen=True)
class Case:
    kind: str
    model: str
    settings: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.settings.items()]
        return ", ".join(parts) or "defaults"


CASES: tuple[Case, ...] = (
    Case("dense (MHA)", "meta-llama/Llama-2-7b-hf"),
    Case("dense (GQA)", "meta-llama/Llama-3.1-8B"),
    Case("dense (GQA)", "meta-llama/Llama-3.1-8B", {"engine_version": "0.5.4"}),
    Case("dense (GQA)", "meta-llama/Llama-3.1-8B", {"engine_version": "0.6.4"}),
    Case("dense (GQA)", "meta-llama/Llama-3.1-8B", {"engine_version": "0.8.5"}),
    Case("dense (GQA)", "meta-llama/Llama-3.1-8B", {"engine_version": "0.11", "max_model_len": 32768}),
    Case("GQA, TP 2", "meta-llama/Llama-3.1-70B", {"tensor_parallel_size": 2}),
    Case("GQA, TP 8", "meta-llama/Llama-3.1-405B", {"tensor_parallel_size": 8, "dtype": "bfloat16"}),
    Case("MoE", "mistralai/Mixtral-8x7B-v0.1", {"tensor_parallel_size": 2}),
    Case("MoE", "Qwen/Qwen3-30B-A3B"),
    Case("MLA", "deepseek-ai/DeepSeek-V2-Lite"),
    Case("MLA + MoE, TP 8", "deepseek-ai/DeepSeek-V3", {"tensor_parallel_size": 8}),
    Case("sliding window", "mistralai/Mistral-7B-v0.1"),
    Case("sliding + global", "google/gemma-2-9b-it"),
    Case("sliding + global", "google/gemma-3-27b-it", {"tensor_parallel_size": 2}),
    Case("hybrid Mamba + MoE", "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"),
    Case("hybrid Gated DeltaNet", "Qwen/Qwen3.5-35B-A3B"),
    Case("hybrid Gated DeltaNet", "Qwen/Qwen3-Coder-Next", {"tensor_parallel_size": 2}),
    Case("quantized AWQ", "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4"),
    Case("quantized GPTQ", "Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4", {"tensor_parallel_size": 2}),
    Case("quantized FP8", "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", {"tensor_parallel_size": 2}),
    Case("quantized MXFP4", "openai/gpt-oss-120b"),
    Case("quantized bnb 4-bit", "unsloth/Qwen2.5-7B-Instruct-bnb-4bit"),
    Case("quantized variant name", "Qwen/Qwen2.5-7B-Instruct-AWQ"),
    Case("transformers", "meta-llama/Llama-3.1-8B",
         {"engine": "transformers", "batch_size": 8, "input_len": 512, "output_len": 512}),
    Case("transformers, MoE", "Qwen/Qwen3-30B-A3B",
         {"engine": "transformers", "batch_size": 1, "input_len": 2048, "output_len": 256}),
)


def clear_catalog_caches() -> None:
    """Empty the per-process lookup caches of the catalogs (the catalogs themselves stay loaded)."""
    from pytest_llmsizer.catalog import gpus, models

    for module, names in ((models, ("_resolve_in_catalog", "_suggest_model_ids")), (gpus, ("_resolve_cached",))):
        for name in names:
            cached = getattr(module, name, None)
            if cached is not None and hasattr(cached, "cache_clear"):
                cached.cache_clear()


def rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of ``fn``, timed over about ``seconds`` (at least 5 calls)."""
    fn()  # warm
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= 5:
            return calls / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="timing per measurement (default 0.3)")
    parser.add_argument("--gpu", default=DEFAULT_GPU, help=f"GPU of every case (default {DEFAULT_GPU!r})")
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}; GPU {args.gpu}; ~{args.seconds:g} s per measurement")
    start = time.perf_counter()
    request_from_options("facebook/opt-125m", gpu=args.gpu)  # loads and indexes both catalogs (once per process)
    print(f"catalogs loaded and indexed in {(time.perf_counter() - start) * 1000:.1f} ms (once per process)")
    print()
    header = (f"{'kind':<24}{'model':<52}{'settings':<64}{'estimate/s':>11}{'resolve+est/s':>15}"
              f"{'cold resolve ms':>17}")
    print(header)
    print("-" * len(header))
    rates: list[float] = []
    for case in CASES:
        def request(case: Case = case) -> Any:
            return request_from_options(case.model, gpu=args.gpu, **case.settings)

        label = case.label()
        try:
            clear_catalog_caches()
            start = time.perf_counter()
            prepared = request()
            cold_ms = (time.perf_counter() - start) * 1000
            estimate(prepared)
        except LlmsizerError as e:
            print(f"{case.kind:<24}{case.model:<52}{label:<64}  error: {str(e)[:90]}")
            continue
        only = rate(lambda prepared=prepared: estimate(prepared), args.seconds)
        both = rate(lambda: estimate(request()), args.seconds)
        rates.append(only)
        print(f"{case.kind:<24}{case.model:<52}{label:<64}{only:>11.0f}{both:>15.0f}{cold_ms:>17.2f}")
    if rates:
        rates.sort()
        print()
        print(f"estimate/s over {len(rates)} cases: min {rates[0]:.0f}, median {rates[len(rates) // 2]:.0f}, "
              f"max {rates[-1]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
