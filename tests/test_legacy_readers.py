"""Readers of the original LLM Sizer profiler formats: detection, units, provenance, per-GPU values, errors.

Expected byte values are written out as integers (computed once from the fixture's number and the unit its
back-end really used, llm-sizer-origin.md section 1.1), so a wrong GB/GiB choice fails by 7%, not by rounding.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmsizer.errors import ProfileError
from pytest_llmsizer.profile.legacy import LEGACY_READERS, detect_legacy_format
from pytest_llmsizer.profile.legacy.common import CONFIDENCE_LABELS, confidence_of
from pytest_llmsizer.profile.load import load_profile, profile_from_data
from pytest_llmsizer.profile.model import Confidence, Profile, Provenance

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
GiB = 2**30

VALID = {
    "legacy_torch.json": "llmsizer-legacy-torch",
    "legacy_api.json": "llmsizer-legacy-api",
    "bench_v1.json": "llmsizer-bench-v1",
    "v2_rocm_1gpu.json": "llmsizer-v2.0",
    "v2_cuda_tp2.json": "llmsizer-v2.0",
    "v3_rocm_1gpu.json": "llmsizer-v3.0",
    "v3_no_vllm_logs.json": "llmsizer-v3.0",
}


def data(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def read(name: str, mutate: Any = None) -> Profile:
    d = data(name)
    if mutate is not None:
        mutate(d)
    return profile_from_data(d, name)


def problems(name: str, mutate: Any = None) -> dict[str, str]:
    with pytest.raises(ProfileError) as info:
        read(name, mutate)
    return {p.path: p.message for p in info.value.problems}


# -- detection -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fmt"), sorted(VALID.items()))
def test_each_format_is_detected_and_read(name: str, fmt: str) -> None:
    assert detect_legacy_format(data(name)) == fmt
    profile = load_profile(FIXTURES / name)
    assert profile.source.original_format == fmt
    assert profile.source.kind == "llmsizer-profiler"
    assert profile.synthetic is True  # every fixture carries the top-level marker
    assert set(LEGACY_READERS) == set(VALID.values())


def test_v3_is_not_mistaken_for_v2() -> None:
    d = data("v3_rocm_1gpu.json")
    # it has everything the original validator keyed "v2" on ...
    assert "benchmark_parameters" in d and "baseline" in d["memory_measurements"]
    assert detect_legacy_format(d) == "llmsizer-v3.0"
    # ... and stays v3 by its own keys even without any version field
    del d["profiler_version"], d["schema_version"], d["engine_metadata"]
    assert detect_legacy_format(d) == "llmsizer-v3.0"
    for key in ("vllm_internal_metrics", "memory_timeline", "raw_logs", "detailed_gpu_metrics"):
        d.pop(key)
    assert detect_legacy_format(d) == "llmsizer-v3.0"  # kv_cache_allocated_gb / peak_from_timeline remain


def test_bench_v1_has_no_profiler_version() -> None:
    d = data("bench_v1.json")
    assert "profiler_version" not in d
    assert detect_legacy_format(d) == "llmsizer-bench-v1"
    d["profiler_version"] = "1.0"
    assert detect_legacy_format(d) == "unknown"


def test_v2_without_version_fields_is_still_v2() -> None:
    d = data("v2_rocm_1gpu.json")
    del d["profiler_version"], d["schema_version"], d["engine_metadata"]
    assert detect_legacy_format(d) == "llmsizer-v2.0"


def test_api_and_torch_are_told_apart() -> None:
    api, torch = data("legacy_api.json"), data("legacy_torch.json")
    del api["inference_stats"]
    assert detect_legacy_format(api) == "llmsizer-legacy-api"
    del torch["all_measurements"]
    assert detect_legacy_format(torch) == "llmsizer-legacy-torch"


def test_detection_ignores_the_file_name(tmp_path: Path) -> None:
    misleading = tmp_path / "profile_v3.0_legacy_torch_api.json"
    shutil.copy(FIXTURES / "v2_rocm_1gpu.json", misleading)
    assert load_profile(misleading).source.original_format == "llmsizer-v2.0"


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"foo": 1},
        {"memory_breakdown": []},
        {"model_info": "x", "memory_measurements": 3},
        {"profiler_version": 2},
    ],
)
def test_unrecognised_objects_are_unknown_not_a_crash(obj: dict[str, Any]) -> None:
    assert detect_legacy_format(obj) == "unknown"
    with pytest.raises(ProfileError, match="unknown profile format"):
        profile_from_data(obj, "x.json")


# -- units -----------------------------------------------------------------------------------------


def test_nvidia_smi_totals_are_gib() -> None:
    total = read("v2_cuda_tp2.json").measurements.components.total
    assert total is not None
    assert total.unit_read == "GiB"
    assert total.bytes == 77_137_612_636  # 71.84 GiB, the higher of the two ranks
    assert total.per_gpu_bytes == [77_137_612_636, 76_579_266_888]  # 71.84 and 71.32 GiB


def test_rocm_smi_totals_are_decimal_gb() -> None:
    profile = read("v2_rocm_1gpu.json")
    total = profile.measurements.components.total
    assert total is not None and total.unit_read == "GB"
    assert total.bytes == 22_300_000_000
    assert profile.measurements.device is not None
    assert profile.measurements.device.tool == "rocm-smi"
    assert profile.measurements.device.baseline_bytes == [300_000_000]
    assert profile.hardware.memory_per_gpu_bytes is None  # rocm-smi's 206.0 is hard-coded, not a reading


def test_v3_vllm_values_are_gib_and_amd_smi_snapshots_are_gib() -> None:
    profile = read("v3_rocm_1gpu.json")
    c = profile.measurements.components
    assert c.weights is not None and c.kv_cache is not None and c.cuda_graphs is not None
    assert (c.weights.bytes, c.weights.unit_read) == (3_199_750_636, "GiB")  # Model loading took 2.98 GiB
    assert c.kv_cache.bytes == 176_641_267_466  # Available KV cache memory: 164.51 GiB
    assert c.cuda_graphs.bytes == round(0.62 * GiB)
    device = profile.measurements.device
    assert device is not None and device.tool == "amd-smi" and device.unit_read == "GiB"
    assert device.baseline_bytes == [322_122_547]  # 0.3 GiB
    # amd-smi's capacity (196608 MB = 192 GiB) is not the runtime's total: a note, not hardware.memory_per_gpu
    assert profile.hardware.memory_per_gpu_bytes is None
    assert "as amd-smi reports it: 192.0 GiB" in (profile.source.notes or "")
    assert profile.measurements.kv_cache_tokens == 5_390_560


def test_formula_components_are_decimal_gb() -> None:
    c = read("v2_rocm_1gpu.json").measurements.components
    assert c.weights is not None and c.kv_cache is not None
    assert (c.weights.bytes, c.weights.unit_read) == (16_060_000_000, "GB")
    assert c.kv_cache.bytes == 4_290_000_000


def test_torch_allocator_values_are_decimal_gb() -> None:
    profile = read("legacy_torch.json")
    assert profile.measurements.components.total is not None
    assert profile.measurements.components.total.bytes == 7_380_000_000
    assert profile.measurements.device is not None
    assert profile.measurements.device.final_bytes == [6_930_000_000, 6_590_000_000]


def test_unknown_backend_assumes_gb_and_says_so() -> None:
    def unknown(d: dict[str, Any]) -> None:
        d["gpu_info"]["gpu_type"] = "unknown"
        for snap in ("baseline", "post_warmup", "peak"):
            for gpu in d["memory_measurements"][snap]["per_gpu_details"]:
                gpu["total_gb"] = 79.65

    total = read("v2_cuda_tp2.json", unknown).measurements.components.total
    assert total is not None and total.unit_read == "GB" and total.bytes == 71_840_000_000
    assert "unknown" in (total.note or "")
    # rocm-smi's hard-coded 206.0 total identifies the tool even when gpu_type does not
    hint = read("v2_rocm_1gpu.json", lambda d: d["gpu_info"].update(gpu_type="unknown"))
    assert hint.measurements.device is not None and hint.measurements.device.tool == "rocm-smi"


def test_v3_snapshots_through_rocm_smi_fallback_are_gb() -> None:
    def fallback(d: dict[str, Any]) -> None:
        for snap in ("baseline", "final_snapshot"):
            d["memory_measurements"][snap]["per_gpu_details"][0]["total_gb"] = 206.0

    profile = read("v3_rocm_1gpu.json", fallback)
    device = profile.measurements.device
    assert device is not None and device.tool == "rocm-smi"
    assert device.baseline_bytes == [300_000_000]
    assert device.peak_bytes == [187_475_322_470]  # the timeline is still amd-smi: 174.6 GiB
    assert device.unit_read is None  # mixed: no single unit to claim


# -- provenance and confidence ---------------------------------------------------------------------


def test_v3_provenance_follows_vllm_flags_and_labels() -> None:
    c = read("v3_rocm_1gpu.json").measurements.components
    got = {name: (comp.provenance, comp.confidence) for name, comp in c.present().items()}
    assert got == {
        "weights": (Provenance.ENGINE, Confidence.HIGH),
        "kv_cache": (Provenance.ENGINE, Confidence.HIGH),
        "activations": (Provenance.DERIVED, Confidence.LOW),  # estimated_from_residual (0.7 x residual)
        "cuda_graphs": (Provenance.ENGINE, Confidence.HIGH),
        "framework_overhead": (Provenance.DERIVED, Confidence.LOW),  # calculated_residual (0.3 x residual)
        "total": (Provenance.DEVICE, Confidence.HIGH),
    }


def test_v3_without_vllm_log_values_keeps_missing_missing() -> None:
    profile = read("v3_no_vllm_logs.json")
    c = profile.measurements.components
    assert c.cuda_graphs is None  # graph_capture_gb 0.0 means "not found", not 0 bytes
    assert c.weights is not None and c.weights.provenance is Provenance.DERIVED
    assert (c.weights.confidence, c.weights.unit_read) == (Confidence.HIGH, "GB")  # high_from_params
    assert c.kv_cache is not None and c.kv_cache.provenance is Provenance.DERIVED  # formula, not the pool
    assert "not vLLM's pool" in (c.kv_cache.note or "")
    assert profile.measurements.kv_cache_tokens is None
    assert profile.source.log_lines is None


def test_v2_confidence_labels_map_to_ours() -> None:
    c = read("v2_rocm_1gpu.json").measurements.components
    assert c.weights is not None and c.activations is not None and c.framework_overhead is not None
    assert (c.weights.provenance, c.weights.confidence) == (Provenance.DERIVED, Confidence.HIGH)
    assert (c.activations.provenance, c.activations.confidence) == (Provenance.DERIVED, Confidence.MEDIUM)
    overhead = c.framework_overhead
    assert (overhead.provenance, overhead.confidence) == (Provenance.DERIVED, Confidence.LOW)


def test_v2_percentage_fallback_is_derived_low_in_the_total_unit() -> None:
    def no_params(d: dict[str, Any]) -> None:
        d["memory_breakdown"]["confidence_levels"]["weights"] = "low"
        d["memory_breakdown"]["model_weights_gb"] = round(0.65 * 142.12, 2)

    weights = read("v2_cuda_tp2.json", no_params).measurements.components.weights
    assert weights is not None
    assert (weights.provenance, weights.confidence) == (Provenance.DERIVED, Confidence.LOW)
    assert weights.unit_read == "GiB"
    assert weights.bytes == round(92.38 * GiB / 2)  # a fraction of the 2-GPU net increase, split per GPU


def test_api_percentage_guesses_are_derived() -> None:
    c = read("legacy_api.json").measurements.components
    assert c.kv_cache and c.activations and c.weights and c.total
    assert (c.kv_cache.provenance, c.kv_cache.confidence) == (Provenance.DERIVED, Confidence.LOW)
    assert (c.weights.provenance, c.weights.confidence) == (Provenance.DERIVED, Confidence.MEDIUM)  # params
    assert "FP16" in (c.weights.note or "")
    assert c.activations.bytes == 500_000_000 and "fixed" in (c.activations.note or "")
    assert (c.total.provenance, c.total.bytes) == (Provenance.DEVICE, 185_230_000_000)


def test_torch_provenance() -> None:
    c = read("legacy_torch.json").measurements.components
    assert c.weights is not None and c.weights.provenance is Provenance.DEVICE
    assert c.weights.confidence is Confidence.MEDIUM  # device 0 only, of 2
    assert c.kv_cache is not None and c.kv_cache.provenance is Provenance.DERIVED


@pytest.mark.parametrize(("label", "expected"), sorted(CONFIDENCE_LABELS.items()))
def test_confidence_label_table(label: str, expected: Confidence) -> None:
    assert confidence_of(label) is expected


def test_unlisted_confidence_label_is_low() -> None:
    assert confidence_of("adjusted_by_magic") is Confidence.LOW
    assert confidence_of(None, Confidence.MEDIUM) is Confidence.MEDIUM


# -- per GPU versus sums ---------------------------------------------------------------------------


def test_two_gpu_v2_never_puts_a_sum_into_a_per_gpu_field() -> None:
    profile = read("v2_cuda_tp2.json")
    assert (profile.hardware.gpu_count, profile.engine.tensor_parallel_size) == (2, 2)
    capacity = round(79.65 * GiB)  # nvidia-smi memory.total of each GPU in the file
    for name, comp in profile.measurements.components.present().items():
        assert comp.bytes <= capacity, f"{name} holds more than one GPU has"
        assert comp.per_gpu_bytes is None or len(comp.per_gpu_bytes) == 2
    c = profile.measurements.components
    assert c.framework_overhead is not None
    assert c.framework_overhead.bytes == 57_090_852_782  # the 106.34 residual of the 2-GPU sum, halved
    assert "sum over 2 GPUs" in (c.framework_overhead.note or "")
    assert c.weights is not None and c.weights.bytes == 32_760_000_000  # already per GPU (divided by TP)
    device = profile.measurements.device
    assert device is not None
    assert device.baseline_bytes == [round(0.52 * GiB)] * 2
    assert device.peak_bytes == [77_137_612_636, 76_579_266_888]


def test_v2_system_gpus_beyond_tp_are_dropped() -> None:
    def four_gpus(d: dict[str, Any]) -> None:
        for snap in ("baseline", "post_warmup", "peak"):
            details = d["memory_measurements"][snap]["per_gpu_details"]
            details += [
                {"device": 3, "used_gb": 0.5, "total_gb": 79.65},
                {"device": 2, "used_gb": 0.5, "total_gb": 79.65},
            ]
        d["gpu_info"]["system_gpus"] = 4

    profile = read("v2_cuda_tp2.json", four_gpus)
    total = profile.measurements.components.total
    assert total is not None and total.per_gpu_bytes == [77_137_612_636, 76_579_266_888]
    assert "devices 0..1" in (total.note or "")
    assert profile.measurements.device is not None
    assert profile.measurements.device.baseline_bytes == [round(0.52 * GiB)] * 2


def test_v2_without_per_gpu_details_splits_the_sum_and_marks_it_derived() -> None:
    def no_details(d: dict[str, Any]) -> None:
        for snap in ("baseline", "post_warmup", "peak"):
            del d["memory_measurements"][snap]["per_gpu_details"]

    profile = read("v2_cuda_tp2.json", no_details)
    total = profile.measurements.components.total
    assert total is not None
    assert (total.provenance, total.bytes, total.per_gpu_bytes) == (Provenance.DERIVED, 76_858_439_762, None)
    assert "sum over 2 GPUs" in (total.note or "")
    assert profile.measurements.device is None


def test_v3_cuda_timeline_sum_over_all_system_gpus_is_split_and_flagged() -> None:
    def tp2_on_cuda(d: dict[str, Any]) -> None:
        d["gpu_info"].update(gpu_type="cuda", num_gpus=2, system_gpus=4)
        d["benchmark_parameters"]["tensor_parallel_size"] = 2
        d["memory_measurements"]["baseline"]["system_total_gpus"] = 4
        for snap in ("baseline", "final_snapshot"):
            d["memory_measurements"][snap]["per_gpu_details"] = [
                {"device": 0, "used_gb": 0.3, "total_gb": 79.65},
                {"device": 1, "used_gb": 0.3, "total_gb": 79.65},
            ]

    profile = read("v3_rocm_1gpu.json", tp2_on_cuda)
    total = profile.measurements.components.total
    assert total is not None
    assert (total.provenance, total.confidence) == (Provenance.DERIVED, Confidence.LOW)
    assert total.bytes == round(174.6 * GiB / 2)
    assert "all 4 system GPUs" in (total.note or "")
    assert profile.measurements.device is not None and profile.measurements.device.peak_bytes is None


def test_v3_without_timeline_samples_takes_the_final_snapshot_per_gpu() -> None:
    def no_samples(d: dict[str, Any]) -> None:
        d["memory_measurements"]["peak_from_timeline"].update(total_gb=0.31, source="final_snapshot")

    profile = read("v3_rocm_1gpu.json", no_samples)
    total = profile.measurements.components.total
    assert total is not None and total.bytes == round(0.31 * GiB) and total.confidence is Confidence.LOW
    assert profile.measurements.device is not None
    assert profile.measurements.device.peak_bytes == profile.measurements.device.final_bytes


def test_api_whole_system_guesses_are_split_per_gpu() -> None:
    def two_gpus(d: dict[str, Any]) -> None:
        gi = d["gpu_info"]
        gi["num_gpus"] = 2
        for key in ("gpu_memory_baseline", "gpu_memory_final"):
            gi[key].append({**gi[key][0], "device": 1})

    c = read("legacy_api.json", two_gpus).measurements.components
    assert c.kv_cache is not None and c.kv_cache.bytes == 18_520_000_000  # 37.04 GB over 2 GPUs
    assert c.total is not None and c.total.per_gpu_bytes == [185_230_000_000] * 2


# -- context: model, engine, workload, source ------------------------------------------------------


def test_v3_context_and_gpu_memory_utilization() -> None:
    profile = read("v3_rocm_1gpu.json")
    assert profile.model.id == "meta-llama/Llama-3.2-1B-Instruct"
    assert (profile.hardware.vendor, profile.hardware.gpu_name) == ("amd", None)  # never guess the GPU model
    assert profile.engine.version == "0.10.1" and profile.engine.enforce_eager is False
    assert profile.engine.gpu_memory_utilization is None
    assert "never passed --gpu-memory-utilization" in (profile.source.notes or "")
    assert profile.workload is not None and profile.workload.input_tokens == 256
    assert profile.source.reference.endswith("@ 2025-11-03 12:00:00")
    assert any("Available KV cache memory: 164.51 GiB" in line for line in profile.source.log_lines or [])

    def util(d: dict[str, Any]) -> None:
        d["vllm_internal_metrics"]["gpu_memory_utilization"] = 0.9

    stated = read("v3_rocm_1gpu.json", util)
    assert stated.engine.gpu_memory_utilization == 0.9
    assert "never passed" not in (stated.source.notes or "")


def test_torch_context() -> None:
    profile = read("legacy_torch.json")
    assert profile.engine.name == "transformers" and profile.model.dtype == "float16"
    assert profile.workload is not None
    assert (profile.workload.input_tokens, profile.workload.output_tokens) == (14, 100)
    assert profile.hardware.gpu_count == 2


def test_unknown_keys_of_legacy_files_are_ignored() -> None:
    def extra(d: dict[str, Any]) -> None:
        d["memory_breakdown"]["some_future_key_gb"] = "whatever"
        d["brand_new_section"] = {"x": [1, 2]}

    assert read("v2_rocm_1gpu.json", extra).measurements.components.total is not None


# -- errors ----------------------------------------------------------------------------------------


def test_missing_breakdown_is_reported_with_its_path() -> None:
    assert problems("broken_v2_no_breakdown.json") == {"$.memory_breakdown": "missing required key"}


def test_string_where_a_number_belongs() -> None:
    found = problems("broken_v2_string_number.json")
    assert list(found) == ["$.memory_breakdown.model_weights_gb"]
    assert "got a string" in found["$.memory_breakdown.model_weights_gb"]


def test_negative_gb_values() -> None:
    found = problems("broken_api_negative.json")
    assert set(found) == {"$.memory_breakdown.kv_cache_gb", "$.gpu_info.gpu_memory_final[0].used_gb"}
    assert all(">= 0" in message for message in found.values())


def test_v3_null_vllm_values_are_problems_where_the_file_relies_on_them() -> None:
    found = problems("broken_v3_null_vllm_values.json")
    assert found["$.memory_breakdown.model_weights_gb"] == "is null; expected a value"
    assert "$.memory_breakdown.kv_cache_allocated_gb" in found
    assert "no vLLM log value backs it" in found["$.memory_breakdown.vllm_reported_values_used.graph_capture"]


def test_a_broken_file_lists_every_problem_at_once() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(FIXTURES / "broken_v2_many.json")
    paths = [p.path for p in info.value.problems]
    assert paths == [
        "$.model_info.name",
        "$.benchmark_parameters.batch_size",
        "$.memory_measurements.peak.per_gpu_details[1].used_gb",
        "$.memory_breakdown.kv_cache_gb",
        "$.memory_breakdown.activations_gb",
        "$.memory_breakdown.framework_overhead_gb",
    ]
    text = str(info.value)
    assert "broken_v2_many.json: 6 problems" in text and "$.memory_breakdown.kv_cache_gb" in text


@pytest.mark.parametrize("bad", [math.nan, math.inf, True, "1.0", [1.0], {"value": 1.0}, 1e300])
def test_bad_numbers_never_pass(bad: Any) -> None:
    found = problems("v3_rocm_1gpu.json", lambda d: d["memory_breakdown"].update(activations_gb=bad))
    assert list(found) == ["$.memory_breakdown.activations_gb"]


def test_a_native_rule_broken_by_converted_values_is_a_problem_not_a_traceback() -> None:
    found = problems("v2_rocm_1gpu.json", lambda d: d["model_info"].update(name="x" * 301))
    assert any("after conversion to the native format" in m for m in found.values())


# -- robustness: no input may produce anything but a Profile or a ProfileError ---------------------

SKIP_SUBTREES = ("timeline", "detailed_gpu_metrics", "latency_stats", "calculator_comparison", "raw_logs")
BAD_VALUES: list[Any] = [None, "12", -1, 0, True, [], {}, 1e300, 3.5]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in SKIP_SUBTREES:
                yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):
            yield from _paths(value, (*path, i))


def _replaced(root: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(root)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize("name", sorted(VALID))
def test_any_corrupted_value_gives_a_profile_or_a_profile_error(name: str) -> None:
    original = data(name)
    for path in _paths(original):
        for bad in BAD_VALUES:
            try:
                profile_from_data(_replaced(original, path, bad), name)
            except ProfileError as e:
                assert e.problems and all(p.path.startswith("$") for p in e.problems)
        deleted = copy.deepcopy(original)
        node: Any = deleted
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
        with contextlib.suppress(ProfileError):
            profile_from_data(deleted, name)
