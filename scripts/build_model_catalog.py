"""Build the model catalog ``pytest_llmsizer/catalog/data/models.json`` from the shared config folder.

The shared folder (``../shared/data/model-configs``, one HF ``config.json`` copy per model, see its INDEX.md)
is the evidence; the catalog is what the package ships and reads at run time, so the package never depends on
a folder outside itself. Each file is converted with ``arch_from_hf_config``; files it cannot convert are
listed under ``"unsupported"`` with the reason, so that resolving such an id says "known model, architecture
not supported" instead of "unknown model".

Some source files are truncated copies that miss keys their own ``_notes`` (or INDEX.md) state. Those facts
are added from ``SUPPLEMENTS`` below, each with the verbatim note text it comes from; the build checks that
every quoted text really is in the named file, so a supplement can never be an invented value. A supplement
only fills keys the file lacks; it never overrides one.

Usage (from the repository root)::

    python scripts/build_model_catalog.py            # write the catalog
    python scripts/build_model_catalog.py --check    # exit 1 if the committed catalog is stale
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script: make the package importable without installing it
    sys.path.insert(0, str(REPO_ROOT))

from pytest_llmsizer.catalog.hf_config import arch_from_hf_config  # noqa: E402
from pytest_llmsizer.errors import CatalogError  # noqa: E402

FORMAT = "llmsizer-models/1"
DEFAULT_SOURCE = "../shared/data/model-configs"
OUTPUT = REPO_ROOT / "pytest_llmsizer" / "catalog" / "data" / "models.json"
INDEX_FILE = "INDEX.md"


@dataclass(frozen=True)
class Quote:
    """Verbatim text from a source file's ``_notes`` (or from INDEX.md) that states a supplemented fact."""

    file: str
    text: str


@dataclass(frozen=True)
class ExternalQuote:
    """Verbatim text from a published, versioned file outside the shared data, for a fact the shared data does not
    state. The build cannot re-read it (the package is not a dependency), so the citation names the exact release,
    file and lines for anyone to check; each one is copied into the catalog entry's notes."""

    source: str
    text: str


@dataclass(frozen=True)
class Supplement:
    """Keys a truncated / derived source file lacks, merged into its language-model config before conversion.

    ``keys`` go into ``text_config`` when the file nests one, else into the top level. ``why`` is stored in
    the catalog entry's ``notes`` so that a user sees which values did not come from the config itself.
    """

    keys: dict[str, Any]
    why: str
    quotes: tuple[Quote, ...] = field(default_factory=tuple)
    vision_keys: dict[str, Any] = field(default_factory=dict)
    """Keys merged into ``vision_config`` (a config that lists only non-default vision keys)."""
    external: tuple[ExternalQuote, ...] = field(default_factory=tuple)
    """Evidence from outside the shared data, when the shared data only implies the fact."""


_GEMMA3_27B_DEFAULTS = Quote(
    "google--gemma-3-27b-it.json",
    "spells the defaults out: max_position_embeddings 131072, rope_theta 1000000.0 (global layers), "
    "rope_local_base_freq 10000.0 (sliding layers), vocab_size 262208, sliding_window 1024, head_dim 128, "
    "query_pre_attn_scalar 168; tie_word_embeddings defaults to true for Gemma3.",
)
_OPT_TIED = Quote(
    "facebook--opt-125m.json",
    "Tied input/output embeddings are implicit in OPT (no tie_word_embeddings key in these copies).",
)
_NANO_FP8_RECIPE = Quote(
    "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-FP8.json",
    "FP8 E4M3, static per-tensor weight scales, dynamic per-token activation scales; MoE expert GEMMs "
    "(routed + shared) FP8; Mamba GEMMs FP8 in 17 of 23 Mamba layers; all 6 attention layers BF16; the Mamba "
    "layers adjacent to attention {4, 11, 18, 25, 32, 41} BF16; Mamba conv1d BF16; router gates FP32; "
    "embeddings and lm_head BF16; KV cache FP8.",
)
_NANO_ATTENTION_LAYERS = (5, 12, 19, 26, 33, 42)
_NANO_MAMBA_NEXT_TO_ATTENTION = (4, 11, 18, 25, 32, 41)

def _fp8_config(weight_strategy: str, activations: dict[str, Any], ignore: list[str]) -> dict[str, Any]:
    """A compressed-tensors FP8 quantization_config (the llm-compressor presets the source notes quote)."""
    return {"quantization_config": {
        "quant_method": "compressed-tensors",
        "config_groups": {"group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "float", "strategy": weight_strategy, "dynamic": False,
                        "symmetric": True},
            "input_activations": {"num_bits": 8, "type": "float", "symmetric": True, **activations},
        }},
        "ignore": ignore,
    }}


_DYNAMIC_TOKEN = {"strategy": "token", "dynamic": True}
"""FP8_DYNAMIC: per-channel weights, dynamic per-token activations."""


