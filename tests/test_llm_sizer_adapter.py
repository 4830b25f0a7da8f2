"""The LLM Sizer adapter's mapping (profile -> its inputs) and unit conversion (its whole-deployment GB -> our
per-GPU bytes). Pure: no Node needed. Real data: the committed profiles, and LLM Sizer's own catalog read from the
shared copy at run time (never copied into the project); the few hand-written catalog entries and profiles below
are synthetic edge cases and say so."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_llmsizer.adapters.llm_sizer_catalog import Decline, catalog_from_json, match_gpu, match_model
from pytest_llmsizer.adapters.llm_sizer_mapping import (
    DEFAULT_SEQ_LENGTH,
    Plan,
    SizerInputs,
    answer_from,
    kv_quantization,
    per_gpu_bytes,
    plan_for,
    weight_quantization,
)

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles" / "vllm-issue-threads"
SHARED_COPY = REPO.parent / "shared" / "third_party" / "llm-sizer"


@pytest.fixture(scope="module")
def catalog():
    """LLM Sizer's real catalog, read from the shared copy (present beside the checkout, as in CI)."""
    data = SHARED_COPY / "src" / "data"
    if not data.is_dir():
        pytest.skip(f"{data} is missing: the shared third-party copy of LLM Sizer is not beside the checkout")
    return catalog_from_json(json.loads((data / "models.json").read_text()),
                             json.loads((data / "gpus.json").read_text()), source="src/data")


def request_for(name: str) -> dict[str, Any]:
    """A protocol request for a committed profile (the adapter reads the profile; inputs are optional)."""
    return {"protocol": "llmsizer-calculator/1", "profile": json.loads((PROFILES / name).read_text()),
            "inputs": None}


# -- catalog ------------------------------------------------------------------------------------------------------


def test_the_real_catalog_is_read(catalog):
    assert len(catalog.models) == 108 and len(catalog.gpus) == 42  # origin notes 4.1 and 4.2
    internvl = next(m for m in catalog.models if m.id == "internvl3-8b")
    assert internvl.multimodal and internvl.parameters_billions == 8
    assert next(g for g in catalog.gpus if g.id == "h200").vram_gb == 141


