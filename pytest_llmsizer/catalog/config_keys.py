"""Every ``config.json`` key is understood or explained: read by the architecture reader, or listed here as one that
does not change memory, with the reason.

A key outside both is a fact about the model the calculator has not looked at. Nemotron-3-Super's ``moe_latent_size``
was one: ignored, it made a 120B model weigh 458.6e9 parameters and an estimate 3x too high, silently. Now such a
key is named in the estimate's assumptions ("not understood: the estimate may be wrong") and ``llmsizer estimate
--strict`` refuses it. ``tests/test_config_keys.py`` runs every shared config through this and fails on any key
outside both lists, and checks that every key claimed as read really appears in the reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

READ_TEXT_KEYS = frozenset({
    # sizes and layout
    "hidden_size", "n_embd", "d_model", "num_hidden_layers", "n_layer", "num_layers", "num_attention_heads",
    "n_head", "num_heads", "num_key_value_heads", "multi_query_group_num", "num_kv_heads", "multi_query",
    "multi_query_attention", "head_dim", "kv_channels", "v_head_dim", "vocab_size", "padded_vocab_size",
    "intermediate_size", "intermediate_size_mlp", "ffn_hidden_size", "ffn_dim", "n_inner", "word_embed_proj_dim",
    "tie_word_embeddings", "mlp_bias", "add_bias_linear", "attention_bias", "add_qkv_bias", "enable_bias",
    "attn_output_gate", "use_qk_norm", "hidden_act", "mlp_hidden_act", "model_type", "torch_dtype", "dtype",
    # context length (vLLM's derived max_model_len) and rotary cache
    "max_position_embeddings", "seq_length", "n_positions", "max_seq_len", "model_max_length",
    "max_sequence_length", "max_seq_length", "seq_len", "rope_scaling", "rope_parameters", "partial_rotary_factor",
    "rotary_dim",
    # attention kinds per layer
    "hybrid_override_pattern", "layer_types", "full_attention_interval", "attention_chunk_size",
    "no_rope_layer_interval", "no_rope_layers", "sliding_window", "sliding_window_size", "use_sliding_window",
    "sliding_window_pattern", "max_window_layers", "global_head_dim", "num_global_key_value_heads",
    "attention_k_eq_v", "cross_attention_layers", "num_kv_shared_layers", "hidden_size_per_layer_input",
    "vocab_size_per_layer_input", "use_double_wide_mlp",
    # MoE
    "n_routed_experts", "num_local_experts", "num_experts", "num_experts_per_tok", "experts_per_token",
    "top_k_experts", "moe_topk", "moe_intermediate_size", "expert_intermediate_size", "n_shared_experts",
    "num_shared_experts", "shared_expert_intermediate_size", "moe_shared_expert_intermediate_size",
    "shared_intermediate_size", "first_k_dense_replace", "moe_layer_freq", "interleave_moe_layer_step",
    "decoder_sparse_step", "mlp_only_layers", "enable_moe_block", "moe_latent_size", "moe_router_enable_expert_bias",
    # MLA and the DSA indexer
    "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "q_head_dim", "index_head_dim",
    "index_n_heads",
    # Gated DeltaNet and Mamba2
    "linear_num_value_heads", "linear_num_key_heads", "linear_key_head_dim", "linear_value_head_dim",
    "linear_conv_kernel_dim", "mamba_ssm_dtype", "mamba_ssm_cache_dtype", "mamba_num_heads", "mamba_n_heads",
    "mamba_head_dim", "mamba_d_head", "ssm_state_size", "mamba_d_state", "state_size", "n_groups", "mamba_n_groups",
    "conv_kernel", "mamba_d_conv", "expand", "use_conv_bias", "mamba_proj_bias",
    # multi-token prediction (parameter count; not loaded without speculative decoding)
    "num_nextn_predict_layers", "mtp_num_hidden_layers", "mtp_hybrid_override_pattern",
    # quantization, published totals, the multimodal projector's patch merge (Mistral-3 top level)
    "quantization_config", "_num_parameters", "spatial_merge_size",
})
"""Keys ``hf_config.arch_from_hf_config`` reads from the language-model part (``text_config`` merged over the top
level). A test checks that each appears in the reader's source."""