def _qwen35_fp8_dynamic(file: str) -> Supplement:
    """The llm-compressor qwen3_5_moe FP8_DYNAMIC recipe the notes of the RedHatAI Qwen3.5 FP8-dynamic files quote."""
    return Supplement(
        keys=_fp8_config("channel", _DYNAMIC_TOKEN,
                         ["re:.*lm_head", "re:visual.*", "re:model.visual.*", "re:.*mlp.gate$", "re:.*embed_tokens$",
                          "re:.*shared_expert_gate$", "re:.*mlp\\.shared_expert$", "re:.*linear_attn.*"]),
        why="FP8_DYNAMIC with vision tower, router, shared expert (and its gate) and all Gated-DeltaNet modules "
        "bf16: the llm-compressor qwen3_5_moe.py recipe the source notes quote; that it is THIS repo's recipe is "
        "likely but unverified (the notes say so); checked against vme-dev weights (34.43 GiB logged for the 35B)",
        quotes=(
            Quote(file, "uses QuantizationModifier(targets='Linear', scheme='FP8_DYNAMIC', ignore=['re:.*lm_head', "
                        "'re:visual.*', 're:model.visual.*', 're:.*mlp.gate$', 're:.*embed_tokens$', "
                        "'re:.*shared_expert_gate$', 're:.*mlp\\.shared_expert$', 're:.*linear_attn.*'])"),
            Quote(file, "defines the llm-compressor preset FP8_DYNAMIC as weights {num_bits 8, type float, "
                        "strategy channel, symmetric true, dynamic false}"),
        ),
    )


