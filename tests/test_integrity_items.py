"""Every integrity check through the plugin: one synthetic profile that triggers it, one that does not.

The profiles are synthetic edge cases (``"synthetic": true``) built around the real vllm#10511 numbers.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

GiB = 2**30
REAL = Path(__file__).resolve().parents[1] / "profiles" / "vllm-issue-threads" / "vllm-10511--meta-llama-3-8b.json"

INI = """
[pytest]
llmsizer_profile_paths = profiles
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
"""


def base() -> dict[str, Any]:
    data = json.loads(REAL.read_text())
    data["synthetic"] = True
    return data


def comp(gib: float, **extra: Any) -> dict[str, Any]:
    return {"bytes": round(gib * GiB), "provenance": "device", "confidence": "high", **extra}


def with_device(data: dict[str, Any], baseline: list[float], peak: list[float]) -> dict[str, Any]:
    data["hardware"]["gpu_count"] = len(peak)
    data["measurements"]["device"] = {"tool": "nvidia-smi", "baseline_bytes": [round(b * GiB) for b in baseline],
                                      "peak_bytes": [round(p * GiB) for p in peak]}
    return data


def triggering(check: str) -> dict[str, Any]:
    data = base()
    comps = data["measurements"]["components"]
    if check == "peak_vs_baseline":
        return with_device(data, [20.0], [20.0])  # read after the engine exited
    if check == "tp_imbalance":
        data["engine"]["tensor_parallel_size"] = 2
        del comps["weights"]  # the TP-1 log's weights would (rightly) trip the budget and parameter checks
        return with_device(data, [0.5, 0.5], [70.0, 50.0])
    if check == "components_sum":
        # the parts (71.3 GiB) exceed the total by 43%; a total above the GPU's 79.2 GiB would be impossible
        comps["total"] = comp(50.0)
        return data
    if check == "vllm_budget_identity":
        comps["kv_cache"]["bytes"] = round(40.0 * GiB)
        return data
    if check == "impossible_values":
        comps["kv_cache"]["bytes"] = round(-1.0 * GiB)
        return data
    if check == "weights_vs_parameters":
        data["model"]["num_parameters"] = 8_030_261_248
        data["model"]["quantization"] = {"method": "awq", "bits": 4}
        return data
    if check == "contaminated_baseline":
        return with_device(data, [5.0], [75.0])
    if check == "confidence":
        comps["non_torch"]["confidence"] = "low"
        return data
    raise AssertionError(check)


def passing(check: str) -> dict[str, Any]:
    data = base()
    if check in ("peak_vs_baseline", "contaminated_baseline"):
        return with_device(data, [0.5], [75.0])
    if check == "tp_imbalance":
        data["engine"]["tensor_parallel_size"] = 2
        del data["measurements"]["components"]["weights"]
        return with_device(data, [0.5, 0.5], [75.0, 75.1])
    if check == "components_sum":
        data["measurements"]["components"]["total"] = comp(14.96 + 53.29 + 1.26 + 1.79)
        return data
    if check == "weights_vs_parameters":
        data["model"]["num_parameters"] = 8_030_261_248
        return data
    return data


SEVERITY = {  # the defaults in tolerances.py
    "peak_vs_baseline": "fail", "tp_imbalance": "warn", "components_sum": "warn", "vllm_budget_identity": "fail",
    "impossible_values": "fail", "weights_vs_parameters": "warn", "contaminated_baseline": "warn",
    "confidence": "warn",
}


@pytest.mark.parametrize("check", sorted(SEVERITY))
def test_check_triggers_through_the_plugin(pytester: pytest.Pytester, check: str):
    pytester.makeini(INI)
    (pytester.path / "profiles").mkdir()
    (pytester.path / "profiles" / "bad.json").write_text(json.dumps(triggering(check)))
    (pytester.path / "profiles" / "good.json").write_text(json.dumps(passing(check)))
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "integrity", "--llmsizer-no-gate", "-rA")
    if SEVERITY[check] == "fail":
        result.assert_outcomes(passed=1, failed=1, deselected=2)
        result.stdout.fnmatch_lines(["*profiles/bad.json: * integrity check(s) failed*", f"*- {check}: *"])
    else:
        result.assert_outcomes(passed=2, deselected=2, warnings=1)
        result.stdout.fnmatch_lines([f"*DataQualityWarning: profiles/bad.json: {check}: *"])
        strict = pytester.runpytest("-p", "no:cacheprovider", "-k", "integrity", "--llmsizer-no-gate",
                                    "-W", "error::pytest_llmsizer.DataQualityWarning")
        strict.assert_outcomes(passed=1, failed=1, deselected=2)
    assert "good.json" not in "".join(line for line in result.stdout.lines if "FAILED" in line)


def test_severity_off_and_threshold_from_tolerances(pytester: pytest.Pytester):
    pytester.makeini(INI)
    (pytester.path / "profiles").mkdir()
    data = triggering("peak_vs_baseline")
    (pytester.path / "profiles" / "bad.json").write_text(json.dumps(copy.deepcopy(data)))
    (pytester.path / "tol.yaml").write_text("integrity:\n  peak_vs_baseline: {severity: 'off'}\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "integrity", "--llmsizer-no-gate",
                                "--llmsizer-tolerances", "tol.yaml")
    result.assert_outcomes(passed=1, deselected=1)