READ_VISION_KEYS = frozenset({
    "hidden_size", "vt_hidden_size", "embed_dim", "width", "num_hidden_layers", "depth", "vt_num_hidden_layers",
    "num_layers", "layers", "intermediate_size", "vt_intermediate_size", "mlp_dim", "patch_size",
    "spatial_patch_size", "temporal_patch_size", "num_position_embeddings", "out_hidden_size",
    "projector_output_dim", "text_hidden_size", "spatial_merge_size", "merge_kernel_size", "num_channels",
    "in_chans", "model_type", "hidden_act", "image_size", "position_embedding_size", "projector_input_dim",
    "vision_output_dim", "pixel_shuffle_ratio", "mm_hidden_size", "vision_use_head",
    # Mllama's tiled tower (catalog/mllama.py): tile and aspect-ratio embedding tables, gated global layers
    "max_num_tiles", "supported_aspect_ratios", "num_global_layers", "intermediate_layers_indices",
})
"""Keys ``hf_config._vision`` (and, for Mllama, ``mllama.vision_spec``) reads from ``vision_config``."""


def _why(reason: str, *keys: str) -> dict[str, str]:
    return dict.fromkeys(keys, reason)


NO_MEMORY_EFFECT: dict[str, str] = {
    **_why("metadata about the file (provenance, class names, library version), not the architecture",
           "_name_or_path", "_source", "_notes", "architectures", "transformers_version", "auto_map",
           "tokenizer_class", "custom_pipelines", "model_file", "task_specific_params", "id2label", "label2id",
           "problem_type", "return_dict", "output_attentions", "output_hidden_states", "torchscript",
           "chunk_size_feed_forward", "is_decoder", "add_cross_attention", "tie_encoder_decoder", "pruned_heads",
           "finetuning_task", "prefix", "use_return_dict", "_attn_implementation_autoset", "language_model_only"),
    **_why("shared-data annotation: a value read from the model's inference config; the catalog build supplements "
           "the real key from the file's notes", "_v_head_dim_from_inference_config",
           "_vocab_size_from_inference_config"),
    **_why("a token id: which token starts, ends, pads or marks an image; no tensor depends on it",
           "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
           "image_token_id", "image_token_index", "video_token_id", "vision_start_token_id", "vision_end_token_id",
           "vision_token_id", "audio_token_id", "boi_token_index", "eoi_token_index", "boi_token_id",
           "eoi_token_id", "image_end_token_id", "image_break_token_id"),
    **_why("training-only setting (dropout, initialisation, losses, caching flags): inference allocates nothing for "
           "it", "initializer_range", "initializer_factor", "attention_dropout", "hidden_dropout", "dropout",
           "resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_type", "summary_use_proj", "summary_activation",
           "summary_proj_to_labels", "summary_first_dropout", "use_cache", "gradient_checkpointing",
           "pretraining_tp", "layerdrop", "output_router_logits", "router_aux_loss_coef", "router_z_loss_coef",
           "aux_loss_alpha", "seq_aux", "z_loss_coef", "activation_dropout", "classifier_dropout",
           "ffn_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob", "mlp_dropout", "embd_dropout",
           "router_jitter_noise", "qk_layernorm_init", "use_flash_attn", "_attn_implementation",
           "use_mamba_kernels", "fused_bias_fc", "fused_dropout_add_ln", "fused_mlp"),
    **_why("a scalar in the computation (norm epsilon, rope frequency, logit scaling, softcapping): it changes "
           "values, not the shape of any tensor", "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon",
           "norm_eps", "rope_theta", "rope_local_base_freq", "rope_ratio", "original_rope", "use_mrope",
           "query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping", "logits_scaling",
           "attention_multiplier", "embedding_multiplier", "residual_multiplier", "scale_depth", "dim_model_base",
           "scale_emb", "mup_width_multiplier", "attn_scale", "rope_interleaved", "use_rope",
           "position_embedding_type", "apply_residual_connection_post_layernorm", "do_layer_norm_before",
           "normalization_type", "norm_type", "layernorm_type", "parallel_attn", "parallel_residual",
           "new_decoder_architecture", "alibi", "bias_dropout_fusion", "mamba_hidden_act",
           "original_max_position_embeddings", "rope_type", "time_step_limit", "time_step_min", "time_step_max",
           "time_step_floor", "mamba_dt_rank", "residual_in_fp32", "rescale_prenorm_residual"),
    **_why("expert routing arithmetic (group-limited top-k, score function, renormalisation, scaling): decides "
           "which experts run, not what is stored", "n_group", "topk_group", "num_expert_group", "use_grouped_topk",
           "norm_topk_prob", "routed_scaling_factor", "scoring_func", "topk_method", "moe_renormalize",
           "moe_router_activation_func", "moe_shared_expert_overlap", "index_topk", "router_topk",
           "moe_router_topk_scaling_factor"),
    **_why("Mamba2 SSD chunk length of the prefill kernel: vLLM aligns blocks to it only in mamba_cache_mode "
           "'all' (prefix caching of Mamba state), which the calculator does not model; the default mode holds "
           "one state per request whatever the chunk", "chunk_size"),
    **_why("GPT-2's attention span, equal to n_positions (which is read)", "n_ctx"),
    **_why("multi-token-prediction modules (MiniMax / Qwen3.5 MTP): vLLM loads them only with a speculative "
           "decoding config, which the calculator does not model; the catalog's parameter checks list MTP "
           "where a published total includes it", "mtp_transformer_layers", "num_mtp_modules", "use_mtp",
           "mtp_use_dedicated_embeddings"),
    **_why("generation default (a sampling top-k), not an architecture value: the experts per token are "
           "num_experts_per_tok", "top_k"),
    **_why("how images are cut into chunks before the vision encoder (Kimi-K2.5): input processing, not the "
           "tower's weights", "use_unified_vision_chunk"),
    **_why("null: the model has no audio tower (a non-null audio_config is reported as not understood)",
           "audio_config"),
}
"""Language-model keys that do not change memory, each with why. Generous on purpose: a user's own config.json
carries these (token ids, dropout, epsilons) and must not be flagged for them."""

