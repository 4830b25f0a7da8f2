"""Mllama (Llama-3.2-11B-Vision): read precisely, estimated as vLLM V0 allocated it, refused from vLLM 0.11 on.

Real data: the shared config ``meta-llama--Llama-3.2-11B-Vision-Instruct.json`` (through the catalog) and the vLLM V0
log of vllm issue #12126 (``profiles/vllm-issue-threads/vllm-12126--llama-3.2-11b-vision.json``: dummy bf16
weights, 19.86 GiB logged; 6001 GPU blocks of 16 tokens in 14.65 GiB). Configs built below from the shared one are
synthetic edge cases and say so.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pytest_llmsizer.api import validate_profile
from pytest_llmsizer.calculator import estimate
from pytest_llmsizer.calculator.params import Sharding, stage_inventory, total_parameters
from pytest_llmsizer.calculator.resolve import request_from_options
from pytest_llmsizer.catalog.hf_config import arch_from_hf_config
from pytest_llmsizer.catalog.models import resolve_model
from pytest_llmsizer.errors import CatalogError
from tests.test_cli_estimate import run

MODEL = "meta-llama/Llama-3.2-11B-Vision-Instruct"
REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "vllm-issue-threads" / "vllm-12126--llama-3.2-11b-vision.json"
SHARED_CONFIG = REPO.parent / "shared" / "data" / "model-configs" / "meta-llama--Llama-3.2-11B-Vision-Instruct.json"
VLLM_REFUSAL = ("Model architecture MllamaForConditionalGeneration was supported in vLLM until v0.10.2, and is not "
                "supported anymore. Please use an older version of vLLM if you want to use this model architecture.")
"""vLLM 0.16.0 / 0.17.0 ``_ModelRegistry._raise_for_unsupported`` with ``_PREVIOUSLY_SUPPORTED_MODELS``."""


@pytest.fixture(scope="module")
def arch():
    return resolve_model(MODEL).arch


def test_catalog_reads_the_cross_attention_layout(arch) -> None:
    assert arch.cross_attention is not None
    assert arch.cross_attention.architecture == "MllamaForConditionalGeneration"
    assert arch.cross_attention.layers == (3, 8, 13, 18, 23, 28, 33, 38)
    assert arch.cross_attention.encoder_tokens_per_image == 4 * 1601  # architectures.md 3: max 6,404 per image
    # V0's CacheEngine gives every one of the 40 decoder layers the same pages: the cross layers count as full
    assert arch.layer_attention == ("full",) * 40
    assert arch.extra_embedding_rows == 8  # the checkpoint's embed_tokens is [128264, 4096] (the config's notes)
    assert arch.unexplained_config_keys == ()


def test_weights_match_the_v0_log_of_issue_12126_and_the_kv_bytes_per_token_its_blocks() -> None:
    rows = {row["quantity"]: row for row in validate_profile(PROFILE).to_json()["comparison"]}
    assert abs(rows["weights"]["percent"]) < 0.5  # 19.86 GiB logged (dummy bf16 weights, vision tower included)
    # 6001 blocks x 16 tokens in 14.65 GiB: 40 layers x 8 KV heads x 128 x 2 x 2 B per token, as calculated
    calc_per_token = rows["kv_cache"]["calculated"] / rows["kv_cache_tokens"]["calculated"]
    logged_per_token = rows["kv_cache"]["profiled"] / rows["kv_cache_tokens"]["profiled"]
    assert calc_per_token == pytest.approx(40 * 8 * 128 * 2 * 2, rel=1e-3)
    assert logged_per_token == pytest.approx(calc_per_token, rel=5e-3)


def test_inventory_sides_with_the_logged_weights_not_the_cards_rounded_total(arch) -> None:
    """The config's notes quote the model card's "11B (10.6B)"; the only measurement, the issue-12126 log (19.86 GiB
    of dummy bf16 weights, +-0.005 GiB), is 0.58% above 10.6e9 x 2 B, beyond the card's rounding: the card figure is
    not what vLLM loads. The inventory (10,670,220,835) is 0.08% above the log (0.23% with vLLM's rotary cache)."""
    logged = json.loads(PROFILE.read_text())["measurements"]["components"]["weights"]["bytes"]
    total = total_parameters(arch)
    assert total == 10_670_220_835
    assert abs(2 * total - logged) / logged < 0.001
    assert (logged - 2 * 10.6e9) / logged > 0.005  # the card's 10.6B (rounding 0.05B) cannot be the loaded count


def test_vision_tower_linears_split_over_tp_but_its_embedding_tables_stay_whole(arch) -> None:
    one = stage_inventory(arch, range(40), first=True, last=True, sh=Sharding(tp=1))["vision"]
    two = stage_inventory(arch, range(40), first=True, last=True, sh=Sharding(tp=2))["vision"]
    assert one == arch.vision.num_parameters
    replicated = arch.vision.num_parameters - arch.vision.tp_split_parameters
    assert replicated > 75e6  # the tile position table alone: 9 aspect-ratio ids x 4 tiles x 1601 x 1280
    assert two == pytest.approx(replicated + arch.vision.tp_split_parameters / 2)


def test_cross_layers_add_their_norms_and_gates(arch) -> None:
    text_only = arch.model_copy(update={"cross_attention": None})
    assert total_parameters(arch) - total_parameters(text_only) == 8 * (2 * 128 + 2)


def test_v0_estimate_fits_with_v0_defaults() -> None:
    request = request_from_options(MODEL, gpu="H100", engine_version="0.10.2", max_model_len=65536)
    result = estimate(request)
    assert result.fits, result.problems
    assert result.inputs["max_num_batched_tokens"] == 65536  # V0: max(max_model_len, 2048), chunked prefill off
    assert result.inputs["max_num_seqs"] == 256
    assert any("V0 engine" in a for a in result.assumptions)


def test_too_long_a_context_is_refused_in_v0s_words_even_on_0_10() -> None:
    result = estimate(request_from_options(MODEL, gpu="L40S", engine_version="0.10.2"))  # 131072 by default
    (reason,) = result.problems
    assert reason == (f"The model's max seq len (131072) is larger than the maximum number of tokens that can be "
                      f"stored in KV cache ({result.kv_cache_tokens}). Try increasing `gpu_memory_utilization` or "
                      "decreasing `max_model_len` when initializing the engine.")
    assert 0 < result.kv_cache_tokens < 131072


def test_cli_estimate_exit_codes_on_both_sides_of_the_removal() -> None:
    ok = run("estimate", MODEL, "--gpu", "H100", "--engine-version", "0.10.2", "--max-model-len", "65536", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["fits"] is True

    refused = run("estimate", MODEL, "--gpu", "H100", "--engine-version", "0.11.0", "--max-model-len", "65536",
                  "--json")
    assert refused.returncode == 1, refused.stderr
    out = json.loads(refused.stdout)
    assert out["fits"] is False
    assert out["reasons"][0] == VLLM_REFUSAL

    text = run("estimate", MODEL, "--gpu", "H100")  # no version: the default (0.11) is assumed and said
    assert text.returncode == 1
    assert VLLM_REFUSAL in text.stdout and "assumed 0.11" in text.stdout


def test_pipeline_parallel_is_refused_as_v0_refused_it() -> None:
    result = estimate(request_from_options(MODEL, gpu="H100", engine_version="0.7.0", max_model_len=8192,
                                           pipeline_parallel_size=2))
    assert result.problems == ["Pipeline parallelism is not supported for this model. Supported models implement "
                               "the `SupportsPP` interface."]
    assert estimate(request_from_options(MODEL, gpu="H100", engine_version="0.7.0", max_model_len=8192,
                                         tensor_parallel_size=2)).fits


def _shared_config() -> dict:
    if not SHARED_CONFIG.is_file():
        pytest.skip("../shared/data not beside the checkout")
    return json.loads(SHARED_CONFIG.read_text())


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("text_config", "cross_attention_layers"), [3, 40], "text_config.cross_attention_layers must list distinct"),
    (("text_config", "cross_attention_layers"), [3, 3], "text_config.cross_attention_layers must list distinct"),
    (("vision_config", "max_num_tiles"), None, "vision_config.max_num_tiles must be a positive integer"),
    (("vision_config", "supported_aspect_ratios"), [], "vision_config.supported_aspect_ratios must be a non-empty"),
    (("vision_config", "vision_output_dim"), None, "vision_config needs vision_output_dim"),
])
def test_a_broken_mllama_config_is_refused_naming_the_key(path, value, expected) -> None:
    config = copy.deepcopy(_shared_config())  # synthetic edge case: the shared config with one key broken
    config[path[0]][path[1]] = value
    with pytest.raises(CatalogError, match=expected):
        arch_from_hf_config(config, "synthetic/broken-mllama")


def test_cross_attention_without_a_vision_tower_is_refused() -> None:
    config = copy.deepcopy(_shared_config())  # synthetic edge case
    del config["vision_config"]
    with pytest.raises(CatalogError, match="cross_attention_layers but no vision_config"):
        arch_from_hf_config(config, "synthetic/no-vision")


@pytest.mark.parametrize(("extra", "what_vllm_does"), [
    ({"hidden_size_per_layer_input": 256, "vocab_size_per_layer_input": 262144}, "embed_tokens_per_layer"),
    ({"num_kv_shared_layers": 10}, "no KV cache of their own"),
    ({"use_double_wide_mlp": True}, "2 x intermediate_size wide"),
    ({"word_embed_proj_dim": 512}, "project_in / project_out"),
])
def test_the_remaining_refusals_say_what_vllm_does_that_is_not_priced(extra, what_vllm_does) -> None:
    synthetic = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 2,  # synthetic edge case
                 "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 1024, **extra}
    with pytest.raises(CatalogError, match=what_vllm_does):
        arch_from_hf_config(synthetic, "synthetic/unpriced-feature")