@pytest.mark.parametrize(("models", "gpus", "message"), [
    ([], {"gpus": []}, "models.json: expected an object with a 'models' array"),
    ({"models": [{"id": "x"}]}, {"gpus": []}, "models.json: models[0].parameters_billions: expected"),
    ({"models": [{"id": "x", "parameters_billions": True}]}, {"gpus": []}, "models[0].parameters_billions"),
    ({"models": []}, {"gpus": [{"id": "g", "name": "G"}]}, "gpus.json: gpus[0].vram_gb: expected"),
    ({"models": ["x"]}, {"gpus": []}, "models.json: models[0]: expected an object"),
])
def test_a_malformed_catalog_names_the_json_path(models, gpus, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        catalog_from_json(models, gpus, source="src/data")


# -- model --------------------------------------------------------------------------------------------------------


def test_models_are_matched_by_name_and_the_mapping_is_said(catalog):
    model, how = match_model("meta-llama/Llama-3.1-8B-Instruct", catalog, quantized=False)
    assert model.id == "Llama-3.1-8B-Instruct" and how == "by Hugging Face id meta-llama/Llama-3.1-8B-Instruct"
    model, how = match_model("QWEN/qwen3-8b", catalog, quantized=False)  # case does not matter
    assert model.id == "qwen3-8b" and how.startswith("by Hugging Face id")
    model, how = match_model("qwen3-30b-a3b", catalog, quantized=False)
    assert model.id == "qwen3-30b-a3b" and how == "by id"
    model, how = match_model("Gensyn/Qwen3-8B", catalog, quantized=False)  # a re-upload under another org
    assert model.id == "qwen3-8b" and how == "by name 'qwen3-8b' (Qwen/Qwen3-8B)"


def test_a_quantized_checkpoint_maps_to_its_base_model_only_with_a_known_quantization(catalog):
    model, how = match_model("Qwen/Qwen2.5-32B-Instruct-AWQ", catalog, quantized=True)
    assert model.id == "Qwen2.5-32B-Instruct"
    assert how == "as the base model 'qwen2.5-32b-instruct' (Qwen/Qwen2.5-32B-Instruct) of a quantized checkpoint"
    model, _ = match_model("RedHatAI/Qwen3-235B-A22B-FP8-dynamic", catalog, quantized=True)  # two tags stripped
    assert model.id == "qwen3-235b-a22b"
    with pytest.raises(Decline, match=r"quantized checkpoint of LLM Sizer's 'Qwen2\.5-32B-Instruct', but the "
                                      "profile does not say its quantization"):
        match_model("Qwen/Qwen2.5-32B-Instruct-AWQ", catalog, quantized=False)


def test_a_catalog_entry_that_is_itself_quantized_is_taken_as_it_is(catalog):
    # LLM Sizer lists some AWQ checkpoints with their packed element count: that is its catalog, and its answer
    model, how = match_model("TheBloke/Mistral-7B-Instruct-v0.2-AWQ", catalog, quantized=True)
    assert model.id == "mistral-7b-instruct-v0-2-awq" and model.parameters_billions < 1.3
    assert how.startswith("by Hugging Face id")


@pytest.mark.parametrize("model_id", ["facebook/opt-125m", "meta-llama/Llama-3.1-405B-Instruct",
                                      "Qwen/Qwen3-30B-A3B-Instruct-2507"])
def test_models_not_in_the_catalog_are_declined_never_matched_by_size(catalog, model_id):
    with pytest.raises(Decline, match=rf"model '{model_id}' not in LLM Sizer's catalog \(src/data/models.json, "
                                      r"108 entries; matched by Hugging Face id, id or name, never by size\)"):
        match_model(model_id, catalog, quantized=False)


def test_an_ambiguous_name_is_declined():
    # synthetic edge case: two entries of one name under different organisations
    catalog = catalog_from_json({"models": [
        {"id": "a", "hf_model_id": "org1/Model-7B", "parameters_billions": 7},
        {"id": "b", "hf_model_id": "org2/Model-7B", "parameters_billions": 7.1}]}, {"gpus": []})
    with pytest.raises(Decline, match="matches several LLM Sizer catalog entries by name 'model-7b': a, b"):
        match_model("org3/Model-7B", catalog, quantized=False)


# -- GPU ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "memory", "gpu_id", "how"), [
    ("NVIDIA GeForce RTX 3090", None, "rtx-3090", "by name"),
    ("NVIDIA GeForce RTX 3090 Ti", None, "rtx-3090-ti", "by name"),
    ("NVIDIA A100-SXM4-80GB", None, "a100-80gb", "by name"),
    ("NVIDIA A100-SXM4-40GB", None, "a100-40gb", "by name"),
    ("NVIDIA A100-PCIE-40GB", 42_298_834_944, "a100-40gb", "by name"),
    ("NVIDIA A100", 42_298_834_944, "a100-40gb", "by model number"),  # 39.4 GiB visible: the 40 GB card
    ("NVIDIA H100 80GB HBM3", None, "h100-sxm", "by model number (also h100-pcie"),
    ("NVIDIA H200", None, "h200", "by name"),
    ("AMD Instinct MI300X", None, "mi300x", "by name"),
    ("NVIDIA L40S", None, "l40s", "by name"),
])
def test_gpu_names_map_to_its_ids(catalog, name, memory, gpu_id, how):
    gpu, said = match_gpu(name, memory, catalog)
    assert gpu.id == gpu_id
    assert said.startswith(f"{name!r} -> {gpu_id} {how}")


@pytest.mark.parametrize("name", ["NVIDIA A10", "NVIDIA H20", "Tesla T4", "NVIDIA GeForce RTX 5090", None])
def test_an_unknown_gpu_is_its_custom_gpu_because_no_memory_figure_depends_on_it(catalog, name):
    gpu, said = match_gpu(name, None, catalog)
    assert gpu.id == "custom"
    assert "its GPU enters no memory figure, only totalVRAM" in said


# -- quantization ---------------------------------------------------------------------------------------------------


def _profile(quant: dict[str, Any] | None = None, dtype: str | None = None, kv: str | None = None) -> dict:
    """Synthetic edge case: only the fields the quantization mapping reads."""
    model: dict[str, Any] = {"id": "x"}
    if quant:
        model["quantization"] = quant
    if dtype:
        model["dtype"] = dtype
    return {"model": model, "engine": {"kv_cache_dtype": kv} if kv else {}}


@pytest.mark.parametrize(("quant", "arch", "expected"), [
    (None, None, "fp16"),
    ({"method": "awq", "bits": 4}, None, "int4"),
    ({"method": "awq"}, None, "int4"),  # AWQ is 4-bit
    ({"method": "mxfp4"}, None, "int4"),
    ({"method": "nvfp4"}, None, "int4"),
    ({"method": "fp8"}, None, "fp8"),
    ({"method": "gptq", "bits": 8}, None, "int8"),
    ({"method": "compressed-tensors", "bits": 8, "detail": "fp8 dynamic"}, None, "fp8"),
    ({"method": "gptq"}, {"quantization": {"method": "gptq", "bits": 4}}, "int4"),  # bits from the checkpoint
    (None, {"quantization": {"method": "fp8", "bits": 8}}, "fp8"),  # the checkpoint's config says fp8
])
def test_weight_quantization(quant, arch, expected):
    assert weight_quantization(_profile(quant), arch)[0] == expected


