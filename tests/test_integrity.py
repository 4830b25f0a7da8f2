"""Integrity checks (pytest_llmsizer.validation.integrity): each check triggers on a bad profile and stays quiet on
a sound one; severities and thresholds come from the configuration; every committed profile passes the defaults."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest

from pytest_llmsizer.profile.model import Profile, Quantization
from pytest_llmsizer.units import GiB
from pytest_llmsizer.validation.integrity import Finding, IntegrityReport, bytes_per_parameter, check_profile
from pytest_llmsizer.validation.tolerances import INTEGRITY_DEFAULTS, CheckConfig

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
LLAMA3_8B = PROFILES / "vllm-issue-threads" / "vllm-10511--meta-llama-3-8b.json"
LLAMA3_8B_PARAMS = 8_030_261_248


def comp(gib: float, provenance: str = "engine", confidence: str = "high", per_gpu: list[float] | None = None,
         ) -> dict[str, Any]:
    data: dict[str, Any] = {"bytes": round(gib * GiB), "provenance": provenance, "confidence": confidence}
    if per_gpu is not None:
        data["per_gpu_bytes"] = [round(v * GiB) for v in per_gpu]
    return data


def gibs(*values: float) -> list[int]:
    return [round(v * GiB) for v in values]


def make(*, components: dict[str, Any] | None = None, device: dict[str, Any] | None = None,
         engine: dict[str, Any] | None = None, hardware: dict[str, Any] | None = None,
         model: dict[str, Any] | None = None) -> Profile:
    """A synthetic profile (marked so) holding only what the test gives."""
    measurements: dict[str, Any] = {"components": components or {}}
    if device is not None:
        measurements["device"] = device
    return Profile.model_validate({
        "format": "llmsizer-profile",
        "format_version": 1,
        "synthetic": True,
        "source": {"reference": "synthetic test case", "kind": "other"},
        "model": {"id": "test/model", **(model or {})},
        "hardware": {"gpu_count": 1, **(hardware or {})},
        "engine": {"name": "vllm", **(engine or {})},
        "measurements": measurements,
    })


def load(path: Path) -> Profile:
    return Profile.model_validate_json(path.read_text(encoding="utf-8"))


def run(profile: Profile, *, num_parameters: int | None = None, **overrides: CheckConfig) -> IntegrityReport:
    return check_profile(profile, {**INTEGRITY_DEFAULTS, **overrides}, num_parameters=num_parameters)


def only(report: IntegrityReport, check: str) -> list[Finding]:
    return [f for f in report.findings if f.check == check]


# -- peak_vs_baseline ---------------------------------------------------------------------------------------------


def test_peak_equal_to_baseline_fails() -> None:
    report = run(make(device={"baseline_bytes": gibs(1.5), "peak_bytes": gibs(1.5)}))
    [finding] = only(report, "peak_vs_baseline")
    assert finding.severity == "fail" and report.failed
    assert "after the engine exited" in finding.message and "lazy" in finding.message
    assert "1.50 GiB" in finding.message and "0.4" in finding.message
    assert finding.values["baseline_gib"] == finding.values["peak_gib"] == 1.5


def test_peak_barely_above_baseline_fails() -> None:
    report = run(make(device={"baseline_bytes": gibs(10.0), "peak_bytes": gibs(12.0)}))
    [finding] = only(report, "peak_vs_baseline")
    assert "12.00 GiB" in finding.message and "10.00 GiB" in finding.message and "20.0%" in finding.message
    assert "threshold 0.4" in finding.message
    assert finding.values["increase_share"] == pytest.approx(0.2)


def test_peak_well_above_baseline_passes_even_from_zero() -> None:
    for base, peak in ((0.0, 70.0), (0.5, 71.0), (10.0, 14.5)):
        report = run(make(device={"baseline_bytes": gibs(base), "peak_bytes": gibs(peak)}))
        assert "peak_vs_baseline" in report.applied
        assert not only(report, "peak_vs_baseline"), (base, peak)


def test_peak_a_few_bytes_above_a_zero_baseline_fails() -> None:
    report = run(make(device={"baseline_bytes": [0], "peak_bytes": [4096]}))
    assert only(report, "peak_vs_baseline")


def test_peak_vs_baseline_per_gpu() -> None:
    profile = make(hardware={"gpu_count": 2}, engine={"tensor_parallel_size": 2},
                   device={"baseline_bytes": gibs(0.5, 0.5), "peak_bytes": gibs(70.0, 0.5)})
    [finding] = only(run(profile), "peak_vs_baseline")
    assert "GPU 1" in finding.message and finding.values["gpus"] == "1"


# -- tp_imbalance -------------------------------------------------------------------------------------------------


def test_tp_imbalance_from_device_peaks_warns() -> None:
    profile = make(hardware={"gpu_count": 2}, engine={"tensor_parallel_size": 2},
                   device={"baseline_bytes": gibs(0.4, 0.4), "peak_bytes": gibs(70.0, 60.0)})
    report = run(profile)
    [finding] = only(report, "tp_imbalance")
    assert finding.severity == "warn" and not report.failed
    assert "60.00 GiB" in finding.message and "70.00 GiB" in finding.message
    assert "15.4%" in finding.message and "threshold 10.0%" in finding.message
    assert finding.values["spread"] == pytest.approx(10 / 65)


def test_tp_balanced_passes() -> None:
    profile = make(hardware={"gpu_count": 4}, engine={"tensor_parallel_size": 4},
                   device={"peak_bytes": gibs(70.0, 69.0, 70.5, 69.5)})
    report = run(profile)
    assert "tp_imbalance" in report.applied and not only(report, "tp_imbalance")


def test_tp_imbalance_from_per_gpu_components() -> None:
    profile = make(hardware={"gpu_count": 2}, engine={"tensor_parallel_size": 2},
                   components={"weights": comp(8.0, per_gpu=[8.0, 6.0])})
    [finding] = only(run(profile), "tp_imbalance")
    assert finding.values["series"] == "weights"
    balanced = make(hardware={"gpu_count": 2}, engine={"tensor_parallel_size": 2},
                    components={"weights": comp(8.0, per_gpu=[8.0, 8.0])})
    assert not only(run(balanced), "tp_imbalance")


def test_tp_imbalance_compares_within_tensor_parallel_groups() -> None:
    # TP 2 x PP 2: pipeline stages differ (embeddings, lm_head) but each stage's TP pair matches
    profile = make(hardware={"gpu_count": 4}, engine={"tensor_parallel_size": 2, "pipeline_parallel_size": 2},
                   device={"peak_bytes": gibs(70.0, 70.0, 50.0, 50.0)})
    report = run(profile)
    assert "tp_imbalance" in report.applied and not only(report, "tp_imbalance")


def test_tp_imbalance_needs_two_values() -> None:
    report = run(make(device={"peak_bytes": gibs(70.0)}))
    assert "tp_imbalance" in report.not_applicable
    pipeline_only = make(hardware={"gpu_count": 2}, engine={"pipeline_parallel_size": 2},
                         device={"peak_bytes": gibs(70.0, 50.0)})
    assert "pipeline" in run(pipeline_only).not_applicable["tp_imbalance"]


# -- components_sum -----------------------------------------------------------------------------------------------


def test_components_not_adding_up_warns() -> None:
    profile = make(components={"weights": comp(10.0), "kv_cache": comp(5.0), "total": comp(20.0)})
    [finding] = only(run(profile), "components_sum")
    assert finding.severity == "warn"
    assert "15.00 GiB" in finding.message and "20.00 GiB" in finding.message
    assert "25.0%" in finding.message and "threshold 20.0%" in finding.message
    assert "activations" in finding.values["missing"]  # the breakdown is incomplete: say which parts are absent


def test_components_summing_above_total_warns() -> None:
    profile = make(components={"weights": comp(20.0), "kv_cache": comp(20.0), "total": comp(30.0)})
    [finding] = only(run(profile), "components_sum")
    assert "counted twice" in finding.message


def test_components_adding_up_pass() -> None:
    profile = make(components={"weights": comp(10.0), "kv_cache": comp(8.0), "activations": comp(1.0),
                               "non_torch": comp(0.5), "total": comp(20.0)})
    report = run(profile)
    assert "components_sum" in report.applied and not only(report, "components_sum")


def test_components_sum_needs_a_total() -> None:
    assert "total" in run(load(LLAMA3_8B)).not_applicable["components_sum"]


def test_derived_components_are_checked_and_named_derived() -> None:
    profile = make(components={"weights": comp(10.0), "activations": comp(1.0, provenance="derived"),
                               "total": comp(20.0)})
    [finding] = only(run(profile), "components_sum")
    assert "(derived)" in finding.message


# -- vllm_budget_identity -----------------------------------------------------------------------------------------


def test_vllm_10511_budget_identity_holds() -> None:
    # 0.9 x 79.22 = 71.30 GiB = 14.96 + 1.79 + 1.26 + 53.29
    report = run(load(LLAMA3_8B))
    assert "vllm_budget_identity" in report.applied
    assert not report.findings and not report.failed


def _llama_with(**changes: Any) -> Profile:
    data = copy.deepcopy(load(LLAMA3_8B).model_dump(mode="json"))
    data["synthetic"] = True
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return Profile.model_validate(data)


def test_budget_identity_broken_fails() -> None:
    profile = _llama_with(measurements__components__kv_cache=comp(40.0))  # 13.3 GiB short
    report = run(profile)
    [finding] = only(report, "vllm_budget_identity")
    assert finding.severity == "fail" and report.failed
    for text in ("14.96 GiB", "1.26 GiB", "1.79 GiB", "40.00 GiB", "58.01 GiB", "71.30 GiB", "0.9 x 79.22 GiB",
                 "threshold 2.0%", "18.6%"):
        assert text in finding.message, text
    assert finding.values["budget_gib"] == pytest.approx(71.298, abs=1e-3)
    assert finding.values["threshold"] == 0.02


def test_budget_identity_accepts_cuda_graphs_inside_the_budget() -> None:
    # vLLM >= 0.21 charges the CUDA graph estimate inside the budget: KV is smaller by that amount
    kv = 53.29 - 2.0
    short = _llama_with(measurements__components__kv_cache=comp(kv))
    assert only(run(short), "vllm_budget_identity")
    with_graphs = _llama_with(measurements__components__kv_cache=comp(kv),
                              measurements__components__cuda_graphs=comp(2.0), engine__version="0.21.0")
    assert not only(run(with_graphs), "vllm_budget_identity")
    # one identity with the calculator's engine model (calculator.engines): before v0.21 the graphs are outside the
    # budget, and a profile that does not say its version passes either way
    assert only(run(_llama_with(measurements__components__kv_cache=comp(kv),
                                measurements__components__cuda_graphs=comp(2.0), engine__version="0.11.0")),
                "vllm_budget_identity")
    assert not only(run(_llama_with(measurements__components__kv_cache=comp(kv),
                                    measurements__components__cuda_graphs=comp(2.0), engine__version=None)),
                    "vllm_budget_identity")


def test_budget_identity_applies_to_vllm_with_its_inputs_only() -> None:
    assert "vLLM only" in run(_llama_with(engine__name="sglang")).not_applicable["vllm_budget_identity"]
    assert "gpu_memory_utilization" in run(
        _llama_with(engine__gpu_memory_utilization=None)).not_applicable["vllm_budget_identity"]
    partial = make(engine={"gpu_memory_utilization": 0.9}, hardware={"memory_per_gpu_bytes": 80 * GiB},
                   components={"weights": comp(15.0), "kv_cache": comp(50.0)})
    assert "activations" in run(partial).not_applicable["vllm_budget_identity"]


def test_budget_identity_per_gpu() -> None:
    profile = make(hardware={"gpu_count": 2, "memory_per_gpu_bytes": 80 * GiB},
                   engine={"tensor_parallel_size": 2, "gpu_memory_utilization": 0.9},
                   components={"weights": comp(30.0), "activations": comp(2.0), "non_torch": comp(1.0),
                               "kv_cache": comp(39.0, per_gpu=[39.0, 30.0])})
    [finding] = only(run(profile), "vllm_budget_identity")
    assert "GPU 1" in finding.message and finding.values["gpu"] == 1.0


# -- impossible_values --------------------------------------------------------------------------------------------


def test_weights_above_device_peak_fails() -> None:
    profile = make(components={"weights": comp(20.0)}, device={"baseline_bytes": gibs(0.5), "peak_bytes": gibs(15.0)})
    report = run(profile)
    [finding] = only(report, "impossible_values")
    assert finding.severity == "fail" and report.failed
    assert "20.00 GiB" in finding.message and "15.00 GiB" in finding.message and "device peak" in finding.message


def test_weights_above_total_fails() -> None:
    profile = make(components={"weights": comp(20.0, provenance="derived"), "total": comp(15.0)})
    [finding] = only(run(profile), "impossible_values")
    assert "total 15.00 GiB" in finding.message and "(derived)" in finding.message


def test_negative_kv_cache_fails() -> None:
    profile = make(components={"weights": comp(70.0), "kv_cache": comp(-1.25)})
    [finding] = only(run(profile), "impossible_values")
    assert "-1.25 GiB" in finding.message and "could not start" in finding.message
    assert finding.values["kv_cache_gib"] == -1.25


def test_possible_values_pass() -> None:
    profile = make(components={"weights": comp(14.0), "kv_cache": comp(50.0), "total": comp(70.0)},
                   device={"baseline_bytes": gibs(0.5), "peak_bytes": gibs(71.0)})
    report = run(profile)
    assert "impossible_values" in report.applied and not only(report, "impossible_values")
    assert "impossible_values" in run(make()).not_applicable


# -- weights_vs_parameters ----------------------------------------------------------------------------------------


def test_weights_match_parameters() -> None:
    report = run(load(LLAMA3_8B), num_parameters=LLAMA3_8B_PARAMS)  # 8.03 B x 2 bytes = 14.96 GiB
    assert "weights_vs_parameters" in report.applied and not report.findings


def test_weights_vs_parameters_needs_a_parameter_count() -> None:
    assert "num_parameters" in run(load(LLAMA3_8B)).not_applicable["weights_vs_parameters"]


def test_declared_quantization_not_applied_warns() -> None:
    profile = _llama_with(model__quantization={"method": "awq", "bits": 4, "group_size": 128})
    report = run(profile, num_parameters=LLAMA3_8B_PARAMS)
    [finding] = only(report, "weights_vs_parameters")
    assert finding.severity == "warn"
    assert "quantization may not be applied" in finding.message
    assert "14.96 GiB" in finding.message and "3.89 GiB" in finding.message and "threshold +/-25.0%" in finding.message
    assert finding.values["ratio"] == pytest.approx(2 / 0.51953125, rel=1e-3)


def test_wrong_parameter_count_warns() -> None:
    report = run(load(LLAMA3_8B), num_parameters=4_000_000_000)
    [finding] = only(report, "weights_vs_parameters")
    assert "parameter count or dtype may be wrong" in finding.message
    assert "quantization" not in finding.message


def test_profile_parameter_count_wins_and_ranks_divide() -> None:
    profile = make(hardware={"gpu_count": 4}, engine={"tensor_parallel_size": 4},
                   model={"num_parameters": 32_000_000_000, "dtype": "bfloat16"},
                   components={"weights": comp(32e9 * 2 / 4 / GiB)})
    assert not only(run(profile, num_parameters=1_000_000), "weights_vs_parameters")


def test_float32_dtype_counts_four_bytes() -> None:
    profile = make(model={"num_parameters": 125_000_000, "dtype": "float32"}, components={"weights": comp(0.47)})
    assert not only(run(profile), "weights_vs_parameters")


def test_bytes_per_parameter_table() -> None:
    assert bytes_per_parameter(None, None) == 2
    assert bytes_per_parameter(None, "bfloat16") == 2
    assert bytes_per_parameter(None, "float32") == 4
    assert bytes_per_parameter(Quantization(method="fp8"), None) == 1
    assert bytes_per_parameter(Quantization(method="awq", bits=4, group_size=128), None) == pytest.approx(0.5195, 1e-3)
    assert bytes_per_parameter(Quantization(method="mxfp4"), None) == 0.53125
    assert bytes_per_parameter(Quantization(method="nvfp4"), None) == 0.5625
    assert 0.5 < bytes_per_parameter(Quantization(method="auto-round"), None) < 0.57  # type: ignore[operator]
    assert bytes_per_parameter(Quantization(method="compressed-tensors"), None) is None


# -- contaminated_baseline ----------------------------------------------------------------------------------------


def test_contaminated_baseline_warns() -> None:
    profile = make(hardware={"gpu_count": 2}, engine={"tensor_parallel_size": 2},
                   device={"baseline_bytes": gibs(0.4, 3.5), "peak_bytes": gibs(70.0, 73.0)})
    [finding] = only(run(profile), "contaminated_baseline")
    assert finding.severity == "warn"
    assert "3.50 GiB" in finding.message and "threshold 2 GiB" in finding.message
    assert "another process" in finding.message and "GPU 1" in finding.message


def test_clean_baseline_passes() -> None:
    report = run(make(device={"baseline_bytes": gibs(0.5), "peak_bytes": gibs(70.0)}))
    assert "contaminated_baseline" in report.applied and not report.findings
    assert "contaminated_baseline" in run(make()).not_applicable


# -- confidence ---------------------------------------------------------------------------------------------------


def test_low_confidence_components_listed() -> None:
    profile = make(components={"weights": comp(15.0), "kv_cache": comp(50.0, confidence="low"),
                               "activations": comp(1.0, provenance="derived", confidence="medium")})
    [finding] = only(run(profile), "confidence")
    assert finding.severity == "warn"
    assert "kv_cache (low)" in finding.message and "activations (medium, derived)" in finding.message
    assert "weights" not in finding.message and "threshold level 2" in finding.message
    assert finding.values["components"] == "kv_cache,activations" and finding.values["lowest_level"] == 0.0


def test_confidence_threshold_is_a_level() -> None:
    profile = make(components={"kv_cache": comp(50.0, confidence="medium")})
    assert not only(run(profile, confidence=CheckConfig(severity="warn", threshold=1)), "confidence")
    assert only(run(profile), "confidence")
    assert not only(run(load(LLAMA3_8B)), "confidence")
    assert "confidence" in run(make()).not_applicable


# -- configuration ------------------------------------------------------------------------------------------------

BAD = {"components": {"weights": comp(20.0, confidence="low"), "kv_cache": comp(-1.0), "total": comp(15.0)},
       "device": {"baseline_bytes": gibs(3.0), "peak_bytes": gibs(3.0)}}


def test_severity_off_skips_the_check() -> None:
    config = {name: CheckConfig(severity="off", threshold=c.threshold) for name, c in INTEGRITY_DEFAULTS.items()}
    report = check_profile(make(**BAD), config)
    assert report.findings == () and report.applied == () and not report.failed
    assert set(report.off) == set(INTEGRITY_DEFAULTS)


def test_severity_comes_from_the_config() -> None:
    warn_all = {name: CheckConfig(severity="warn", threshold=c.threshold) for name, c in INTEGRITY_DEFAULTS.items()}
    report = check_profile(make(**BAD), warn_all)
    assert report.findings and all(f.severity == "warn" for f in report.findings) and not report.failed
    fail_all = {name: CheckConfig(severity="fail", threshold=c.threshold) for name, c in INTEGRITY_DEFAULTS.items()}
    report = check_profile(make(**BAD), fail_all)
    assert report.findings and all(f.severity == "fail" for f in report.findings) and report.failed
    checks = {f.check for f in report.findings}
    assert {"peak_vs_baseline", "impossible_values", "contaminated_baseline", "confidence"} <= checks


def test_threshold_comes_from_the_config() -> None:
    profile = make(device={"baseline_bytes": gibs(3.0), "peak_bytes": gibs(70.0)})
    assert only(run(profile), "contaminated_baseline")
    relaxed = run(profile, contaminated_baseline=CheckConfig(severity="warn", threshold=5.0))
    assert not only(relaxed, "contaminated_baseline")


def test_missing_config_entries_use_the_defaults() -> None:
    report = check_profile(make(**BAD), {})
    assert {f.check: f.severity for f in report.findings}["impossible_values"] == "fail"


def test_report_partitions_the_checks() -> None:
    report = run(load(LLAMA3_8B), tp_imbalance=CheckConfig(severity="off"))
    assert sorted([*report.applied, *report.not_applicable, *report.off]) == sorted(INTEGRITY_DEFAULTS)
    assert report.off == ("tp_imbalance",)


def test_finding_values_are_plain_builtins() -> None:
    report = run(make(**BAD), num_parameters=1_000_000)
    assert report.findings
    for finding in report.findings:
        assert all(type(v) in (float, str) for v in finding.values.values()), finding.values
        assert finding.values.get("threshold") == INTEGRITY_DEFAULTS[finding.check].threshold
    assert pickle.loads(pickle.dumps(report)) == report


# -- every committed profile --------------------------------------------------------------------------------------

COMMITTED = sorted(PROFILES.rglob("*.json"))


def test_there_are_committed_profiles() -> None:
    assert len(COMMITTED) >= 30


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_profile_has_no_failing_finding(path: Path) -> None:
    report = check_profile(load(path), INTEGRITY_DEFAULTS)
    assert not report.failed, [f.message for f in report.findings if f.severity == "fail"]