SUPPLEMENTS: dict[str, Supplement] = {
    # --- truncated copies: keys cut off after ~2 kB, values stated in the file's own _notes ---------------
    "google/gemma-3-27b-it": Supplement(
        keys={"vocab_size": 262208, "tie_word_embeddings": True, "max_position_embeddings": 131072},
        why="vocab_size 262208, tied embeddings and 131072 context are Gemma3TextConfig defaults stated in "
        "the source notes (the compact official config omits them)",
        quotes=(_GEMMA3_27B_DEFAULTS,),
    ),
    "gaunernst/gemma-3-27b-it-int4-awq": Supplement(
        keys={
            "vocab_size": 262208,
            "tie_word_embeddings": True,
            "max_position_embeddings": 131072,
            # The converter's layout: AWQ 4-bit, group 32, zero points stored (fixed at 8), vision tower and
            # projector left bf16. Written in the AutoAWQ config dialect so quant_from_config reads it.
            "quantization_config": {
                "quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": True, "version": "gemm",
                "modules_to_not_convert": ["vision_tower", "multi_modal_projector"],
            },
        },
        why="vocab/tie/context from the base file's notes; AWQ 4-bit group 32 with stored zero points, "
        "vision tower and projector bf16, as the converter that produced the checkpoint writes it "
        "(config not read)",
        quotes=(
            Quote("gaunernst--gemma-3-27b-it-int4-awq.json",
                  "sliding_window 1024 with every 6th layer global, vocab 262208, tied embeddings)"),
            _GEMMA3_27B_DEFAULTS,
            Quote("gaunernst--gemma-3-27b-it-int4-awq.json",
                  "every 2-D weight except model.embed_tokens.weight ('AWQ doesn't support INT4 "
                  "embeddings'), the vision tower and the multi-modal projector is packed as AWQ 4-bit "
                  "with group size 32 along the input dimension (scales bf16, shape [K/32, N]); qweight "
                  "shifted to unsigned and qzeros fixed at 8 (0x88888888), i.e. a symmetric INT4 code "
                  "stored in AWQ's UINT4 + zero-point layout."),
        ),
    ),
    "deepseek-ai/DeepSeek-Coder-V2-Instruct": Supplement(
        keys={"vocab_size": 102400, "v_head_dim": 128},
        why="vocab_size 102400 and v_head_dim 128 from DeepSeek's own 236B inference config "
        "(source truncated)",
        quotes=(Quote("deepseek-ai--DeepSeek-Coder-V2-Instruct.json",
                      "and adds vocab_size 102400, v_head_dim 128, n_limited_groups 3, route_scale 16.0"),),
    ),
    "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct": Supplement(
        keys={"vocab_size": 102400, "v_head_dim": 128, "torch_dtype": "bfloat16"},
        why="vocab_size 102400 and v_head_dim 128 from DeepSeek's 16B inference config, torch_dtype "
        "bfloat16 from the identical Lite-Base config (source truncated)",
        quotes=(
            Quote("deepseek-ai--DeepSeek-Coder-V2-Lite-Instruct.json",
                  "gives v_head_dim 128 and vocab_size 102400"),
            Quote("deepseek-ai--DeepSeek-Coder-V2-Lite-Instruct.json",
                  'the duplicate\'s config excerpt stops at "torch_dtype": "bfloat...", so torch_dtype '
                  "(bfloat16 in the official DeepSeek-Coder-V2-Lite-Base page"),
        ),
    ),
    "microsoft/Phi-4-mini-instruct": Supplement(
        keys={"vocab_size": 200064, "tie_word_embeddings": True},
        why="vocab_size 200064 as listed by llm-sizer and litgpt; tied input/output embeddings: the checkpoint "
        "stores no lm_head.weight (litgpt's converter re-ties it from the embedding for Phi-4 models and drops "
        "it when writing Phi-4 back to HF format), and only tied embeddings reproduce the 3.8B total llm-sizer "
        "lists (3.836e9 tied, 4.451e9 untied) (source truncated before both keys)",
        quotes=(Quote("microsoft--Phi-4-mini-instruct.json",
                      "AMD-melliott/llm-sizer lists vocab_size 200064 and 3.8B parameters for this model "
                      "(not read from the config)."),),
        external=(
            ExternalQuote("PyPI litgpt 0.5.13, litgpt/scripts/convert_hf_checkpoint.py lines 472-473 "
                          "(copy_weights_phi)",
                          'if "lm_head.weight" not in state_dict and config.name.startswith("Phi-4"): '
                          'state_dict["lm_head.weight"] = state_dict["transformer.wte.weight"]'),
            ExternalQuote("PyPI litgpt 0.5.13, litgpt/scripts/convert_lit_checkpoint.py lines 302-303",
                          'if from_name == "lm_head.weight" and config.name.startswith("Phi-4"): continue'),
            ExternalQuote("PyPI litgpt 0.5.13, litgpt/config.py lines 1922-1927",
                          "# https://huggingface.co/microsoft/Phi-4-mini-instruct/blob/main/config.json "
                          'dict(name="Phi-4-mini-instruct", hf_config=dict(org="microsoft", '
                          'name="Phi-4-mini-instruct"), vocab_size=200019, padded_vocab_size=200064,'),
        ),
    ),
    # --- architecture facts the notes state but the config format leaves implicit --------------------------
    "Qwen/Qwen2.5-VL-7B-Instruct": Supplement(
        keys={},
        vision_keys={"depth": 32, "intermediate_size": 3420, "patch_size": 14, "spatial_merge_size": 2,
                     "temporal_patch_size": 2, "out_hidden_size": 3584},
        why="vision tower depth 32, MLP 3420, patch 14, merge 2, temporal patch 2, projector to 3584: the "
        "Qwen2_5_VLVisionConfig defaults the source notes state (the config lists only non-default vision keys)",
        quotes=(Quote("Qwen--Qwen2.5-VL-7B-Instruct.json",
                      "are depth 32, intermediate_size 3420, num_heads 16, patch_size 14, spatial_merge_size 2, "
                      "temporal_patch_size 2, window_size 112, out_hidden_size 3584"),),
    ),
    "facebook/opt-125m": Supplement(
        keys={"tie_word_embeddings": True}, why="OPT ties input/output embeddings", quotes=(_OPT_TIED,)
    ),
    "facebook/opt-1.3b": Supplement(
        keys={"tie_word_embeddings": True}, why="OPT ties input/output embeddings", quotes=(_OPT_TIED,)
    ),
    "facebook/opt-6.7b": Supplement(
        keys={"tie_word_embeddings": True}, why="OPT ties input/output embeddings", quotes=(_OPT_TIED,)
    ),
    "openai-community/gpt2": Supplement(
        keys={"tie_word_embeddings": True},
        why="GPT-2 ties input/output embeddings",
        quotes=(Quote("openai-community--gpt2.json", "GPT-2 ties input/output embeddings by architecture."),),
    ),
    # --- quantized checkpoints whose quantization_config was not read but whose scheme the notes state ----
    "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4": Supplement(
        keys={"quantization_config": {
            "zero_point": True, "q_group_size": 128, "w_bit": 4, "version": "GEMM",
        }},
        why="AWQ 4-bit group 128 with zero points: the model card's reproduction recipe (config not read)",
        quotes=(Quote("hugging-quants--Meta-Llama-3.1-8B-Instruct-AWQ-INT4.json",
                      'reproduction recipe quant_config = {"zero_point": True, "q_group_size": 128, '
                      '"w_bit": 4, "version": "GEMM"}'),),
    ),
    "neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8": Supplement(
        keys=_fp8_config("tensor", {"strategy": "tensor", "dynamic": False}, ["lm_head"]),
        why="FP8 per-tensor weights and static activations, lm_head bf16: the model card's llm-compressor "
        "recipe (config not read)",
        quotes=(Quote("neuralmagic--Meta-Llama-3.1-8B-Instruct-FP8.json",
                      'ignore ["lm_head"]; config_groups.group_0: weights {num_bits 8, type float, strategy '
                      "tensor, dynamic false, symmetric true}, input_activations {num_bits 8, type float, "
                      'strategy tensor, dynamic false, symmetric true}, targets ["Linear"]'),),
    ),
    "RedHatAI/Qwen3-Coder-Next-FP8-dynamic": Supplement(
        keys=_fp8_config("channel", _DYNAMIC_TOKEN,
                         ["re:.*lm_head", "re:.*mlp.gate$", "re:.*mlp.shared_expert_gate$", "re:.*linear_attn.*"]),
        why="FP8_DYNAMIC (per-channel FP8 weights) with lm_head, router, shared-expert gate and all "
        "Gated-DeltaNet modules bf16: the model card's creation recipe (config not read)",
        quotes=(
            Quote("RedHatAI--Qwen3-Coder-Next-FP8-dynamic.json",
                  "QuantizationModifier(targets='Linear', scheme='FP8_DYNAMIC', ignore=['re:.*lm_head', "
                  "'re:.*mlp.gate$', 're:.*mlp.shared_expert_gate$', 're:.*linear_attn.*'], "
                  "weight_observer='mse')"),
            Quote("RedHatAI--Qwen3-Coder-Next-FP8-dynamic.json",
                  "defines the llm-compressor preset FP8_DYNAMIC as weights {num_bits 8, type float, "
                  "strategy channel, symmetric true, dynamic false} and input_activations {num_bits 8, type "
                  "float, strategy token, symmetric true, dynamic true}"),
        ),
    ),
    "RedHatAI/Qwen3.5-35B-A3B-FP8-dynamic": _qwen35_fp8_dynamic("RedHatAI--Qwen3.5-35B-A3B-FP8-dynamic.json"),
    "RedHatAI/Qwen3.5-122B-A10B-FP8-dynamic": _qwen35_fp8_dynamic("RedHatAI--Qwen3.5-122B-A10B-FP8-dynamic.json"),
    "RedHatAI/Qwen3.5-397B-A17B-FP8-dynamic": _qwen35_fp8_dynamic("RedHatAI--Qwen3.5-397B-A17B-FP8-dynamic.json"),
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8": Supplement(
        keys={"quantization_config": {"quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}}},
        why="ModelOpt FP8 with FP8 KV cache from the companion hf_quant_config.json",
        quotes=(Quote("nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-FP8.json",
                      'the companion hf_quant_config.json (same aiconfigurator folder) says {"quantization": '
                      '{"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}} (ModelOpt format).'),),
    ),
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-FP8": Supplement(
        keys={"quantization_config": {"quantization": {
            "quant_algo": "FP8",
            "kv_cache_quant_algo": "FP8",
            "exclude_modules": [
                "lm_head",
                *(f"backbone.layers.{i}.mixer.{p}" for i in _NANO_ATTENTION_LAYERS
                  for p in ("q_proj", "k_proj", "v_proj", "o_proj")),
                *(f"backbone.layers.{i}.mixer.{p}" for i in _NANO_MAMBA_NEXT_TO_ATTENTION
                  for p in ("in_proj", "out_proj")),
            ],
        }}},
        why="ModelOpt FP8 per-tensor with FP8 KV cache; attention layers and the Mamba layers next to them "
        "bf16 (NVIDIA's recipe as stated by a third-party card; module names from the NVFP4 sibling; "
        "not read)",
        quotes=(
            _NANO_FP8_RECIPE,
            Quote("nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-FP8.json",
                  "excludes lm_head, backbone.layers.{4,11,18,25,32,41}.mixer.in_proj/out_proj, "
                  "backbone.layers.{5,12,19,26,33,42}.mixer.q_proj/k_proj/v_proj/o_proj and every Mamba "
                  "mixer.conv1d."),
        ),
    ),
    "meta-llama/Llama-3.1-405B-Instruct-FP8": Supplement(
        keys={"quantization_config": {
            "quant_method": "fbgemm_fp8",
            "modules_to_not_convert": ["model.layers.0", "model.layers.125", "lm_head",
                                       *(f"model.layers.{i}.self_attn" for i in range(1, 125))],
        }},
        why="FBGEMM FP8 rowwise with every self_attn, layers 0 and 125 and lm_head left bf16 (Meta's choice as a "
        "HuggingFace conversion script and the Llama 3 paper state it; the released config was not read)",
        quotes=(
            Quote("meta-llama--Llama-3.1-405B-Instruct-FP8.json",
                  "builds modules_to_not_convert = ['model.layers.0', 'model.layers.125', 'lm_head'] + "
                  "['model.layers.{i}.self_attn' for i in 1..124] (127 entries)"),
            Quote("meta-llama--Llama-3.1-405B-Instruct-FP8.json",
                  "FBGEMM fp8 = FP8 rowwise weights with dynamic per-row activation scaling."),
        ),
    ),
    "mistralai/Ministral-3-14B-Instruct-2512": Supplement(
        keys={"quantization_config": {
            "activation_scheme": "static",
            "modules_to_not_convert": ["model.vision_tower", "model.multi_modal_projector", "lm_head"],
            "quant_method": "fp8",
            "weight_block_size": None,
        }},
        why="the model card lists this checkpoint as FP8; the block is the one transformers' conversion "
        "script writes for FP8 Ministral 3 checkpoints (the released config was not read)",
        quotes=(
            Quote("mistralai--Ministral-3-14B-Instruct-2512.json",
                  "the model card table lists 'Ministral 3 14B Instruct 2512 | Instruct post-trained | FP8'"),
            Quote("mistralai--Ministral-3-14B-Instruct-2512.json",
                  'writes quantization_config {"activation_scheme": "static", "modules_to_not_convert": '
                  '["model.vision_tower", "model.multi_modal_projector", "lm_head"], "quant_method": "fp8", '
                  '"weight_block_size": null} for FP8 params.json checkpoints'),
        ),
    ),
}
"""Facts the source files miss, each from the quoted note; keyed by catalog id (file name with -- -> /)."""