@pytest.mark.parametrize(("profile", "message"), [
    (_profile({"method": "auto-round"}), "quantization 'auto-round' with no bit width"),
    (_profile({"method": "gptq", "bits": 3}), "gptq 3-bit weights: LLM Sizer knows 16, 8 and 4 bits only"),
    (_profile(dtype="float32"),
     r"float32 weights: LLM Sizer's weight options are fp16, fp8, int8 and int4 \(no fp32\)"),
])
def test_weights_it_has_no_option_for_are_declined(profile, message):
    with pytest.raises(Decline, match=message):
        weight_quantization(profile, None)


@pytest.mark.parametrize(("kv", "expected"), [(None, "fp16_bf16"), ("auto", "fp16_bf16"), ("bfloat16", "fp16_bf16"),
                                              ("fp8", "fp8_bf16"), ("fp8_e5m2", "fp8_bf16"),
                                              ("fp8 (fp8_ds_mla)", "fp8_bf16"), ("int8", "int8"), ("fp4", None)])
def test_kv_quantization(kv, expected):
    assert kv_quantization(_profile(kv=kv)) == expected


# -- the plan, on committed profiles ------------------------------------------------------------------------------


def test_an_engine_log_profile_is_compared_on_weights_only(catalog):
    plan = plan_for(request_for("vllm-10511--meta-llama-3-8b.json"), catalog)
    # no workload and no max_model_len in this log: batch 1 x LLM Sizer's default length; only weights returned
    assert plan.inputs == SizerInputs("Meta-Llama-3-8B", "custom", 1, "fp16", "fp16_bf16", 1, DEFAULT_SEQ_LENGTH)
    assert plan.returned == ("weights",)
    assert plan.num_parameters == 8_000_000_000
    text = "\n".join(plan.assumptions)
    assert "model 'meta-llama/Meta-Llama-3-8B' -> LLM Sizer 'Meta-Llama-3-8B' by Hugging Face id" in text
    assert "only weights compared: vllm preallocates its KV pool from gpu_memory_utilization" in text
    assert "divided by 1 for per-GPU bytes" in text


def test_gpu_count_is_tp_times_pp(catalog):
    plan = plan_for(request_for("vllm-17469--qwen3-30b-a3b.json"), catalog)  # TP 4 on A10s
    assert (plan.inputs.model, plan.inputs.gpus, plan.inputs.gpu) == ("qwen3-30b-a3b", 4, "custom")
    request = request_for("vllm-17469--qwen3-30b-a3b.json")
    request["profile"]["engine"] |= {"tensor_parallel_size": 2, "pipeline_parallel_size": 3,
                                     "data_parallel_size": 5, "max_model_len": 32768}
    plan = plan_for(request, catalog)
    assert plan.inputs.gpus == 6  # a data-parallel replica holds a whole TP x PP copy of the weights
    assert plan.inputs.seq_length == 32768 and plan.inputs.batch_size == 1


def test_quantization_comes_from_the_profile(catalog):
    plan = plan_for(request_for("vllm-33155--gpt-oss-120b.json"), catalog)
    assert (plan.inputs.model, plan.inputs.quant, plan.inputs.gpu) == ("gpt-oss-120b", "int4", "h100-sxm")
    assert any(a.startswith("mxfp4 4-bit weights -> LLM Sizer int4") for a in plan.assumptions)
    plan = plan_for(request_for("vllm-10360--qwen2.5-32b-instruct-awq.json"), catalog)
    assert (plan.inputs.model, plan.inputs.quant, plan.inputs.gpu) == ("Qwen2.5-32B-Instruct", "int4", "rtx-a6000")


@pytest.mark.parametrize(("name", "message"), [
    ("vllm-4454--opt-125m.json", "model 'facebook/opt-125m' not in LLM Sizer's catalog"),
    # not in the catalog either: the basic reason comes first, before its unmappable quantization
    ("club-3090-104--qwen3.6-27b-autoround.json", "model 'Qwen3.6-27B-AutoRound' not in LLM Sizer's catalog"),
])
def test_unmappable_committed_profiles_are_declined_with_the_reason(catalog, name, message):
    with pytest.raises(Decline, match=message):
        plan_for(request_for(name), catalog)


