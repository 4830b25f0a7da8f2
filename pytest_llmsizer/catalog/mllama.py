"""Mllama (Llama-3.2-Vision, ``MllamaForConditionalGeneration``): cross-attention decoder layers and the tiled
vision tower, read precisely.

The generic reader prices a vision tower as a plain ViT and knows no cross-attention; Mllama's tower carries tile
and aspect-ratio embedding tables (74M parameters in the 11B) and 8 gated global layers besides the 32 local ones,
so it gets its own reader. The layout is vLLM's, as it built the model before removing it (0.7.0
``vllm/model_executor/models/mllama.py``; ``_PREVIOUSLY_SUPPORTED_MODELS`` gives 0.10.2 as the last release):

* language model: ``num_hidden_layers`` decoder layers; those in ``cross_attention_layers`` are
  ``MllamaCrossAttentionDecoderLayer`` (q/k/v/o shaped as in self-attention, plus q_norm and k_norm of head_dim
  each and two tanh gates: ``calculator.params`` prices them); ``embed_tokens`` has vocab_size + 8 rows,
  ``lm_head`` vocab_size;
* vision tower (``MllamaVisionModel``, hidden V, MLP width I, T = max_num_tiles, N = (image_size / patch)^2 + 1
  patches per tile, R = len(supported_aspect_ratios) + 1 aspect-ratio ids): patch embedding C x patch^2 x V
  (unfold + linear, no bias); class embedding V; gated position embedding 1 + N x V + R x T x N x V; pre- and
  post-tile embeddings R x T x V + 1 each; pre/post LayerNorms 4V; ``num_hidden_layers`` local and
  ``num_global_layers`` global encoder layers of 4V^2 (attention, no bias) + 2VI + I + V (CLIP MLP with biases) +
  4V (two LayerNorms), the global ones with two gates more;
* ``multi_modal_projector``: vision_output_dim x text hidden + text hidden (bias).

The tower's linears (QKV, o_proj, fc1, fc2, the patch linear) and the projector are tensor-parallel layers;
embedding tables, norms and gates are replicated (``VisionSpec.tp_split_parameters``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_llmsizer.catalog.arch import CrossAttentionSpec, VisionSpec
from pytest_llmsizer.errors import CatalogError

EXTRA_EMBEDDING_ROWS = 8
"""``MllamaTextModel.embed_tokens = VocabParallelEmbedding(config.vocab_size + 8, ...)``: the image-token rows
(the checkpoint's embed_tokens is [128264, 4096] for vocab 128256)."""

TOKEN_PATCH = 14
"""vLLM counts encoder tokens per tile as (image_size // 14)^2 + 1 with 14 written out
(``get_max_mllama_image_tokens``)."""

DEFAULT_ARCHITECTURE = "MllamaForConditionalGeneration"


def _vision_int(vc: Mapping[str, Any], key: str, model_id: str) -> int:
    value = vc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"{model_id}: config.json vision_config.{key} must be a positive integer for Mllama's "
                           f"tiled vision tower, got {value!r}")
    return value


def cross_attention_spec(config: Mapping[str, Any], layers: Any, num_layers: int, model_id: str
                         ) -> CrossAttentionSpec:
    """The cross-attention layers (``text_config.cross_attention_layers``) and the encoder tokens one image holds."""
    if (not isinstance(layers, list) or not layers
            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < num_layers for i in layers)
            or len(set(layers)) != len(layers)):
        raise CatalogError(f"{model_id}: config.json text_config.cross_attention_layers must list distinct layer "
                           f"indices in [0, {num_layers}), got {layers!r}")
    vc = config.get("vision_config")
    if not isinstance(vc, Mapping):
        raise CatalogError(f"{model_id}: config.json has cross_attention_layers but no vision_config object: the "
                           "cross-attention layers attend to the vision tower's output")
    tokens = _vision_int(vc, "max_num_tiles", model_id) * ((_vision_int(vc, "image_size", model_id) // TOKEN_PATCH)
                                                          ** 2 + 1)
    architectures = config.get("architectures")
    name = architectures[0] if isinstance(architectures, list) and architectures else DEFAULT_ARCHITECTURE
    return CrossAttentionSpec(architecture=str(name), layers=tuple(sorted(layers)), encoder_tokens_per_image=tokens)


def vision_spec(config: Mapping[str, Any], text_hidden: int, model_id: str) -> VisionSpec:
    """Mllama's vision tower and projector, parameter by parameter (see the module docstring)."""
    vc = config["vision_config"]
    v = _vision_int(vc, "hidden_size", model_id)
    inter = _vision_int(vc, "intermediate_size", model_id)
    patch = _vision_int(vc, "patch_size", model_id)
    tiles = _vision_int(vc, "max_num_tiles", model_id)
    local_layers = _vision_int(vc, "num_hidden_layers", model_id)
    global_layers = _vision_int(vc, "num_global_layers", model_id)
    channels = int(vc.get("num_channels") or 3)
    ratios = vc.get("supported_aspect_ratios")
    if not isinstance(ratios, list) or not ratios:
        raise CatalogError(f"{model_id}: config.json vision_config.supported_aspect_ratios must be a non-empty list "
                           f"(it sizes the tile embedding tables), got {ratios!r}")
    out_dim = vc.get("vision_output_dim")
    if out_dim is None and isinstance(vc.get("intermediate_layers_indices"), list):
        out_dim = v * (1 + len(vc["intermediate_layers_indices"]))  # final state + the saved intermediate ones
    if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim <= 0:
        raise CatalogError(f"{model_id}: config.json vision_config needs vision_output_dim (or "
                           f"intermediate_layers_indices) for the projector's input width, got {out_dim!r}")
    patches = (_vision_int(vc, "image_size", model_id) // patch) ** 2 + 1
    ratio_ids = len(ratios) + 1
    patch_linear = channels * patch * patch * v
    layer_linear = 4 * v * v + 2 * v * inter + inter  # qkv, o_proj, fc1 (+ its column-parallel bias), fc2
    layer_rest = v + 4 * v  # fc2's bias (row-parallel: whole on every rank), two LayerNorms (weight + bias)
    projector = out_dim * text_hidden + text_hidden  # ColumnParallelLinear with bias: both split over TP
    split = patch_linear + (local_layers + global_layers) * layer_linear + projector
    replicated = (
        v  # class embedding
        + 1 + patches * v + ratio_ids * tiles * patches * v  # gated position embedding (gate, table, tile table)
        + 2 * (ratio_ids * tiles * v + 1)  # pre- and post-tile aspect-ratio embeddings with their gates
        + 4 * v  # layernorm_pre, layernorm_post
        + (local_layers + global_layers) * layer_rest + 2 * global_layers  # + the global layers' two gates
    )
    return VisionSpec(num_parameters=split + replicated, hidden_size=v, num_layers=local_layers + global_layers,
                      intermediate_size=inter, tp_split_parameters=split)