UNREAD_PRECISION: dict[str, tuple[str, Quote]] = {
    "RedHatAI/Ministral-3-14B-Instruct-2512": (
        "its notes say it may mirror mistralai's FP8 release and every vme-dev log of it has vLLM load it as "
        "fp8 without --quantization (14.71 GiB on an H200, where 16 bit is 25.8 GiB)",
        Quote("RedHatAI--Ministral-3-14B-Instruct-2512.json",
              "quantization_config / params.json 'quantization' block NOT read"),
    ),
}
"""Checkpoints whose stored format the shared data did not read although its notes (and the logs) point to a
quantized one. The catalog still prices them as the config says (16 bit): the FP8 scheme of the Red Hat copy is not
known, and its MI300X load figure (17.6 GiB) is explained today only as an online FP8 quantization (calculator/
platform.py), so the format is not guessed; every estimate that does not name one says so instead."""

ALIASES: dict[str, tuple[tuple[str, ...], Quote]] = {
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503": (
        ("mistralai/Mistral-Small-3.2-24B-Instruct-2506",),
        Quote(INDEX_FILE,
              "Mistral-Small-3.2-24B-Instruct-2506 -> `mistralai--Mistral-Small-3.1-24B-Instruct-2503.json` "
              "(text values identical per a 3.2 text-only re-save)"),
    ),
}
"""Other repo ids that INDEX.md says share a file's architecture (resolved as that entry, with a note)."""


