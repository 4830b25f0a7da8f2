"""Recommendations carry the right sign and the numbers that triggered them."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_llmsizer.calculator.result import CalculatorResult
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.units import GiB
from pytest_llmsizer.validation.advice import recommendations
from pytest_llmsizer.validation.compare import compare
from pytest_llmsizer.validation.tolerances import DEFAULT_TOLERANCES

LLAMA = Path(__file__).resolve().parents[1] / "profiles" / "vllm-issue-threads" / "vllm-10511--meta-llama-3-8b.json"


def profile(**engine: object) -> Profile:
    data = json.loads(LLAMA.read_text())
    data["engine"].update(engine)
    return Profile.model_validate(data)


def advise(p: Profile, **calculated_gib: float) -> list[str]:
    result = CalculatorResult({k: round(v * GiB) for k, v in calculated_gib.items()})
    return recommendations(p, compare(p, result, DEFAULT_TOLERANCES.defaults))


def test_overhead_too_low_when_profiled_exceeds_calculated():
    # vllm#10511 logs non-torch 1.79 GiB; a calculator saying 0.15 is too LOW (difference +1.64 GiB)
    advice = advise(profile(), non_torch=0.15)
    assert advice == [
        "framework overhead too low: non_torch profiled 1.79 GiB vs calculated 0.15 GiB "
        "(difference +1.64 GiB, +91.6%): raise the runtime overhead term"
    ]


def test_overhead_too_high_and_multi_gpu():
    assert "framework overhead too high" in advise(profile(), non_torch=3.0)[0]
    data = json.loads(LLAMA.read_text())
    data["hardware"]["gpu_count"] = 2
    data["engine"]["tensor_parallel_size"] = 2
    advice = advise(Profile.model_validate(data), non_torch=0.15)
    assert advice[0].startswith("multi-GPU overhead: at 2 GPUs the non_torch memory is higher than calculated")


def test_kv_cache_smaller_than_calculated():
    # profiled 53.29 GiB; a calculator saying 60 over-estimates: difference -6.71 GiB
    advice = advise(profile(), kv_cache=60.0)
    assert advice[0].startswith("KV cache smaller than calculated: profiled 53.29 GiB vs calculated 60.00 GiB "
                                "(difference -6.71 GiB, -12.6%)")
    assert advise(profile(), kv_cache=50.0)[0].startswith("KV cache larger than calculated")


def test_activations_lower_than_calculated():
    advice = advise(profile(), activations=2.0)
    assert advice[0].startswith("activations lower than calculated: profiled 1.26 GiB vs calculated 2.00 GiB")


def test_quantization_not_applied():
    data = json.loads(LLAMA.read_text())
    data["model"]["quantization"] = {"method": "awq", "bits": 4}
    advice = advise(Profile.model_validate(data), weights=5.0)
    assert advice[0].startswith("quantization may not be applied: weights are 2.99x the calculated awq size")


def test_no_advice_when_close():
    assert advise(profile(), weights=14.96, kv_cache=53.0, activations=1.25, non_torch=1.7) == []