def test_a_transformers_workload_makes_kv_and_total_comparable(catalog):
    # synthetic edge case: an HF-transformers run (KV grows with the workload), which no committed profile is yet
    request = {"profile": {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"},
                           "hardware": {"gpu_name": "NVIDIA H100 80GB HBM3"},
                           "engine": {"name": "transformers", "tensor_parallel_size": 2, "kv_cache_dtype": "fp8"},
                           "workload": {"batch_size": 8, "input_tokens": 512, "output_tokens": 512}}}
    plan = plan_for(request, catalog)
    assert plan.inputs == SizerInputs("Llama-3.1-8B-Instruct", "h100-sxm", 2, "fp16", "fp8_bf16", 8, 1024)
    assert plan.returned == ("weights", "kv_cache", "total")
    request["profile"]["engine"]["kv_cache_dtype"] = "fp4"
    with pytest.raises(Decline, match="KV cache dtype 'fp4': LLM Sizer knows fp16/bf16, fp8 and int8 only"):
        plan_for(request, catalog)
    del request["profile"]["workload"]  # transformers without a workload: nothing to size KV by
    request["profile"]["engine"]["kv_cache_dtype"] = None
    assert plan_for(request, catalog).returned == ("weights",)


@pytest.mark.parametrize(("engine", "why"), [
    ("vllm", "vllm preallocates its KV pool from gpu_memory_utilization"),
    ("sglang", "sglang preallocates its KV pool from gpu_memory_utilization"),
    ("other", "engine 'other' is not known to size its KV cache by the workload"),
])
def test_a_workload_on_another_engine_does_not_make_kv_comparable(catalog, engine, why):
    request = request_for("vllm-10511--meta-llama-3-8b.json")
    request["profile"]["workload"] = {"batch_size": 8, "input_tokens": 512, "output_tokens": 512}
    request["profile"]["engine"]["name"] = engine
    plan = plan_for(request, catalog)
    assert plan.returned == ("weights",)
    assert f"only weights compared: {why}, so LLM Sizer's batch x sequence KV" in "\n".join(plan.assumptions)


# -- unit conversion -----------------------------------------------------------------------------------------------


def _plan(gpus: int, returned: tuple[str, ...] = ("weights",)) -> Plan:
    return Plan(SizerInputs("m", "g", gpus, "fp16", "fp16_bf16", 1, 4096), returned, 8_030_261_248, ("mapped",))


def test_whole_deployment_gb_become_per_gpu_bytes():
    assert per_gpu_bytes(16.060522496, 1) == 16_060_522_496
    assert per_gpu_bytes(16.060522496, 4) == 4_015_130_624
    assert per_gpu_bytes(60.206168736, 8) == 7_525_771_092  # round(60_206_168_736 / 8)


def test_the_answer_holds_only_the_planned_quantities_per_gpu():
    # LLM Sizer's CalculateResult for Llama-3.1-8B at fp16, N=2 (numbers from its formula in origin notes 2.1)
    result = {"usedVRAM": 20.5, "memoryBreakdown": {"baseWeights": 16.060522496, "kvCache": 1.073741824,
                                                    "activations": 0.117, "frameworkOverhead": 2.86,
                                                    "multiGPUOverhead": 0.16}}
    answer = answer_from(result, _plan(2))
    assert answer["per_gpu_bytes"] == {"weights": 8_030_261_248}
    assert answer["inputs"]["num_parameters"] == 8_030_261_248
    assert answer["inputs"]["llm_sizer_cli"] == ("npx tsx src/cli/index.ts calculate -m m -g g -n 2 --quant fp16 "
                                                 "--kv-quant fp16_bf16 --batch-size 1 --seq-length 4096 --users 1 "
                                                 "-o json")
    answer = answer_from(result, _plan(2, ("weights", "kv_cache", "total")))
    assert answer["per_gpu_bytes"] == {"weights": 8_030_261_248, "kv_cache": 536_870_912, "total": 10_250_000_000}
    assert answer["assumptions"] == ["mapped"]


def test_multimodal_weights_include_its_vision_tower_and_projector():
    result = {"memoryBreakdown": {"baseWeights": 16.0, "visionWeights": 0.608, "projectorWeights": 0.0404}}
    answer = answer_from(result, _plan(1))
    assert answer["per_gpu_bytes"]["weights"] == 16_648_400_000
    assert answer["assumptions"][-1] == \
        "weights = baseWeights + visionWeights + projectorWeights (its multimodal entry)"


@pytest.mark.parametrize("bad", [None, "16", -1.0, math.nan, math.inf, True])
def test_an_unusable_figure_is_an_error_not_a_number(bad):
    with pytest.raises(ValueError, match=r"LLM Sizer answered memoryBreakdown.baseWeights = .*; expected a "
                                         "non-negative number of GB"):
        answer_from({"memoryBreakdown": {"baseWeights": bad}}, _plan(1))
    with pytest.raises(ValueError, match="no memoryBreakdown object"):
        answer_from({"usedVRAM": 1}, _plan(1))