_NO_CONFIG = "no config.json for it in the shared data ({}); pass the checkpoint's config.json instead"
UNSUPPORTED_NAMES: dict[str, str] = {
    "Qwen/Qwen3.8-27B": _NO_CONFIG.format("a third-party README is the only source, and it disputes the vocab"),
    "Qwen/Qwen3.5-4B": _NO_CONFIG.format("only the 35B, 122B and 397B Qwen3.5 configs are there"),
    "openbmb/MiniCPM5-1B": _NO_CONFIG.format("named by a deployment tutorial's log"),
    "YuanLLM/Yuan2-2B-Mars-hf": _NO_CONFIG.format("named by a notebook's log"),
    "deepseek-ai/DeepSeek-R1-0528-Qwen3-8B": _NO_CONFIG.format("a Qwen3-8B distill named by an Unsloth notebook"),
    "Llama-3 70B": "an informal name from an issue thread, not a Hugging Face id (the record says Meta-Llama-3-70B: "
                   "use meta-llama/Meta-Llama-3-70B)",
}
"""Names the shared logs use that have no config in the shared data, each with why: resolving them says so instead
of "unknown model" (``tests/test_name_resolution.py`` walks every name)."""


@dataclass(frozen=True)
class PublishedCount:
    """A model's published parameter total and the named physical reasons it differs from what vLLM serves.

    ``count`` None: the total is the file's ``_num_parameters``; otherwise it is quoted from the notes (``quote``,
    verified verbatim like the supplements). ``includes`` names ``calculator.params.REPORTED_COUNT_TERMS``;
    ``rounding`` is the precision of a rounded figure ("3.8B" -> 50e6)."""

    includes: tuple[str, ...] = ()
    count: int | None = None
    quote: Quote | None = None
    rounding: int | None = None
    counted_model: str | None = None
    """Catalog id whose architecture the total really counts, when the source files another model's total here."""
    evidence: LlmSizerEntry | None = None
    """The source's own entry, checked field by field, that shows which model the figure belongs to."""


@dataclass(frozen=True)
class LlmSizerEntry:
    """The fields of one entry of the original LLM Sizer's catalog (``LLM_SIZER_MODELS`` in the shared folder),
    checked verbatim at build time: the figures in ``_num_parameters`` come from it, so what that entry describes
    (its own id, name and architecture) says which model a figure belongs to."""

    hf_model_id: str
    fields: tuple[tuple[str, Any], ...]

    def describe(self) -> str:
        return ", ".join(f"{key} {value!r}" for key, value in self.fields)


