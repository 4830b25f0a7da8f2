"""Read a Hugging Face ``config.json`` (any of the families we know) into a ``ModelArch``.

One function per concern (attention layout, MLP layout, MoE, MLA, linear attention, Mamba, vision, quantization)
so that a new family usually needs only a key alias, not a new code path. A config we cannot read precisely is an
error, never a silent default: a wrong head_dim or a missing KV-head count is exactly the fault that made the
original calculator 4x off (see llm-sizer-origin.md section 6).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pytest_llmsizer.catalog import mllama
from pytest_llmsizer.catalog.arch import (
    AttentionKind,
    IndexerSpec,
    LinearAttentionSpec,
    MambaSpec,
    MlaSpec,
    MlpKind,
    ModelArch,
    MoeSpec,
    QuantSpec,
    VisionSpec,
)
from pytest_llmsizer.catalog.config_keys import unexplained_keys
from pytest_llmsizer.errors import CatalogError

Config = Mapping[str, Any]

# Families whose MLP is a plain two-matrix MLP (fc1/fc2) rather than a gated (SwiGLU) three-matrix one.
PLAIN_MLP_TYPES = frozenset({"opt", "gpt2", "RefinedWebModel", "falcon", "gpt_neox", "bloom", "phi", "starcoder2"})
# Families with q/k/v biases.
QKV_BIAS_TYPES = frozenset({"qwen2", "qwen2_vl", "qwen2_5_vl", "qwen2_moe", "opt", "gpt2", "bloom", "gpt_oss"})
# Families whose HF config class defaults tie_word_embeddings to True.
TIED_BY_DEFAULT_TYPES = frozenset({"opt", "gpt2", "RefinedWebModel", "falcon"})
# Families whose MoE router carries an fp32 e_score_correction_bias per expert (noaux_tc routing).
ROUTER_BIAS_TYPES = frozenset({"deepseek_v3", "deepseek_v32", "kimi_k2", "nemotron_h", "glm4_moe", "minimax_m2"})
SANDWICH_NORM_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text"})
"""Families whose decoder layer has four RMSNorms (input, post_attention, pre_feedforward, post_feedforward: HF
``Gemma2DecoderLayer`` / ``Gemma3DecoderLayer``). With them the inventory reproduces the published totals of
gemma-2-9b-it, gemma-3-1b-it and (the figure llm-sizer files under gemma-3-27b-it) Gemma-2-27B to the parameter."""
QK_NORM_TYPES = frozenset({"qwen3", "qwen3_moe", "qwen3_next", "qwen3_vl_moe_text", "qwen3_5_moe_text",
                           "gemma3", "gemma3_text", "gemma4_text", "qwen3_vl_moe", "qwen3_5_moe", "olmo2"})


def _first(cfg: Config, *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return value
    return default


MAX_DIMENSION = 2**31
"""No real width, head count or vocabulary comes near 2^31 (frameworks store them as int32)."""
MAX_LAYERS = 10_000
"""Real models have at most a few hundred layers. The architecture holds one entry per layer, so an absurd count in a
config embedded in a profile (``model.config``) must be refused before it allocates billions of entries."""


def _require_int(cfg: Config, model_id: str, *keys: str, maximum: int = MAX_DIMENSION) -> int:
    value = _first(cfg, *keys)
    if value is None:
        raise CatalogError(f"{model_id}: config.json lacks {' / '.join(keys)}")
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not value.is_integer()) or value <= 0):  # is_integer: False for inf/nan
        raise CatalogError(f"{model_id}: config.json {keys[0]} must be a positive integer, got {value!r}")
    if value > maximum:
        raise CatalogError(f"{model_id}: config.json {keys[0]} is implausibly large (more than {maximum})")
    return int(value)


def text_config(config: Config) -> dict[str, Any]:
    """The language-model part of a (possibly multimodal) config: ``text_config`` merged over the top level."""
    merged = {k: v for k, v in config.items() if k not in ("text_config", "vision_config", "audio_config")}
    inner = config.get("text_config") or config.get("llm_config") or config.get("language_config")
    if isinstance(inner, Mapping):
        merged.update({k: v for k, v in inner.items() if v is not None})
        merged["model_type"] = inner.get("model_type") or config.get("model_type")
    return merged


# ---------------------------------------------------------------------------------------------------------------
# layer layout


_PATTERN_ATTENTION: dict[str, AttentionKind] = {"M": "mamba", "*": "full", "E": "none", "-": "none"}
_PATTERN_MLP: dict[str, MlpKind] = {"M": "none", "*": "none", "E": "moe", "-": "dense"}


def _pattern_layers(pattern: str, key: str, model_id: str) -> tuple[list[AttentionKind], list[MlpKind]]:
    """Nemotron-H block pattern: M = Mamba2 mixer, * = attention, E = MoE, - = dense MLP (one mixer per block)."""
    try:
        return [_PATTERN_ATTENTION[c] for c in pattern], [_PATTERN_MLP[c] for c in pattern]
    except KeyError as e:
        raise CatalogError(f"{model_id}: unknown {key} symbol {e}") from None


def _layer_attention(cfg: Config, num_layers: int, model_id: str) -> tuple[list[AttentionKind], list[MlpKind] | None]:
    """Per-layer attention kinds, and for Nemotron-H-style patterns also the per-layer MLP kinds."""
    pattern = cfg.get("hybrid_override_pattern")
    if isinstance(pattern, str):
        if len(pattern) != num_layers:
            raise CatalogError(f"{model_id}: hybrid_override_pattern has {len(pattern)} chars for {num_layers} layers")
        return _pattern_layers(pattern, "hybrid_override_pattern", model_id)

    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        if len(layer_types) < num_layers:
            raise CatalogError(f"{model_id}: layer_types has {len(layer_types)} entries for {num_layers} layers")
        kinds: list[AttentionKind] = []
        for t in layer_types[:num_layers]:
            if t in ("full_attention", "attention", "global_attention"):
                kinds.append("full")
            elif t in ("sliding_attention", "local_attention", "sliding_window_attention"):
                kinds.append("sliding")
            elif t in ("linear_attention",):
                kinds.append("linear")
            elif t in ("mamba", "mamba2"):
                kinds.append("mamba")
            elif t in ("chunked_attention",):
                kinds.append("chunked")
            else:
                raise CatalogError(f"{model_id}: unknown layer type {t!r} in layer_types")
        return kinds, None

    interval = cfg.get("full_attention_interval")
    if interval and ("linear_num_value_heads" in cfg or "linear_key_head_dim" in cfg):
        return ["full" if (i + 1) % int(interval) == 0 else "linear" for i in range(num_layers)], None

    chunk = cfg.get("attention_chunk_size")
    if chunk:
        # Llama-4: every no_rope_layer_interval-th layer (default 4) is a global NoPE layer, the rest chunked.
        step = int(cfg.get("no_rope_layer_interval") or 4)
        no_rope = cfg.get("no_rope_layers")
        if isinstance(no_rope, list) and len(no_rope) >= num_layers:
            return ["chunked" if no_rope[i] else "full" for i in range(num_layers)], None
        return ["full" if (i + 1) % step == 0 else "chunked" for i in range(num_layers)], None

    window = _sliding_window(cfg)
    if window:
        pattern_n = cfg.get("sliding_window_pattern")
        model_type = str(cfg.get("model_type", ""))
        if pattern_n:
            n = int(pattern_n)
            return ["full" if (i + 1) % n == 0 else "sliding" for i in range(num_layers)], None
        if model_type.startswith("gemma3"):
            return ["full" if (i + 1) % 6 == 0 else "sliding" for i in range(num_layers)], None
        if model_type == "gemma2":
            return ["sliding" if i % 2 == 0 else "full" for i in range(num_layers)], None
        max_window_layers = cfg.get("max_window_layers")
        if max_window_layers is not None and model_type.startswith("qwen"):
            # Qwen2: layers below max_window_layers use full attention, the rest sliding.
            return ["full" if i < int(max_window_layers) else "sliding" for i in range(num_layers)], None
        return ["sliding"] * num_layers, None
    return ["full"] * num_layers, None


MAX_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
                   "max_sequence_length", "max_seq_length", "seq_len")
"""The keys vLLM's ``_get_and_verify_max_len`` takes the minimum of."""
_ROPE_TYPES_NOT_SCALING_LENGTH = ("su", "longrope", "llama3")