NO_MEMORY_EFFECT_VISION: dict[str, str] = {
    **_why("metadata about the file, not the architecture", "architectures", "transformers_version",
           "_name_or_path", "torch_dtype", "dtype"),
    **_why("attention head count or head size of the vision tower: its projections are hidden x hidden whatever "
           "the split into heads", "num_attention_heads", "num_heads", "attention_heads", "vt_num_attention_heads",
           "head_dim", "global_head_dim", "num_key_value_heads"),
    **_why("a scalar in the computation (norm epsilon, rope frequency, initialisation, dropout): values, not "
           "shapes", "layer_norm_eps", "rms_norm_eps", "norm_eps", "rope_theta", "rope_parameters", "initializer_range",
           "attention_dropout", "dropout", "projector_hidden_act", "hidden_act_fn", "window_size",
           "fullatt_block_indexes", "tokens_per_second", "vision_feature_layer", "vision_feature_select_strategy",
           "max_position_embeddings", "pooling_kernel_size", "deepstack_visual_indexes"),
}
"""``vision_config`` keys that do not change the vision tower's weights, each with why (input resolution and
tiling change the encoder's activation during profiling, which the calculator folds into the activation peak)."""

_CONTAINERS = ("text_config", "llm_config", "language_config", "vision_config")


def unexplained_keys(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Keys of a config.json (top level, the language-model part, ``vision_config``) neither read nor explained,
    as JSON-path-like names (``text_config.foo``), sorted."""
    out: set[str] = set()
    for key, value in config.items():
        if key in _CONTAINERS:
            continue
        if key == "audio_config" and value is not None:
            out.add("audio_config (an audio tower is not priced)")
            continue
        if key not in READ_TEXT_KEYS and key not in NO_MEMORY_EFFECT:
            out.add(key)
    for name in ("text_config", "llm_config", "language_config"):
        inner = config.get(name)
        if isinstance(inner, Mapping):
            out.update(f"{name}.{key}" for key in inner
                       if key not in READ_TEXT_KEYS and key not in NO_MEMORY_EFFECT)
    vision = config.get("vision_config")
    if isinstance(vision, Mapping):
        out.update(f"vision_config.{key}" for key in vision
                   if key not in READ_VISION_KEYS and key not in NO_MEMORY_EFFECT_VISION)
    return tuple(sorted(out))
