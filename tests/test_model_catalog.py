"""The shipped model catalog and model resolution.

The architecture facts below were checked by hand against the model cards / configs (not against our own
parser), because a wrong layer count or KV-head count is exactly the error that makes an estimate useless.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from pytest_llmsizer.catalog.arch import ModelArch
from pytest_llmsizer.catalog.models import (
    QUANT_SUFFIXES,
    VLLM_QUANTIZATION,
    ResolvedModel,
    describe_quantization,
    list_model_ids,
    load_model_catalog,
    resolve_model,
)
from pytest_llmsizer.errors import CatalogError, UnknownModelError

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "model-configs"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_model_catalog.py"

needs_source = pytest.mark.skipif(not SOURCE_DIR.is_dir(), reason=f"{SOURCE_DIR} not present")


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_model_catalog", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def arch(model_id: str) -> ModelArch:
    return load_model_catalog().models[model_id]


# -----------------------------------------------------------------------------------------------------------
# the catalog file


@needs_source
def test_every_source_file_is_in_the_catalog_or_listed_unsupported() -> None:
    catalog = load_model_catalog()
    expected = {p.stem.replace("--", "/", 1) for p in SOURCE_DIR.glob("*.json")}
    known = set(catalog.models) | set(catalog.unsupported)
    assert expected - known == set(), "source files missing from the catalog: rebuild it"
    # the only entries without a source file: names the shared logs use, listed unsupported with a reason
    assert known - expected == set(_build_module().UNSUPPORTED_NAMES), "entries without a source: rebuild it"
    assert not set(catalog.models) & set(catalog.unsupported)


@needs_source
def test_committed_catalog_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--check"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


@needs_source
def test_check_fails_on_a_stale_catalog(tmp_path: Path) -> None:
    stale = tmp_path / "models.json"
    stale.write_text('{"format": "llmsizer-models/1", "models": [], "unsupported": []}\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--check", "--output", str(stale)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1


@needs_source
def test_every_supplement_quotes_its_source_verbatim() -> None:
    build = _build_module()
    configs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SOURCE_DIR.glob("*.json")}
    assert build.verify_quotes(SOURCE_DIR, configs) == []
    for model_id, supplement in build.SUPPLEMENTS.items():
        assert supplement.quotes, model_id
        entry = load_model_catalog().models[model_id]
        assert any(note.startswith("supplemented") for note in entry.notes), model_id


def test_catalog_is_sorted_and_deterministic() -> None:
    path = REPO_ROOT / "pytest_llmsizer" / "catalog" / "data" / "models.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    ids = [m["id"] for m in document["models"]]
    assert ids == sorted(ids)
    assert [u["id"] for u in document["unsupported"]] == sorted(u["id"] for u in document["unsupported"])
    assert document["format"] == "llmsizer-models/1"
    assert list_model_ids() == ids
    assert load_model_catalog() is load_model_catalog()


def test_unsupported_architectures_are_listed_with_a_reason() -> None:
    unsupported = load_model_catalog().unsupported
    # (DeepSeek-V4 was listed here until calculator/deepseek_v4.py modelled its compressed attention.)
    for model_id, word in [
        ("nvidia/Qwen3.6-27B-NVFP4", "modelopt"),
        ("openbmb/MiniCPM3-4B", "vocab_size"),
    ]:
        assert word in unsupported[model_id]


def test_supplemented_entries_say_so() -> None:
    gemma = arch("google/gemma-3-27b-it")
    assert any("supplemented" in note for note in gemma.notes)
    assert gemma.vocab_size == 262208 and gemma.tie_word_embeddings


# -----------------------------------------------------------------------------------------------------------
# hand-checked architecture facts


def test_llama_3_1_8b() -> None:
    a = arch("meta-llama/Llama-3.1-8B")
    assert (a.num_layers, a.num_kv_heads, a.head_dim, a.vocab_size) == (32, 8, 128, 128256)
    assert a.num_attention_heads == 32 and a.hidden_size == 4096 and a.intermediate_size == 14336
    assert not a.tie_word_embeddings
    assert set(a.layer_attention) == {"full"} and set(a.layer_mlp) == {"dense"}


def test_qwen3_0_6b_head_dim_is_not_hidden_over_heads() -> None:
    a = arch("Qwen/Qwen3-0.6B")
    assert a.hidden_size // a.num_attention_heads == 64
    assert a.head_dim == 128
    assert a.tie_word_embeddings and a.num_kv_heads == 8 and a.num_layers == 28


def test_deepseek_r1_mla_and_moe_layout() -> None:
    a = arch("deepseek-ai/DeepSeek-R1")
    assert a.mla is not None and (a.mla.kv_lora_rank, a.mla.qk_rope_head_dim) == (512, 64)
    assert Counter(a.layer_mlp) == {"moe": 58, "dense": 3}
    assert a.layer_mlp[:3] == ("dense", "dense", "dense")
    assert a.moe is not None and a.moe.num_experts == 256 and a.moe.experts_per_token == 8
    assert a.quantization is not None and a.quantization.method == "fp8"
    assert a.quantization.weight_block_size == (128, 128)


def test_gpt_oss_20b_alternates_sliding_and_full_and_keeps_attention_16_bit() -> None:
    a = arch("openai/gpt-oss-20b")
    assert a.num_layers == 24 and a.sliding_window == 128
    assert a.layer_attention == ("sliding", "full") * 12
    assert a.quantization is not None and a.quantization.method == "mxfp4"
    assert "attention" in a.quantization.not_converted
    assert a.moe is not None and a.moe.num_experts == 32 and a.moe.experts_per_token == 4


def test_llama_4_maverick_chunked_attention_and_interleaved_moe() -> None:
    a = arch("meta-llama/Llama-4-Maverick-17B-128E-Instruct")
    assert a.num_layers == 48 and a.attention_chunk_size == 8192
    assert a.layer_attention == tuple("full" if (i + 1) % 4 == 0 else "chunked" for i in range(48))
    assert a.layer_mlp == tuple("moe" if (i + 1) % 2 == 0 else "dense" for i in range(48))
    assert a.moe is not None and a.moe.num_experts == 128 and a.moe.experts_per_token == 1


def test_nemotron_3_nano_hybrid_mamba_layout() -> None:
    a = arch("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")
    kinds = Counter(a.layer_attention)
    assert kinds["mamba"] == 23 and kinds["full"] == 6 and a.num_layers == 52
    assert Counter(a.layer_mlp)["moe"] == 23
    assert a.mamba is not None and a.num_kv_heads == 2 and a.head_dim == 128


def test_qwen3_coder_next_linear_attention_three_of_four() -> None:
    a = arch("Qwen/Qwen3-Coder-Next")
    assert a.layer_attention == tuple("full" if (i + 1) % 4 == 0 else "linear" for i in range(48))
    assert a.linear_attention is not None and a.linear_attention.num_value_heads == 32
    assert a.moe is not None and a.moe.num_experts == 512


def test_gemma_3_27b_sliding_and_global_layers() -> None:
    a = arch("google/gemma-3-27b-it")
    assert Counter(a.layer_attention) == {"sliding": 52, "full": 10}
    assert a.layer_attention[5] == "full" and a.layer_attention[:5] == ("sliding",) * 5
    assert a.sliding_window == 1024 and a.head_dim == 128 and a.num_kv_heads == 16


# -----------------------------------------------------------------------------------------------------------
# resolution


def test_exact_and_case_insensitive() -> None:
    exact = resolve_model("meta-llama/Llama-3.1-8B")
    assert exact.matched_by == "exact" and exact.assumptions == () and exact.arch.quantization is None
    loose = resolve_model("meta-llama/llama-3.1-8b")
    assert loose.matched_by == "case-insensitive" and loose.arch.id == "meta-llama/Llama-3.1-8B"
    assert loose.query == "meta-llama/llama-3.1-8b"


def test_alias_resolves_with_an_assumption() -> None:
    r = resolve_model("mistralai/Mistral-Small-3.2-24B-Instruct-2506")
    assert r.arch.id == "mistralai/Mistral-Small-3.1-24B-Instruct-2503"
    assert r.assumptions and "alias" in r.assumptions[0]


def test_awq_variant_uses_the_base_architecture() -> None:
    r = resolve_model("Qwen/Qwen2.5-7B-Instruct-AWQ")
    assert isinstance(r, ResolvedModel)
    assert r.matched_by == "variant" and r.arch.id == "Qwen/Qwen2.5-7B-Instruct"
    q = r.arch.quantization
    assert q is not None and (q.method, q.bits, q.group_size, q.zero_point) == ("awq", 4, 128, True)
    assert "Qwen/Qwen2.5-7B-Instruct" in r.assumptions[0] and "AWQ" in r.assumptions[0]


def test_fp8_dynamic_checkpoint_gets_per_channel_fp8() -> None:
    r = resolve_model("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic")
    q = r.arch.quantization
    assert q is not None and q.method == "fp8" and q.fp8_scaling == "channel"
    assert r.arch.num_layers == 80 and r.assumptions
    other = resolve_model("neuralmagic/Llama-3.3-70B-Instruct-FP8-dynamic")
    assert other.matched_by == "variant" and other.arch.quantization == q


def test_unsloth_bnb_uses_double_quantization() -> None:
    r = resolve_model("unsloth/Qwen2.5-7B-Instruct-bnb-4bit")
    q = r.arch.quantization
    assert q is not None and q.method == "bitsandbytes-4bit" and q.double_quant
    assert r.arch.hidden_size == 3584


def test_qwen_fp8_variant() -> None:
    r = resolve_model("Qwen/Qwen3-8B-FP8")
    assert r.matched_by == "variant" and r.arch.id == "Qwen/Qwen3-8B"
    q = r.arch.quantization
    assert q is not None and q.method == "fp8" and q.bits == 8


def test_checkpoint_quantization_config_wins_over_the_name() -> None:
    r = resolve_model("TheBloke/Llama-2-7B-GPTQ")  # the name says nothing of its group size 32
    q = r.arch.quantization
    assert q is not None and q.method == "gptq" and q.group_size == 32 and q.desc_act
    assert r.assumptions == ()


def test_instruct_and_meta_prefix_variants() -> None:
    r = resolve_model("meta-llama/Meta-Llama-3.1-8B-Instruct")
    assert r.arch.id == "meta-llama/Llama-3.1-8B" and r.matched_by == "variant"
    assert "-Instruct" in r.assumptions[0]
    dated = resolve_model("Qwen/Qwen3-30B-A3B-Instruct-2507")
    assert dated.arch.id == "Qwen/Qwen3-30B-A3B"
    sibling = resolve_model("meta-llama/Llama-3.2-1B")
    assert sibling.arch.id == "meta-llama/Llama-3.2-1B-Instruct"


def test_name_suffix_table_covers_the_usual_suffixes() -> None:
    for suffix in ["AWQ", "AWQ-INT4", "GPTQ-Int4", "GPTQ-Int8", "FP8", "FP8-dynamic", "NVFP4", "MXFP4",
                   "bnb-4bit", "unsloth-bnb-4bit", "w8a8", "quantized.w8a8", "w4a16"]:
        assert suffix in QUANT_SUFFIXES
    for suffix, method in [("GPTQ-Int8", "gptq"), ("NVFP4", "nvfp4"), ("MXFP4", "mxfp4"), ("w8a8", "int8"),
                           ("w4a16", "int4")]:
        q = resolve_model(f"Qwen/Qwen2.5-7B-Instruct-{suffix}").arch.quantization
        assert q is not None and q.method == method, suffix


def test_explicit_quantization_on_a_16_bit_checkpoint() -> None:
    r = resolve_model("meta-llama/Llama-3.1-8B", quantization="fp8")
    q = r.arch.quantization
    assert q is not None and q.method == "fp8" and q.fp8_scaling == "tensor" and q.not_converted == ()
    assert any("while loading" in a for a in r.assumptions)
    none = resolve_model("Qwen/Qwen2.5-7B-Instruct-AWQ", quantization="none")
    assert none.arch.quantization is None
    rounded = resolve_model("Qwen/Qwen3-8B", quantization="auto-round").arch.quantization
    assert rounded is not None and (rounded.method, rounded.bits) == ("gptq", 4)


def test_explicit_quantization_kernel_choice_keeps_the_stored_format() -> None:
    r = resolve_model("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", quantization="gptq_marlin")
    q = r.arch.quantization
    assert q is not None and q.method == "gptq" and q.bits == 4


def test_explicit_quantization_conflicting_with_the_checkpoint_is_an_error() -> None:
    with pytest.raises(CatalogError, match="stored as GPTQ"):
        resolve_model("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", quantization="fp8")
    with pytest.raises(CatalogError, match="--quantization"):
        resolve_model("meta-llama/Llama-3.1-8B", quantization="nonsense")
    assert set(VLLM_QUANTIZATION) >= {"awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "bitsandbytes",
                                      "mxfp4", "modelopt", "compressed-tensors", "int8", "none"}


def test_local_config_json_with_text_config(tmp_path: Path) -> None:
    config = {
        "_name_or_path": "acme/Tiny-VL",
        "model_type": "llava",
        "torch_dtype": "bfloat16",
        "text_config": {
            "model_type": "llama", "hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
            "num_key_value_heads": 2, "vocab_size": 32000, "intermediate_size": 2816,
        },
    }
    file = tmp_path / "ckpt" / "config.json"
    file.parent.mkdir()
    file.write_text(json.dumps(config), encoding="utf-8")
    for query in (str(file), str(file.parent)):
        r = resolve_model(query)
        assert r.matched_by == "config-file" and r.query == query
        assert r.arch.id == "acme/Tiny-VL" and r.arch.num_layers == 4 and r.arch.num_kv_heads == 2
        assert r.arch.head_dim == 128 and r.arch.dtype == "bfloat16"
    del config["_name_or_path"]
    file.write_text(json.dumps(config), encoding="utf-8")
    assert resolve_model(str(file)).arch.id == "ckpt"


def test_local_config_json_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "config.json"
    broken.write_text('{"hidden_size": 1024,', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"config\.json.*invalid JSON"):
        resolve_model(str(broken))
    broken.write_text('{"model_type": "llama", "hidden_size": 1024}', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"config\.json.*num_hidden_layers"):
        resolve_model(str(broken))
    with pytest.raises(CatalogError, match="no such file"):
        resolve_model(str(tmp_path / "missing" / "config.json"))


def test_unknown_model_lists_close_ids() -> None:
    with pytest.raises(UnknownModelError) as info:
        resolve_model("Qwen/Qwen9-8B")
    assert 0 < len(info.value.suggestions) <= 5
    assert "Qwen/Qwen3-8B" in info.value.suggestions


def test_known_but_unsupported_model_says_why() -> None:
    with pytest.raises(CatalogError, match="not supported") as info:
        resolve_model("nvidia/Qwen3.6-27B-NVFP4")  # was DeepSeek-V4-Pro, now modelled
    assert not isinstance(info.value, UnknownModelError)

def test_gemma4_global_layers() -> None:
    # 26B-A4B: 25 sliding layers (8 KV heads x 256) and 5 global ones (2 KV heads x 512, values = keys),
    # 128 experts of 704 plus a dense MLP of 2112 in every layer
    a = arch("google/gemma-4-26B-A4B")
    assert a.layer_attention.count("full") == 5 and a.layer_attention.count("sliding") == 25
    assert (a.global_head_dim, a.global_kv_heads, a.global_k_eq_v) == (512, 2, True)
    assert a.dense_mlp_with_moe and a.moe is not None and a.moe.expert_intermediate_size == 704


def test_describe_quantization_reads_well() -> None:
    q = resolve_model("Qwen/Qwen2.5-7B-Instruct-AWQ").arch.quantization
    assert q is not None and describe_quantization(q) == "AWQ 4-bit group 128 (zero points)"


# ---------------------------------------------------------------------------------------------------------------
# parameter counts against every published total

def _within(computed: int, arch: ModelArch) -> bool:
    reported = arch.num_parameters_reported
    assert reported
    return abs(computed - reported) <= max(0.005 * reported, arch.num_parameters_reported_rounding or 0)


def test_every_published_parameter_total_is_reproduced() -> None:
    """Every total the shared data quotes is reproduced within 0.5% (or its rounding) once the named reasons the
    catalog data records for it are applied. A total the source files under the wrong model
    (``num_parameters_reported_model``) must match THAT model's inventory, and must not match this one's (else the
    attribution would be a way to hide a miss)."""
    from pytest_llmsizer.calculator.params import REPORTED_COUNT_TERMS, reported_comparable_total

    catalog = load_model_catalog()
    checked, off = 0, {}
    for mid, entry in catalog.models.items():
        if not entry.num_parameters_reported:
            assert entry.num_parameters_reported_model is None, mid
            continue
        assert entry.num_parameters_reported_source, mid
        assert set(entry.reported_count_includes) <= set(REPORTED_COUNT_TERMS), mid
        counted = entry
        if entry.num_parameters_reported_model is not None:
            counted = catalog.models[entry.num_parameters_reported_model]
            assert not _within(reported_comparable_total(entry), entry), f"{mid}: matches its own inventory"
        computed = reported_comparable_total(counted)
        checked += 1
        if not _within(computed, entry):
            off[mid] = f"{100 * (computed - entry.num_parameters_reported) / entry.num_parameters_reported:+.2f}%"
    assert checked >= 32
    assert off == {}


def test_the_gemma_3_27b_figure_is_gemma_2_27b_to_the_parameter() -> None:
    """llm-sizer files 27,227,128,320 under google/gemma-3-27b-it, but its entry is 'gemma 2 27b it' with Gemma-2's
    shape (the build checks those fields); Gemma-2-27B's inventory is that figure exactly. Spelled out by hand:
    46 layers x (attention 4608 x (32 + 16 + 16) x 128 + 4096 x 4608, MLP 3 x 4608 x 36864, four norms of 4608)
    + embedding 256000 x 4608 (tied) + final norm."""
    from pytest_llmsizer.calculator.params import total_parameters

    gemma3 = arch("google/gemma-3-27b-it")
    assert gemma3.num_parameters_reported == 27_227_128_320
    assert gemma3.num_parameters_reported_model == "google/gemma-2-27b"
    assert "'gemma 2 27b it'" in (gemma3.num_parameters_reported_source or "")
    layer = 4608 * 64 * 128 + 4096 * 4608 + 3 * 4608 * 36864 + 4 * 4608
    assert 46 * layer + 256000 * 4608 + 4608 == 27_227_128_320
    assert total_parameters(arch("google/gemma-2-27b")) == 27_227_128_320


def test_gemma_3_27b_inventory_with_its_siglip_tower_and_projector() -> None:
    """Gemma-3-27B counted by hand from its config: 62 text layers of attention (q 32 x 128, k/v 16 x 128, o), q/k
    norms, MLP 3 x 5376 x 21504 and four norms; embedding 262208 x 5376 (tied); SigLIP-So400m at 896 px: 27 layers of
    (4 biased 1152^2 projections, fc1/fc2 1152 <-> 4304 with biases, two LayerNorms), a 14 x 14 x 3 patch conv,
    (896 / 14)^2 = 4096 learned positions, post_layernorm; and the projector: mm_input_projection_weight 1152 x 5376 +
    mm_soft_emb_norm."""
    from pytest_llmsizer.calculator.params import total_parameters

    h, v = 5376, 1152
    text_layer = h * 4096 + 2 * h * 2048 + 4096 * h + 2 * 128 + 3 * h * 21504 + 4 * h
    text = 62 * text_layer + 262208 * h + h
    tower_layer = 4 * (v * v + v) + (v * 4304 + 4304) + (4304 * v + v) + 2 * 2 * v
    tower = 27 * tower_layer + (3 * 14 * 14 * v + v) + 4096 * v + 2 * v
    projector = v * h + v
    assert (text, tower, projector) == (27_009_346_304, 416_866_032, 6_194_304)
    gemma3 = arch("google/gemma-3-27b-it")
    assert gemma3.vision is not None and gemma3.vision.num_parameters == tower + projector
    assert total_parameters(gemma3) == text + tower + projector == 27_432_406_640


def test_gemma_sandwich_norms_make_the_published_totals_exact() -> None:
    """Gemma-2/3 layers normalise the attention and MLP outputs too (four norms, not two): with them the totals
    llm-sizer quotes for gemma-2-9b-it and gemma-3-1b-it come out to the parameter."""
    from pytest_llmsizer.calculator.params import total_parameters

    for mid in ("google/gemma-2-9b-it", "google/gemma-3-1b-it"):
        entry = arch(mid)
        assert entry.sandwich_norms, mid
        assert total_parameters(entry) == entry.num_parameters_reported, mid
        two_norms = entry.model_copy(update={"sandwich_norms": False})
        assert entry.num_parameters_reported - total_parameters(two_norms) == 2 * entry.hidden_size * entry.num_layers
    assert not arch("meta-llama/Llama-3.2-1B-Instruct").sandwich_norms


def test_phi_4_mini_ties_its_embeddings_with_the_evidence_in_the_catalog() -> None:
    """The shared config is cut before tie_word_embeddings; the catalog supplements it, with its evidence in the
    notes (llm-sizer's 3.8B and litgpt 0.5.13's converter, which re-ties lm_head for Phi-4 checkpoints that store
    none). Tied, the inventory is 3,836,021,760 (3.8B); the untied default would be 4,450,618,368 (+17%)."""
    from pytest_llmsizer.calculator.params import Sharding, stage_inventory, total_parameters

    phi = arch("microsoft/Phi-4-mini-instruct")
    assert phi.tie_word_embeddings and phi.vocab_size == 200064
    assert any("litgpt 0.5.13" in note and "lm_head.weight" in note for note in phi.notes)
    assert any(note.startswith("supplemented") and "tied" in note for note in phi.notes)
    assert total_parameters(phi) == 3_836_021_760
    assert total_parameters(phi.model_copy(update={"tie_word_embeddings": False})) == 4_450_618_368
    one_rank = stage_inventory(phi, range(phi.num_layers), first=True, last=True, sh=Sharding())
    assert "lm_head" not in one_rank


@needs_source
def test_llm_sizer_evidence_is_checked_field_by_field(tmp_path: Path) -> None:
    """The build refuses a PublishedCount whose LLM Sizer entry does not say what the catalog claims (here a
    SYNTHETIC copy of the shared llm-sizer catalog with the gemma entry's layer count changed)."""
    build = _build_module()
    assert build.verify_llm_sizer_entries(SOURCE_DIR) == []
    real = SOURCE_DIR.parents[1] / build.LLM_SIZER_MODELS
    document = json.loads(real.read_text(encoding="utf-8"))
    for entry in document["models"]:
        if entry.get("hf_model_id") == "google/gemma-3-27b-it":
            entry["num_layers"] = 62
    fake = tmp_path / build.LLM_SIZER_MODELS
    fake.parent.mkdir(parents=True)
    fake.write_text(json.dumps(document), encoding="utf-8")
    source = tmp_path / "data" / "model-configs"
    source.mkdir(parents=True)
    (source / "google--gemma-2-27b.json").write_text("{}", encoding="utf-8")
    problems = build.verify_llm_sizer_entries(source)
    assert problems == [f"google/gemma-3-27b-it: {fake}: entry 'google/gemma-3-27b-it': num_layers is 62, "
                        "expected 46"]


def test_nemotron_3_super_latent_moe_reproduces_the_published_total_exactly() -> None:
    from pytest_llmsizer.calculator.params import mtp_parameters, total_parameters

    arch = load_model_catalog().models["nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8"]
    assert arch.moe is not None and arch.moe.latent_size == 1024 and not arch.moe.gated
    # architectures.md section 1: main model 120,668,707,840 + MTP 2,942,325,248 = 123,611,033,088
    assert total_parameters(arch) == 120_668_707_840
    assert mtp_parameters(arch) == 2_942_325_248
    assert arch.num_parameters_reported == 123_611_033_088


def test_named_count_terms_are_physics_not_factors() -> None:
    from pytest_llmsizer.calculator.params import REPORTED_COUNT_TERMS

    qwen = load_model_catalog().models["Qwen/Qwen3-0.6B"]
    assert REPORTED_COUNT_TERMS["embeddings_counted_twice"][1](qwen) == 151936 * 1024
    oss = load_model_catalog().models["openai/gpt-oss-20b"]
    # one E8M0 scale per 32 expert weights: 24 layers x 32 experts x 3 x 2880 x 2880 / 32
    assert REPORTED_COUNT_TERMS["mxfp4_scales"][1](oss) == 24 * 32 * 3 * 2880 * 2880 // 32


def test_meta_405b_fp8_keeps_attention_in_bf16_as_the_notes_state() -> None:
    """Meta's FBGEMM FP8 checkpoint leaves every self_attn (and lm_head) in bf16 and scales weights per row; the
    shared notes quote the modules_to_not_convert list, so the catalog prices attention as 16 bit (vllm#6746 logs
    57.8 GiB per GPU at TP 8, which every-layer FP8 misses by 17%)."""
    q = resolve_model("meta-llama/Llama-3.1-405B-Instruct-FP8").arch.quantization
    assert q is not None and q.method == "fp8" and q.fp8_scaling == "channel"
    assert q.source_method == "fbgemm_fp8" and q.not_converted == ("attention",)
    assert q.not_converted_layers == ((0, "all"), (125, "all"))  # "model.layers.0", "model.layers.125" whole
    assert describe_quantization(q).endswith("16-bit: attention; 16-bit in single layers: whole layer 0/125")


def test_layer_entries_of_an_ignore_list_become_per_layer_exceptions() -> None:
    """An ignore entry naming one decoder layer leaves that layer's module 16-bit, not every layer's; routers,
    norms, conv1d, vision-tower layers and kinds already 16-bit everywhere say nothing."""
    from pytest_llmsizer.catalog.hf_config import quant_from_config

    q = quant_from_config({"quantization": {"quant_algo": "FP8", "exclude_modules": [
        "lm_head", "backbone.layers.5.mixer.q_proj", "backbone.layers.4.mixer.in_proj",
        "backbone.layers.4.mixer.out_proj", "backbone.layers.4.mixer.conv1d", "model.layers.3.mlp.gate",
        "model.vision_tower.layers.2", "model.layers.7", "re:model.layers.9.*"]}}, "test/model")
    assert q is not None and q.not_converted == ("attention", "vision")
    assert q.not_converted_layers == ((4, "mamba"), (7, "all"))


def test_nemotron_nano_fp8_prices_the_recipes_bf16_mamba_layers_at_16_bit() -> None:
    """NVIDIA's recipe keeps the six Mamba layers next to attention in bf16: their in/out projections (6 x
    38,707,200 parameters) cost 2 bytes, the other 17 Mamba layers 1 byte."""
    from pytest_llmsizer.calculator.params import Sharding, stage_inventory
    from pytest_llmsizer.calculator.weights import split_unconverted_layers, weight_bytes

    arch = resolve_model("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-FP8").arch
    sh = Sharding(tp=1, pp=1, dp=1, expert_parallel=False, replicate_vision=True, language_model_only=False)
    layers = range(arch.num_layers)
    inv = split_unconverted_layers(arch, stage_inventory(arch, layers, first=True, last=True, sh=sh), layers, sh,
                                   arch.quantization)
    assert inv["mamba_16bit"] == 6 * 38_707_200 and inv["mamba"] == 17 * 38_707_200
    priced = weight_bytes(arch, inv, dtype="bfloat16", quant=arch.quantization)
    assert priced["mamba_16bit"] == 2 * inv["mamba_16bit"] and priced["mamba"] == inv["mamba"]


def test_a_checkpoint_whose_stored_format_was_not_read_says_so():
    # the shared data did not read RedHatAI's Ministral-3-14B quantization_config, though its notes and the vme-dev
    # logs point to FP8: the catalog prices it 16-bit and every estimate that names no format says so
    unnamed = resolve_model("RedHatAI/Ministral-3-14B-Instruct-2512")
    assert unnamed.arch.quantization is None and unnamed.arch.stored_precision_unread
    assert any("stored format not read" in a and "--quantization" in a for a in unnamed.assumptions)
    named = resolve_model("RedHatAI/Ministral-3-14B-Instruct-2512", quantization="fp8")
    assert not any("stored format not read" in a for a in named.assumptions)
    # a checkpoint whose format the catalog knows carries no such note
    assert resolve_model("mistralai/Ministral-3-14B-Instruct-2512").arch.stored_precision_unread is None