LLM_SIZER_MODELS = Path("third_party/llm-sizer/src/data/models.json")
"""The original LLM Sizer's model catalog, relative to the shared folder (the parent of ``data/``)."""


_MTP_OWN_EMBEDDINGS = ("mtp", "mtp_embeddings")
"""DeepSeek-V3 layout: the checkpoint stores the MTP layer (model.layers.61) with its own embed_tokens and
shared_head.head; the published totals count them (671B + 14B = 685B, DeepSeek's README)."""

PUBLISHED_COUNTS: dict[str, PublishedCount] = {
    "Qwen/Qwen3-0.6B": PublishedCount(("embeddings_counted_twice",)),
    "deepseek-ai/DeepSeek-V3": PublishedCount(_MTP_OWN_EMBEDDINGS),
    "deepseek-ai/DeepSeek-R1": PublishedCount(_MTP_OWN_EMBEDDINGS),
    "deepseek-ai/DeepSeek-R1-0528": PublishedCount(_MTP_OWN_EMBEDDINGS),
    "deepseek-ai/DeepSeek-V3.2": PublishedCount(_MTP_OWN_EMBEDDINGS),
    "zai-org/GLM-4.5": PublishedCount(_MTP_OWN_EMBEDDINGS),
    "zai-org/GLM-4.5-Air": PublishedCount(_MTP_OWN_EMBEDDINGS),
    "openai/gpt-oss-120b": PublishedCount(("mxfp4_scales",)),
    "openai/gpt-oss-20b": PublishedCount(("mxfp4_scales",)),
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8": PublishedCount(
        ("mtp",), count=123_611_033_088,
        quote=Quote("nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-FP8.json",
                    "Parameter count of the BF16 sibling nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-BF16, quoted in a "
                    "GitHub test (modelsheet_cli catalog tests): API total 123,611,033,088")),
    "Qwen/Qwen3.6-27B": PublishedCount(
        ("mtp",), count=27_781_427_952,
        quote=Quote("Qwen--Qwen3.6-27B.json",
                    "1,199 tensors, total 27,781,427,952 parameters (all bf16; includes the vision tower, the "
                    "1-layer MTP head and the untied lm_head [248320, 5120])")),
    "google/gemma-3-27b-it": PublishedCount(
        counted_model="google/gemma-2-27b",
        evidence=LlmSizerEntry("google/gemma-3-27b-it", (
            ("id", "gemma-2-27b-it"), ("name", "gemma 2 27b it"), ("hidden_size", 4608), ("num_layers", 46),
            ("num_kv_heads", 16), ("intermediate_size", 36864), ("vocab_size", 256000),
            ("parameters_billions", 27.22712832),
        ))),
    "microsoft/Phi-4-mini-instruct": PublishedCount(
        count=3_800_000_000, rounding=50_000_000,
        quote=Quote("microsoft--Phi-4-mini-instruct.json",
                    "AMD-melliott/llm-sizer lists vocab_size 200064 and 3.8B parameters for this model")),
    "unsloth/Qwen2.5-7B-Instruct-bnb-4bit": PublishedCount(
        count=7_610_000_000, rounding=5_000_000,
        quote=Quote("unsloth--Qwen2.5-7B-Instruct-bnb-4bit.json", "7.61B parameters, 6.53B non-embedding")),
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": PublishedCount(
        count=400_000_000_000, rounding=5_000_000_000,
        quote=Quote("meta-llama--Llama-4-Maverick-17B-128E-Instruct.json",
                    "Total parameters: model card rounded figure ~400B total / 17B active")),
}
"""Published parameter totals per catalog id (``tests/test_model_catalog.py`` checks each within 0.5%, or within
its rounding), with the named reasons a total includes more than vLLM serves."""


# -----------------------------------------------------------------------------------------------------------


def model_id_from_file(path: Path) -> str:
    """``org--name.json`` -> ``org/name`` (only the first ``--`` separates the org)."""
    org, sep, name = path.stem.partition("--")
    return f"{org}/{name}" if sep else path.stem


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SystemExit(f"{path}: cannot read: {e}") from None


_INDEX_ROW = re.compile(
    r"^\|\s*(?P<id>[^|]+?)\s*\|\s*`(?P<file>[^`]+\.json)`\s*\|.*\|\s*(?P<doubt>[^|]*?)\s*\|\s*$"
)


def read_index_doubts(source: Path) -> dict[str, str]:
    """The 'doubt' column of INDEX.md per file name: a short caveat worth keeping with the catalog entry."""
    index = source / INDEX_FILE
    if not index.is_file():
        return {}
    doubts: dict[str, str] = {}
    for line in index.read_text(encoding="utf-8").splitlines():
        m = _INDEX_ROW.match(line)
        if m and m["doubt"]:
            doubts[m["file"]] = m["doubt"]
    return doubts