def derived_max_model_len(cfg: Config) -> int | None:
    """vLLM's derived max_model_len (``_get_and_verify_max_len``): the smallest length key, times the rope scaling
    factor (from ``original_max_position_embeddings`` for yarn), except for su/longrope/llama3 rope types and
    Gemma-3, whose max_position_embeddings is already scaled. A user max_model_len above it is refused unless
    VLLM_ALLOW_LONG_MAX_MODEL_LEN is set; without one, it is vLLM's default."""
    lengths = [int(cfg[key]) for key in MAX_LENGTH_KEYS if is_finite_positive(cfg.get(key))]
    if not lengths:
        return None
    derived = float(min(lengths))
    rope = cfg.get("rope_scaling")
    if not isinstance(rope, Mapping):
        rope = cfg.get("rope_parameters")
    if isinstance(rope, Mapping) and "gemma3" not in str(cfg.get("model_type")):
        rope_type = str(rope.get("rope_type") or rope.get("type") or "default")
        if rope_type not in _ROPE_TYPES_NOT_SCALING_LENGTH:
            factor = rope.get("factor", 1.0)
            factor = float(factor) if is_finite_positive(factor) else 1.0
            if rope_type == "yarn" and is_finite_positive(rope.get("original_max_position_embeddings")):
                derived = float(rope["original_max_position_embeddings"])
            derived *= factor
    return int(derived)


def _sliding_window(cfg: Config) -> int | None:
    """The window, only when the model really uses one (Qwen2 ships ``sliding_window`` with it disabled)."""
    if cfg.get("use_sliding_window") is False:
        return None
    window = _first(cfg, "sliding_window", "sliding_window_size")
    if not window:
        return None
    window = int(window)
    max_pos = cfg.get("max_position_embeddings")
    if max_pos and window >= int(max_pos) and not cfg.get("layer_types"):
        return None  # a window as long as the context is no window
    return window


def _layer_mlp(cfg: Config, num_layers: int, is_moe: bool) -> list[MlpKind]:
    if not is_moe:
        return ["dense"] * num_layers
    kinds: list[MlpKind] = ["moe"] * num_layers
    first_dense = int(cfg.get("first_k_dense_replace") or 0)
    for i in range(min(first_dense, num_layers)):
        kinds[i] = "dense"
    freq = cfg.get("moe_layer_freq")
    if isinstance(freq, int) and freq > 1:
        for i in range(num_layers):
            if i % freq != 0:
                kinds[i] = "dense"
    if isinstance(freq, list) and len(freq) >= num_layers:
        kinds = ["moe" if freq[i] else "dense" for i in range(num_layers)]
    step = cfg.get("interleave_moe_layer_step")
    if step and int(step) > 1:
        kinds = ["moe" if (i + 1) % int(step) == 0 else "dense" for i in range(num_layers)]
    sparse_step = cfg.get("decoder_sparse_step")
    if sparse_step and int(sparse_step) > 1:
        kinds = ["moe" if (i + 1) % int(sparse_step) == 0 else "dense" for i in range(num_layers)]
    for i in cfg.get("mlp_only_layers") or []:
        if 0 <= int(i) < num_layers:
            kinds[int(i)] = "dense"
    return kinds


# ---------------------------------------------------------------------------------------------------------------
# components


def _moe(cfg: Config, hidden: int, model_id: str) -> MoeSpec | None:
    experts = _first(cfg, "n_routed_experts", "num_local_experts", "num_experts")
    if not experts or int(experts) <= 1 or cfg.get("enable_moe_block") is False:
        return None
    top_k = _first(cfg, "num_experts_per_tok", "experts_per_token", "top_k_experts", "moe_topk")
    if not top_k:
        raise CatalogError(f"{model_id}: MoE config lacks num_experts_per_tok")
    expert_inter = _first(cfg, "moe_intermediate_size", "expert_intermediate_size")
    if expert_inter is None:
        expert_inter = cfg.get("intermediate_size")  # Mixtral, gpt-oss: experts use intermediate_size
    if not expert_inter:
        raise CatalogError(f"{model_id}: MoE config lacks moe_intermediate_size")
    n_shared = int(_first(cfg, "n_shared_experts", "num_shared_experts", default=0) or 0)
    if str(cfg.get("model_type")) == "llama4_text":
        n_shared = 1  # Llama-4 MoE layers always add one shared expert of the expert width
    shared = _first(cfg, "shared_expert_intermediate_size", "moe_shared_expert_intermediate_size",
                    "shared_intermediate_size")
    if shared is None:
        shared = n_shared * int(expert_inter)
    act = str(_first(cfg, "mlp_hidden_act", "hidden_act", default="silu"))
    return MoeSpec(
        num_experts=int(experts),
        experts_per_token=int(top_k),
        expert_intermediate_size=int(expert_inter),
        shared_intermediate_size=int(shared),
        shared_expert_gate=str(cfg.get("model_type", "")).startswith(("qwen2_moe", "qwen3_next", "qwen3_5")),
        gated=act not in ("relu2", "gelu", "relu"),
        expert_bias=str(cfg.get("model_type")) == "gpt_oss",
        latent_size=int(cfg["moe_latent_size"]) if cfg.get("moe_latent_size") else None,
        router_bias=bool(cfg.get("moe_router_enable_expert_bias")
                         or str(cfg.get("model_type")) in ROUTER_BIAS_TYPES),
    )


def _mla(cfg: Config) -> MlaSpec | None:
    if not cfg.get("kv_lora_rank"):
        return None
    rope = int(cfg["qk_rope_head_dim"])
    nope = int(cfg.get("qk_nope_head_dim") or 128)
    return MlaSpec(
        kv_lora_rank=int(cfg["kv_lora_rank"]),
        qk_rope_head_dim=rope,
        qk_nope_head_dim=nope,
        v_head_dim=int(cfg.get("v_head_dim") or nope),
        q_lora_rank=int(cfg["q_lora_rank"]) if cfg.get("q_lora_rank") else None,
    )


def _linear_attention(cfg: Config) -> LinearAttentionSpec | None:
    if "linear_num_value_heads" not in cfg:
        return None
    return LinearAttentionSpec(
        conv_kernel=int(cfg.get("linear_conv_kernel_dim") or 4),
        num_key_heads=int(cfg["linear_num_key_heads"]),
        num_value_heads=int(cfg["linear_num_value_heads"]),
        key_head_dim=int(cfg["linear_key_head_dim"]),
        value_head_dim=int(cfg["linear_value_head_dim"]),
        state_dtype=_first(cfg, "mamba_ssm_dtype", "mamba_ssm_cache_dtype"),
    )