def verify_quotes(source: Path, configs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every supplement / alias quote must be verbatim in the named file's ``_notes`` (or in INDEX.md)."""
    index_text = (source / INDEX_FILE).read_text(encoding="utf-8") if (source / INDEX_FILE).is_file() else ""
    quotes = [(mid, q) for mid, s in SUPPLEMENTS.items() for q in s.quotes]
    quotes += [(mid, q) for mid, (_, q) in ALIASES.items()]
    quotes += [(mid, p.quote) for mid, p in PUBLISHED_COUNTS.items() if p.quote is not None]
    quotes += [(mid, quote) for mid, (_, quote) in UNREAD_PRECISION.items()]
    problems = []
    for mid, quote in quotes:
        if quote.file == INDEX_FILE:
            found = quote.text in index_text
        else:
            notes = (configs.get(quote.file) or {}).get("_notes") or []
            found = any(quote.text in str(note) for note in notes)
        if not found:
            problems.append(f"{mid}: quoted text not found in {quote.file}: {quote.text[:80]!r}...")
    return problems


def verify_llm_sizer_entries(source: Path) -> list[str]:
    """Every ``PublishedCount.evidence`` must match, field by field, the one LLM Sizer entry with that
    hf_model_id; and every ``counted_model`` must name a file of the shared folder."""
    path = source.parent.parent / LLM_SIZER_MODELS
    problems = []
    for mid, published in PUBLISHED_COUNTS.items():
        if published.counted_model is not None and not (source / f"{published.counted_model.replace('/', '--', 1)}"
                                                                     ".json").is_file():
            problems.append(f"{mid}: counted_model {published.counted_model!r} has no file in {source}")
        if published.evidence is None:
            continue
        if not path.is_file():
            problems.append(f"{mid}: {path} is missing: cannot check the LLM Sizer entry the count cites")
            continue
        entries = [m for m in _read_json(path).get("models", [])
                   if isinstance(m, dict) and m.get("hf_model_id") == published.evidence.hf_model_id]
        if len(entries) != 1:
            problems.append(f"{mid}: {path}: expected one entry with hf_model_id "
                            f"{published.evidence.hf_model_id!r}, found {len(entries)}")
            continue
        for key, value in published.evidence.fields:
            if entries[0].get(key) != value:
                problems.append(f"{mid}: {path}: entry {published.evidence.hf_model_id!r}: {key} is "
                                f"{entries[0].get(key)!r}, expected {value!r}")
    return problems


def apply_supplement(config: Mapping[str, Any], supplement: Supplement, model_id: str) -> dict[str, Any]:
    """A copy of ``config`` with the supplement's keys added to the language-model part (never overriding)."""
    merged = copy.deepcopy(dict(config))
    target = merged["text_config"] if isinstance(merged.get("text_config"), dict) else merged
    for key, value in supplement.keys.items():
        if target.get(key) is not None or (target is not merged and merged.get(key) is not None):
            raise SystemExit(f"{model_id}: supplement key {key!r} is already in the source file; remove it "
                             "from SUPPLEMENTS (supplements only fill gaps)")
        target[key] = copy.deepcopy(value)
    if supplement.vision_keys:
        vision = merged.get("vision_config")
        if not isinstance(vision, dict):
            raise SystemExit(f"{model_id}: supplement has vision_keys but the file has no vision_config")
        for key, value in supplement.vision_keys.items():
            if vision.get(key) is not None:
                raise SystemExit(f"{model_id}: supplement vision key {key!r} is already in the source file")
            vision[key] = copy.deepcopy(value)
    return merged


def _unsupported_reason(error: CatalogError, model_id: str, config: Mapping[str, Any]) -> str:
    reason = str(error).removeprefix(f"{model_id}: ")
    notes = " ".join(str(n) for n in config.get("_notes") or [])
    if "TRUNCATED" in notes and "lacks" in reason:
        reason += " (the source file is a truncated copy and its _notes do not state the missing value)"
    return reason


def build(source: Path, source_label: str) -> dict[str, Any]:
    """Convert every config in ``source``; the result is the JSON document to write (deterministic)."""
    if not source.is_dir():
        raise SystemExit(f"{source}: not a directory (pass --source)")
    files = sorted(source.glob("*.json"))
    configs = {f.name: _read_json(f) for f in files}
    ids = {model_id_from_file(f): f for f in files}
    stale = sorted((set(SUPPLEMENTS) | set(ALIASES) | set(PUBLISHED_COUNTS) | set(UNREAD_PRECISION)) - set(ids))
    problems = [f"{mid}: in SUPPLEMENTS/ALIASES but no such file in {source}" for mid in stale]
    problems += verify_quotes(source, configs)
    problems += verify_llm_sizer_entries(source)
    if problems:
        raise SystemExit("\n".join(problems))
    doubts = read_index_doubts(source)

    models: list[dict[str, Any]] = []
    unsupported: list[dict[str, str]] = []
    for model_id, path in sorted(ids.items()):
        config = configs[path.name]
        if not isinstance(config, dict):
            raise SystemExit(f"{path}: not a JSON object")
        notes: list[str] = []
        if doubts.get(path.name):
            notes.append(f"source doubt (INDEX.md): {doubts[path.name]}")
        supplement = SUPPLEMENTS.get(model_id)
        if supplement is not None:
            config = apply_supplement(config, supplement, model_id)
            notes.append(f"supplemented from the source notes: {supplement.why}")
            notes += [f"evidence outside the shared data: {e.source}: {e.text}" for e in supplement.external]
        source_text = config.get("_source")
        try:
            arch = arch_from_hf_config(
                config, model_id,
                source=str(source_text) if source_text else None,
                aliases=ALIASES.get(model_id, ((), None))[0],
                notes=tuple(notes),
            )
        except CatalogError as e:
            unsupported.append({"id": model_id, "reason": _unsupported_reason(e, model_id, config)})
            continue
        if model_id in UNREAD_PRECISION:
            if arch.quantization is not None:
                raise SystemExit(f"{model_id}: in UNREAD_PRECISION but its config now states a format; remove it")
            arch = arch.model_copy(update={"stored_precision_unread": UNREAD_PRECISION[model_id][0]})
        published = PUBLISHED_COUNTS.get(model_id)
        if published is not None:
            update: dict[str, Any] = {"reported_count_includes": published.includes}
            if published.count is not None:
                assert published.quote is not None
                update |= {"num_parameters_reported": published.count,
                           "num_parameters_reported_rounding": published.rounding,
                           "num_parameters_reported_source": f"{published.quote.file} _notes: "
                           f"{published.quote.text}"}
            elif arch.num_parameters_reported:
                update["num_parameters_reported_source"] = f"{path.name} _num_parameters"
            if published.counted_model is not None:
                assert published.evidence is not None
                update["num_parameters_reported_model"] = published.counted_model
                update["num_parameters_reported_source"] += (
                    f"; the figure is {published.counted_model}'s: the LLM Sizer entry it comes from "
                    f"({LLM_SIZER_MODELS}, hf_model_id {published.evidence.hf_model_id!r}) is "
                    f"{published.evidence.describe()}, i.e. that model's architecture filed under this id")
            arch = arch.model_copy(update=update)
        elif arch.num_parameters_reported:
            arch = arch.model_copy(update={"num_parameters_reported_source": f"{path.name} _num_parameters"})
        models.append(arch.model_dump(mode="json", exclude_defaults=True))
    known = {m["id"].lower() for m in models} | {u["id"].lower() for u in unsupported}
    for name, reason in sorted(UNSUPPORTED_NAMES.items()):
        if name.lower() in known:
            raise SystemExit(f"{name}: in UNSUPPORTED_NAMES but the shared data has a config for it; remove it")
        unsupported.append({"id": name, "reason": reason})
    unsupported.sort(key=lambda entry: entry["id"])
    return {
        "format": FORMAT,
        "generated_from": f"{source_label}/*.json ({len(files)} files) by scripts/build_model_catalog.py "
        "(with its SUPPLEMENTS and ALIASES)",
        "models": models,
        "unsupported": unsupported,
    }


def render(document: Mapping[str, Any]) -> str:
    """One line per model: diffs stay readable and the file stays small (no per-key indentation)."""

    def line(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    out = ["{"]
    out.append(f' "format": {line(document["format"])},')
    out.append(f' "generated_from": {line(document["generated_from"])},')
    for key in ("models", "unsupported"):
        items = document[key]
        out.append(f' "{key}": [')
        out += [f"  {line(item)}{',' if i < len(items) - 1 else ''}" for i, item in enumerate(items)]
        out.append(" ]," if key == "models" else " ]")
    out.append("}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE,
                        help="folder of <org>--<name>.json configs, relative to the repo root "
                        f"(default {DEFAULT_SOURCE})")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="catalog file to write or check")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the catalog file differs from a fresh build")
    args = parser.parse_args(argv)

    source = Path(args.source)
    if not source.is_absolute():
        source = REPO_ROOT / source
    # The label written into the file must not depend on how the same folder was named on the command line.
    same_as_default = source.resolve() == (REPO_ROOT / DEFAULT_SOURCE).resolve()
    text = render(build(source, DEFAULT_SOURCE if same_as_default else args.source))
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else None
        if current != text:
            print(f"{output} is out of date; run: python scripts/build_model_catalog.py", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    document = json.loads(text)
    print(f"wrote {output}: {len(document['models'])} models, {len(document['unsupported'])} unsupported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