def _mamba(cfg: Config, hidden: int) -> MambaSpec | None:
    if not any(k in cfg for k in ("mamba_num_heads", "mamba_n_heads", "ssm_state_size", "mamba_d_state")):
        return None
    head_dim = int(_first(cfg, "mamba_head_dim", "mamba_d_head", default=64))
    heads = _first(cfg, "mamba_num_heads", "mamba_n_heads")
    if heads is None:
        heads = int(cfg.get("expand", 2)) * hidden // head_dim
    return MambaSpec(
        num_heads=int(heads),
        head_dim=head_dim,
        state_size=int(_first(cfg, "ssm_state_size", "mamba_d_state", "state_size", default=128)),
        n_groups=int(_first(cfg, "n_groups", "mamba_n_groups", default=1)),
        conv_kernel=int(_first(cfg, "conv_kernel", "mamba_d_conv", default=4)),
        ssm_state_dtype=_first(cfg, "mamba_ssm_cache_dtype", "mamba_ssm_dtype"),
        conv_bias=bool(cfg.get("use_conv_bias", True)),
        proj_bias=bool(cfg.get("mamba_proj_bias", False)),
    )


GATED_VISION_TYPES = frozenset({"qwen2_5_vl"})
"""Vision towers whose MLP is gated (SwiGLU, three matrices): Qwen2.5-VL's ViT."""
LEARNED_POSITION_VISION_TYPES = frozenset({"siglip_vision_model", "llama4_vision_model"})
"""Vision towers with a learned position table of (image_size / patch_size)^2 entries (+1 class token for Llama-4)."""


def _vision(config: Config) -> VisionSpec | None:
    """Estimate a vision tower's parameters from its config: layers x (4 h^2 attention + 2 or 3 h I MLP) + patch
    embedding + position table (+ SigLIP's post-norm and pooling head) + projector into the language model. For
    Gemma-3-27B this is exact: 416,866,032 + 6,194,304 (``tests/test_model_catalog.py`` spells it out)."""
    vc = config.get("vision_config")
    if not isinstance(vc, Mapping):
        return None
    hidden = _first(vc, "hidden_size", "vt_hidden_size", "mm_hidden_size", "embed_dim", "width")
    layers = _first(vc, "num_hidden_layers", "depth", "vt_num_hidden_layers", "num_layers", "layers")
    inter = _first(vc, "intermediate_size", "vt_intermediate_size", "mlp_dim")
    if not hidden or not layers:
        return None  # a partial vision config (depth unknown): cannot be priced, and saying 0 would be a lie
    hidden, layers = int(hidden), int(layers)
    inter = int(inter or 4 * hidden)
    vision_type = str(vc.get("model_type") or config.get("model_type") or "")
    patch = _first(vc, "patch_size", "spatial_patch_size") or 14
    patch = int(patch[0] if isinstance(patch, list) else patch)
    channels = int(_first(vc, "num_channels", "in_chans", default=3))
    temporal = int(vc.get("temporal_patch_size") or 1)
    mlp_mats = 3 if vision_type in GATED_VISION_TYPES or str(vc.get("hidden_act")) == "silu" else 2
    per_layer = 4 * hidden * hidden + 4 * hidden + mlp_mats * hidden * inter + inter + hidden + 4 * hidden
    patch_embed = channels * patch * patch * temporal * hidden + hidden
    positions = int(_first(vc, "num_position_embeddings", "position_embedding_size", default=0) or 0)
    if not positions and vision_type in LEARNED_POSITION_VISION_TYPES and vc.get("image_size"):
        positions = (int(vc["image_size"]) // patch) ** 2 + (1 if vision_type == "llama4_vision_model" else 0)
    head = 2 * hidden if vision_type == "siglip_vision_model" else 0  # SigLIP's post_layernorm (weight + bias)
    if vc.get("vision_use_head"):  # SigLIP attention-pooling head: one attention block + MLP + probe
        head = 4 * hidden * hidden + 2 * hidden * inter + 2 * hidden
    # projector into the language model
    out_hidden = _first(vc, "out_hidden_size", "projector_output_dim", "text_hidden_size")
    merge = vc.get("spatial_merge_size") or vc.get("merge_kernel_size") or config.get("spatial_merge_size") or 1
    merge = int(merge[0] if isinstance(merge, list) else merge)
    projector = 0
    if vc.get("pixel_shuffle_ratio") and vc.get("projector_input_dim"):
        # Llama-4 vision adapter: pixel shuffle (h / r^2 channels) -> projector_input_dim -> projector_output_dim
        shuffled = int(hidden / float(vc["pixel_shuffle_ratio"]) ** 2)
        projector = shuffled * int(vc["projector_input_dim"]) + int(vc["projector_input_dim"]) * int(out_hidden or 0)
        # then multi_modal_projector: vision_output_dim -> the language model's hidden size
        projector += int(vc.get("vision_output_dim") or 0) * int(text_config(config).get("hidden_size") or 0)
    elif out_hidden:
        merged = hidden * merge * merge
        projector = merged * merged + merged * int(out_hidden)
    elif config.get("model_type") == "gemma3":
        # Gemma3MultiModalProjector: mm_input_projection_weight (vision hidden x text hidden) and mm_soft_emb_norm
        projector = hidden * int(text_config(config).get("hidden_size") or 0) + hidden
    total = layers * per_layer + patch_embed + positions * hidden + head + projector
    return VisionSpec(num_parameters=int(total), hidden_size=hidden, num_layers=layers, intermediate_size=inter)


_ALWAYS_16_BIT = re.compile(r"lm_head|embed|norm|\brouter\b|mlp\.gate\b(?!_)|shared_expert_gate|\.gate$")
"""Modules every format leaves in 16 bit anyway (embeddings, lm_head, norms, MoE routers): listing them in an
ignore list says nothing about the linear layers."""

_NOT_CONVERTED_RULES: tuple[tuple[str, str], ...] = (
    (r"linear_attn", "linear_attention"),
    (r"self_attn|\.attn\b|mixer\.[qkvo]_proj", "attention"),
    (r"shared_expert", "shared_expert"),
    (r"visual|vision|vit\b|multi_modal_projector|mm_projector", "vision"),
    (r"\bmtp\b|nextn", "mtp"),
)


def _not_converted(patterns: list[str]) -> tuple[str, ...]:
    """Map module name patterns (``modules_to_not_convert``, ``ignore``) to the module kinds we price."""
    kinds: set[str] = set()
    for pattern in patterns:
        text = str(pattern).replace("re:", "")
        if _ALWAYS_16_BIT.search(text):
            continue
        for regex, kind in _NOT_CONVERTED_RULES:
            if re.search(regex, text):
                kinds.add(kind)
                break
        else:
            if "mlp" in text and "expert" not in text:
                kinds.add("dense_mlp")
    return tuple(sorted(kinds))


_LAYER_ENTRY = re.compile(r"layers\.(\d+)(?:\.(.+))?$")
_NOT_DECODER = re.compile(r"visual|vision|vit\b|multi_modal_projector|mm_projector|\bmtp\b|nextn")
_LAYER_MODULE_RULES: tuple[tuple[str, str], ...] = (
    (r"linear_attn", "linear_attention"),
    (r"self_attn|\.?attn\b|[qkvo]_proj$", "attention"),
    (r"mixer\.(in_proj|out_proj)$|^mixer$", "mamba"),
    (r"shared_expert", "shared_expert"),
    (r"experts", "experts"),
    (r"mlp", "dense_mlp"),
)


def _not_converted_layers(patterns: list[str], kind_wide: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """Ignore-list entries that name one decoder layer (``model.layers.0``, ``backbone.layers.4.mixer.in_proj``)
    -> (layer, module kind) pairs, "all" for a whole layer. Kinds already left 16-bit everywhere are dropped;
    modules that are never quantized (conv1d, norms) say nothing."""
    pairs: set[tuple[int, str]] = set()
    for pattern in patterns:
        text = str(pattern)
        if text.startswith("re:") or "*" in text or _ALWAYS_16_BIT.search(text) or _NOT_DECODER.search(text):
            continue
        m = _LAYER_ENTRY.search(text)
        if not m:
            continue
        layer, rest = int(m.group(1)), m.group(2) or ""
        if not rest:
            pairs.add((layer, "all"))
            continue
        for regex, kind in _LAYER_MODULE_RULES:
            if re.search(regex, rest):
                if kind not in kind_wide:
                    pairs.add((layer, kind))
                break
    return tuple(sorted(pairs))


def quant_from_config(qc: Mapping[str, Any], model_id: str) -> QuantSpec | None:
    """Normalise the many ``quantization_config`` dialects (HF, AutoAWQ, GPTQ, compressed-tensors, ModelOpt)."""
    if not qc:
        return None
    inner = qc.get("quantization") if isinstance(qc.get("quantization"), Mapping) else None  # ModelOpt
    method = str(qc.get("quant_method") or (inner or {}).get("quant_algo") or "").lower()
    if method == "modelopt" and str(qc.get("quant_algo") or "").lower() == "nvfp4":
        method = "nvfp4"  # ModelOpt NVFP4 written into config.json (nvidia/*-NVFP4): quant_algo at the top level
    ignore = list(qc.get("modules_to_not_convert") or qc.get("ignore") or qc.get("exclude_modules")
                  or (inner or {}).get("exclude_modules") or [])
    not_converted = _not_converted(ignore)
    spec = _quant_spec(qc, inner, method, not_converted, model_id)
    layers = _not_converted_layers(ignore, not_converted) if spec is not None else ()
    return spec.model_copy(update={"not_converted_layers": layers}) if layers and spec is not None else spec


def _quant_spec(qc: Mapping[str, Any], inner: Mapping[str, Any] | None, method: str, not_converted: tuple[str, ...],
                model_id: str) -> QuantSpec | None:
    """The QuantSpec of one quantization_config dialect (``quant_from_config`` adds per-layer exceptions)."""
    kv_dtype = None
    if inner and inner.get("kv_cache_quant_algo"):
        kv_dtype = str(inner["kv_cache_quant_algo"]).lower()
    if method in ("nvfp4",):
        return QuantSpec(method="nvfp4", bits=4, group_size=int((inner or qc).get("group_size") or 16),
                         zero_point=False, not_converted=not_converted, kv_cache_dtype=kv_dtype,
                         source_method=method)
    if method == "fp8" and inner is not None:  # ModelOpt FP8: per-tensor scales
        return QuantSpec(method="fp8", bits=8, fp8_scaling="tensor", zero_point=False,
                         not_converted=not_converted, kv_cache_dtype=kv_dtype, source_method="modelopt")
    if method == "fp8":
        block = qc.get("weight_block_size")
        return QuantSpec(method="fp8", bits=8, zero_point=False,
                         fp8_scaling="block" if block else "tensor",
                         weight_block_size=tuple(block) if block else None,
                         not_converted=not_converted, source_method=method)
    if method == "fbgemm_fp8":  # FBGEMM FP8 (Meta's Llama-3.1 FP8 releases): FP8 rowwise = one scale per channel
        return QuantSpec(method="fp8", bits=8, fp8_scaling="channel", zero_point=False,
                         not_converted=not_converted, source_method=method)
    if method == "mxfp4":
        return QuantSpec(method="mxfp4", bits=4, group_size=32, zero_point=False, not_converted=not_converted,
                         source_method=method)
    if method in ("awq", "gptq", "awq_marlin", "gptq_marlin", "") and (stated := qc.get("bits") or qc.get("w_bit")):
        bits = int(stated)
        group = int(qc.get("group_size") or qc.get("q_group_size") or 128)
        kind: Literal["awq", "gptq"] = "awq" if "awq" in method or "w_bit" in qc else "gptq"
        zero = bool(qc.get("zero_point", True)) if kind == "awq" else True  # GPTQ stores qzeros even when sym
        return QuantSpec(method=kind, bits=bits, group_size=group, zero_point=zero,
                         desc_act=bool(qc.get("desc_act", False)), not_converted=not_converted,
                         source_method=method or kind)
    if method == "bitsandbytes":
        if qc.get("load_in_8bit"):
            return QuantSpec(method="bitsandbytes-8bit", bits=8, zero_point=False, not_converted=not_converted,
                             source_method=method)
        return QuantSpec(method="bitsandbytes-4bit", bits=4, group_size=64, zero_point=False,
                         double_quant=bool(qc.get("bnb_4bit_use_double_quant", False)),
                         not_converted=not_converted, source_method=method)
    if method == "compressed-tensors":
        groups = qc.get("config_groups") or {}
        weights = next((g.get("weights") for g in groups.values() if isinstance(g, Mapping)), None)
        if not weights:
            raise CatalogError(f"{model_id}: compressed-tensors config without config_groups.weights")
        bits = int(weights.get("num_bits") or 8)
        wtype = str(weights.get("type") or "int")
        strategy = str(weights.get("strategy") or "tensor")
        if wtype == "float" and bits == 8:
            return QuantSpec(method="fp8", bits=8, zero_point=False,
                             fp8_scaling="channel" if strategy == "channel" else
                             ("block" if strategy == "block" else "tensor"),
                             not_converted=not_converted, source_method=method)
        if wtype == "float" and bits == 4:
            return QuantSpec(method="nvfp4", bits=4, group_size=int(weights.get("group_size") or 16),
                             zero_point=False, not_converted=not_converted, source_method=method)
        if bits == 8:
            return QuantSpec(method="int8", bits=8, zero_point=False, not_converted=not_converted,
                             source_method=method)
        return QuantSpec(method="int4", bits=bits, group_size=int(weights.get("group_size") or 128),
                         zero_point=not bool(weights.get("symmetric", True)), not_converted=not_converted,
                         source_method=method)
    raise CatalogError(f"{model_id}: unsupported quantization_config quant_method {method!r}")


# ---------------------------------------------------------------------------------------------------------------


def _kimi_explained(unexplained: tuple[str, ...]) -> tuple[str, ...]:
    from pytest_llmsizer.catalog.kimi_linear import explained  # the keys its translation reads or explains

    return explained(unexplained)


def _refuse_unmodelled(cfg: Config, model_id: str) -> None:
    """Features the calculator does not price: refusing is better than a silent error (the key is read here). Each
    reason says what vLLM builds or allocates that the estimate would miss."""
    if cfg.get("hidden_size_per_layer_input") and cfg.get("vocab_size_per_layer_input"):
        raise CatalogError(f"{model_id}: per-layer input embeddings (Gemma-3n hidden_size_per_layer_input) are not "
                           "priced: vLLM loads embed_tokens_per_layer (vocab_size_per_layer_input x layers x "
                           "hidden_size_per_layer_input) and per_layer_model_projection besides the usual weights")
    if cfg.get("num_kv_shared_layers"):
        raise CatalogError(f"{model_id}: KV sharing (num_kv_shared_layers) is not modelled: vLLM gives the last "
                           "num_kv_shared_layers layers no KV cache of their own (they read an earlier layer's), "
                           "so the calculator would price KV pages vLLM never allocates")
    if cfg.get("use_double_wide_mlp"):
        raise CatalogError(f"{model_id}: double-wide MLPs (use_double_wide_mlp) are not modelled: the KV-shared "
                           "layers' MLP is 2 x intermediate_size wide, which the calculator would price at "
                           "intermediate_size")
    embed_dim, hidden = cfg.get("word_embed_proj_dim"), _first(cfg, "hidden_size", "n_embd", "d_model")
    if embed_dim and hidden and embed_dim != hidden:
        raise CatalogError(f"{model_id}: OPT word_embed_proj_dim {embed_dim} differs from hidden_size {hidden}: "
                           "vLLM builds a word_embed_proj_dim-wide embedding and replicated project_in / "
                           "project_out linears, which the calculator does not price")


def arch_from_hf_config(config: Config, model_id: str, *, source: str | None = None,
                        aliases: tuple[str, ...] = (), notes: tuple[str, ...] = ()) -> ModelArch:
    """Build a ``ModelArch`` from a config.json dict (``text_config`` nesting handled)."""
    if not isinstance(config, Mapping):
        raise CatalogError(f"{model_id}: config.json must be a JSON object")
    cfg = text_config(config)
    model_type = str(cfg.get("model_type") or "unknown")
    if model_type == "kimi_linear":
        from pytest_llmsizer.catalog.kimi_linear import normalise  # nested hybrid layout -> generic keys

        cfg = normalise(cfg, model_id)
    if model_type == "deepseek_v4" or cfg.get("compress_ratios"):
        from pytest_llmsizer.catalog.deepseek_v4 import deepseek_v4_arch  # its own reader: compressed attention

        v4_qc = cfg.get("quantization_config") or config.get("quantization_config")
        v4_reported = config.get("_num_parameters")
        return deepseek_v4_arch(
            config, cfg, model_id, moe=_moe(cfg, _require_int(cfg, model_id, "hidden_size"), model_id),
            quantization=quant_from_config(v4_qc, model_id) if isinstance(v4_qc, Mapping) and v4_qc else None,
            source=source, aliases=aliases, notes=notes,
            reported=int(v4_reported) if isinstance(v4_reported, (int, float)) and v4_reported else None)
    _refuse_unmodelled(cfg, model_id)

    hidden = _require_int(cfg, model_id, "hidden_size", "n_embd", "d_model")
    num_layers = _require_int(cfg, model_id, "num_hidden_layers", "n_layer", "num_layers", maximum=MAX_LAYERS)
    heads = _require_int(cfg, model_id, "num_attention_heads", "n_head", "num_heads")
    if cfg.get("multi_query") and "num_key_value_heads" not in cfg:
        kv_heads = 1  # Falcon-7B multi-query
    elif cfg.get("multi_query_attention") is False and "num_key_value_heads" not in cfg:
        kv_heads = heads  # ChatGLM / GLM-4 without multi-query: multi_query_group_num is then unused
    else:
        kv_heads = int(_first(cfg, "num_key_value_heads", "multi_query_group_num", "num_kv_heads", default=heads))
    mla = _mla(cfg)
    head_dim = _first(cfg, "head_dim", "kv_channels")
    if mla is not None:
        head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        if cfg.get("q_head_dim") and int(cfg["q_head_dim"]) != head_dim:
            raise CatalogError(f"{model_id}: q_head_dim {cfg['q_head_dim']} is not qk_nope_head_dim + "
                               f"qk_rope_head_dim = {head_dim}")
    elif head_dim is None:
        if hidden % heads:
            raise CatalogError(f"{model_id}: no head_dim and hidden_size {hidden} is not divisible by {heads} heads")
        head_dim = hidden // heads
    vocab = _require_int(cfg, model_id, "vocab_size", "padded_vocab_size")
    cross = None
    if cfg.get("cross_attention_layers"):  # Mllama: its own reader for the cross layers and the tiled tower
        cross = mllama.cross_attention_spec(config, cfg["cross_attention_layers"], num_layers, model_id)
    moe = _moe(cfg, hidden, model_id)
    inter = _first(cfg, "intermediate_size_mlp", "intermediate_size", "ffn_hidden_size", "ffn_dim", "n_inner")
    if inter is None:
        inter = 4 * hidden if model_type in PLAIN_MLP_TYPES else 0
    attention, mlp_from_pattern = _layer_attention(cfg, num_layers, model_id)
    mlp = mlp_from_pattern or _layer_mlp(cfg, num_layers, moe is not None)
    if moe is None and "moe" in mlp:
        raise CatalogError(f"{model_id}: layer pattern names MoE layers but the config has no experts")
    window = _sliding_window(cfg) if "sliding" in attention else None
    if "sliding" in attention and not window:
        window = int(_first(cfg, "sliding_window", "sliding_window_size", default=0)) or None
    partial = float(_first(cfg, "partial_rotary_factor", default=1.0) or 1.0)
    rope_params = cfg.get("rope_parameters")
    if isinstance(rope_params, Mapping) and rope_params.get("partial_rotary_factor"):
        partial = float(rope_params["partial_rotary_factor"])
    rotary_dim = cfg.get("rotary_dim")
    if mla is not None:
        rotary_dim = mla.qk_rope_head_dim
    elif rotary_dim is None and model_type not in ("opt", "gpt2"):
        rotary_dim = int(head_dim * partial)
    indexer = None
    if cfg.get("index_head_dim") and cfg.get("index_n_heads"):
        indexer = IndexerSpec(index_head_dim=int(cfg["index_head_dim"]), index_n_heads=int(cfg["index_n_heads"]))
    qc = cfg.get("quantization_config") or config.get("quantization_config")
    dtype = _first(cfg, "torch_dtype", "dtype")
    if dtype is None:
        dtype = _first(config, "torch_dtype", "dtype")
    reported = config.get("_num_parameters")
    mtp_attention: list[AttentionKind] = []
    mtp_mlp: list[MlpKind] = []
    if isinstance(cfg.get("mtp_hybrid_override_pattern"), str):
        mtp_attention, mtp_mlp = _pattern_layers(cfg["mtp_hybrid_override_pattern"], "mtp_hybrid_override_pattern",
                                                 model_id)
    max_position = int(_first(cfg, "max_position_embeddings", "seq_length", "n_positions", default=0)) or None
    derived = derived_max_model_len(cfg)
    return ModelArch(
        id=model_id,
        aliases=aliases,
        model_type=model_type,
        source=source,
        notes=notes,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=int(head_dim),
        v_head_dim=mla.v_head_dim if mla else (int(cfg["v_head_dim"]) if cfg.get("v_head_dim") else None),
        vocab_size=vocab,
        extra_embedding_rows=mllama.EXTRA_EMBEDDING_ROWS if cross is not None else 0,
        intermediate_size=int(inter),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", model_type.startswith("gemma")
                                         or model_type in TIED_BY_DEFAULT_TYPES)),
        mlp_gated=model_type not in PLAIN_MLP_TYPES,
        mlp_bias=bool(cfg.get("mlp_bias") or cfg.get("add_bias_linear") or model_type in ("opt", "gpt2")),
        attention_bias=bool(cfg.get("attention_bias") or cfg.get("add_qkv_bias") or cfg.get("enable_bias")
                            or model_type in QKV_BIAS_TYPES),
        attention_out_gate=bool(cfg.get("attn_output_gate", model_type == "qwen3_next")),
        global_head_dim=int(cfg["global_head_dim"]) if cfg.get("global_head_dim") else None,
        global_kv_heads=int(cfg["num_global_key_value_heads"]) if cfg.get("num_global_key_value_heads") else None,
        global_k_eq_v=bool(cfg.get("attention_k_eq_v")),
        dense_mlp_with_moe=bool(moe is not None and cfg.get("enable_moe_block") and cfg.get("intermediate_size")),
        qk_norm=bool(cfg.get("use_qk_norm", model_type in QK_NORM_TYPES)),
        sandwich_norms=model_type in SANDWICH_NORM_TYPES,
        max_position_embeddings=max_position,
        derived_max_model_len=derived if derived != max_position else None,
        rotary_dim=int(rotary_dim) if rotary_dim else None,
        layer_attention=tuple(attention),
        layer_mlp=tuple(mlp),
        sliding_window=window,
        attention_chunk_size=int(cfg["attention_chunk_size"]) if "chunked" in attention else None,
        mla=mla,
        indexer=indexer,
        moe=moe,
        linear_attention=_linear_attention(cfg),
        mamba=_mamba(cfg, hidden),
        vision=mllama.vision_spec(config, hidden, model_id) if cross is not None else _vision(config),
        cross_attention=cross,
        num_mtp_layers=int(_first(cfg, "num_nextn_predict_layers", "mtp_num_hidden_layers", default=0) or 0),
        mtp_layer_attention=tuple(mtp_attention),
        mtp_layer_mlp=tuple(mtp_mlp),
        dtype=str(dtype).replace("torch.", "") if dtype else None,
        quantization=quant_from_config(qc, model_id) if isinstance(qc, Mapping) and qc else None,
        num_parameters_reported=int(reported) if isinstance(reported, (int, float)) and reported else None,
        unexplained_config_keys=_kimi_explained(unexplained_keys(config)) if model_type == "kimi_linear"
        else unexplained_keys(config),
    )


def is_finite_positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
