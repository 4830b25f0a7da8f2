"""Model architecture in the project's own format: only what decides memory, normalised across model families.

Hugging Face configs name the same fact a dozen ways (``n_head``/``num_attention_heads``, ``hybrid_override_pattern``
vs ``layer_types``, ``text_config`` nesting, ...). The calculator reads one shape instead: this one. Layers are
described one by one (``layer_attention`` and ``layer_mlp``) because hybrid models mix sliding, chunked, linear
(Gated DeltaNet), Mamba and full attention, and MoE models mix dense and expert MLPs, and each kind costs memory
differently.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AttentionKind = Literal["full", "sliding", "chunked", "linear", "mamba", "none"]
"""Per layer: full attention; sliding-window; chunked-local (Llama-4); Gated-DeltaNet linear attention; Mamba2; none."""

MlpKind = Literal["dense", "moe", "none"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MlaSpec(_Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3/R1, Kimi-K2): the KV cache holds one compressed latent per token."""

    kv_lora_rank: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)
    q_lora_rank: int | None = Field(default=None, gt=0, description="None: q is a plain projection")


class IndexerSpec(_Frozen):
    """DeepSeek-V3.2 sparse-attention (DSA) indexer: adds an fp8 key cache per token per layer."""

    index_head_dim: int = Field(gt=0)
    index_n_heads: int = Field(gt=0)


class CompressedAttentionSpec(_Frozen):
    """DeepSeek-V4 attention: one shared 512-wide latent (fp8_ds_mla), a 128-token sliding window on every layer, and
    on layers with ``compress_ratio`` 4 or 128 a compressed KV (plus, at ratio 4, a lightning-indexer key cache).
    Sizes follow ../shared/notes/architectures.md section 2; the calculator's home for it is
    ``calculator/deepseek_v4.py``."""

    compress_ratios: tuple[int, ...] = Field(description="per decoder layer: 0 (window only), 4 or 128")
    head_dim: int = Field(gt=0, description="latent width (512)")
    qk_rope_head_dim: int = Field(gt=0)
    q_lora_rank: int = Field(gt=0)
    o_lora_rank: int = Field(gt=0)
    o_groups: int = Field(gt=0)
    index_n_heads: int = Field(gt=0)
    index_head_dim: int = Field(gt=0)
    hc_mult: int = Field(default=1, gt=0, description="hyper-connection streams (mHC)")
    expert_format: Literal["mxfp4", "nvfp4"] | None = Field(
        default=None, description="routed experts' storage when it differs from the other linear layers: mxfp4 "
        "(expert_dtype fp4) or nvfp4 (ModelOpt moe_quant_algo NVFP4)")


class MoeSpec(_Frozen):
    num_experts: int = Field(gt=0)
    experts_per_token: int = Field(gt=0)
    expert_intermediate_size: int = Field(gt=0)
    shared_intermediate_size: int = Field(default=0, ge=0, description="total width of the shared expert(s)")
    shared_expert_gate: bool = Field(default=False, description="Qwen2-MoE style sigmoid gate on the shared expert")
    gated: bool = Field(default=True, description="SwiGLU experts (3 matrices) vs plain (2 matrices, e.g. relu2)")
    expert_bias: bool = Field(default=False, description="experts carry biases (gpt-oss)")
    latent_size: int | None = Field(default=None, gt=0, description="LatentMoE (Nemotron-3-Super moe_latent_size): "
                                    "routed experts work in this width; replicated fc1/fc2 latent projections "
                                    "map hidden <-> latent")
    router_bias: bool = Field(default=False, description="an fp32 e_score_correction_bias per expert (DeepSeek-V3, "
                              "Nemotron-H)")


class LinearAttentionSpec(_Frozen):
    """Gated DeltaNet (Qwen3-Next, Qwen3.5): a fixed-size recurrent state per request instead of a per-token cache."""

    conv_kernel: int = Field(gt=0)
    num_key_heads: int = Field(gt=0)
    num_value_heads: int = Field(gt=0)
    key_head_dim: int = Field(gt=0)
    value_head_dim: int = Field(gt=0)
    state_dtype: str | None = Field(default=None, description="recurrent state dtype (mamba_ssm_dtype), e.g. float32")


class MambaSpec(_Frozen):
    """Mamba2 mixer (Nemotron-H, Bamba, Jamba): conv state + SSM state per request."""

    num_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    state_size: int = Field(gt=0)
    n_groups: int = Field(gt=0)
    conv_kernel: int = Field(gt=0)
    ssm_state_dtype: str | None = Field(default=None, description="e.g. float32 when the SSM state is kept in fp32")
    conv_bias: bool = Field(default=True, description="conv1d has a bias (use_conv_bias)")
    proj_bias: bool = Field(default=False, description="in_proj / out_proj have biases (mamba_proj_bias)")


class VisionSpec(_Frozen):
    """A vision (or audio) tower. vLLM replicates it on every tensor-parallel rank by default."""

    num_parameters: int = Field(ge=0, description="estimated from the tower's config when not read")
    hidden_size: int | None = None
    num_layers: int | None = None
    intermediate_size: int | None = None
    tp_split_parameters: int = Field(default=0, ge=0, description="parameters the model code always splits over "
                                     "tensor-parallel ranks, whatever mm_encoder_tp_mode says (Mllama's tower is "
                                     "built from QKV/column/row-parallel linears); the rest is replicated")


class CrossAttentionSpec(_Frozen):
    """Decoder layers that attend to the vision tower's output instead of the text (Mllama, Llama-3.2-Vision).

    Such a layer has the projections of a self-attention layer plus q/k RMS norms and two tanh gates; its KV cache
    holds the image's encoder tokens, not text tokens. vLLM served it only on the V0 engine, whose cache engine
    allocates every decoder layer the same pages from one pool (``CacheEngine``: ``num_hidden_layers`` layers),
    so for KV purposes these layers count as full-attention layers (``layer_attention`` says "full")."""

    architecture: str = Field(description="the config's architectures[0], the name vLLM's model registry refuses "
                              "after it removed the model")
    layers: tuple[int, ...] = Field(description="decoder layer indices (0-based) that are cross-attention layers")
    encoder_tokens_per_image: int = Field(gt=0, description="vision tokens one image holds in the cross-attention "
                                          "KV: max_num_tiles x ((image_size / 14)^2 + 1) (V0 "
                                          "get_max_mllama_image_tokens)")


class QuantSpec(_Frozen):
    """How a checkpoint's linear layers are stored. Embeddings, lm_head, norms and routers stay 16-bit."""

    method: Literal[
        "fp8", "int8", "awq", "gptq", "mxfp4", "nvfp4", "bitsandbytes-4bit", "bitsandbytes-8bit", "int4",
    ]
    bits: int = Field(ge=1, le=16)
    group_size: int | None = Field(default=None, description="scale group along the input dimension; -1 = none")
    zero_point: bool = Field(default=True, description="asymmetric: packed zero points stored per group")
    desc_act: bool = False
    fp8_scaling: Literal["tensor", "channel", "block"] | None = None
    weight_block_size: tuple[int, int] | None = None
    double_quant: bool = False
    not_converted: tuple[str, ...] = Field(
        default=(), description="module kinds left unquantized: attention, linear_attention, shared_expert, "
        "dense_mlp, vision, mtp (from modules_to_not_convert / ignore lists)"
    )
    not_converted_layers: tuple[tuple[int, str], ...] = Field(
        default=(), description="(decoder layer, module kind) pairs left unquantized beyond the kind-wide "
        "not_converted: attention, mamba, dense_mlp, experts, shared_expert, linear_attention, or all (the whole "
        "layer); from ignore-list entries that name a layer (Meta's 405B FP8 keeps layers 0 and 125, NVIDIA's "
        "Nemotron-3-Nano FP8 the Mamba layers next to attention)"
    )
    kv_cache_dtype: str | None = Field(default=None, description="KV dtype the checkpoint asks for (ModelOpt)")
    source_method: str | None = Field(default=None, description="the quant_method as the config wrote it")
    online: bool = Field(default=False, description="quantized by vLLM while loading a 16-bit checkpoint "
                         "(--quantization fp8 / bitsandbytes): the 16-bit weights are read first, then replaced")


class ModelArch(_Frozen):
    """The memory-relevant architecture of one model or checkpoint."""

    id: str = Field(description="Hugging Face id (org/name)")
    aliases: tuple[str, ...] = ()
    model_type: str
    source: str | None = None
    notes: tuple[str, ...] = ()

    hidden_size: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0, description="from config head_dim when given, else hidden / heads")
    v_head_dim: int | None = Field(default=None, gt=0, description="None = head_dim")
    vocab_size: int = Field(gt=0)
    extra_embedding_rows: int = Field(default=0, ge=0, description="rows embed_tokens holds beyond vocab_size "
                                      "(Mllama: 8 image-token rows; lm_head keeps vocab_size)")
    intermediate_size: int = Field(ge=0, description="dense MLP width")
    tie_word_embeddings: bool = False
    mlp_gated: bool = True
    mlp_bias: bool = False
    attention_bias: bool = Field(default=False, description="q/k/v projections carry biases (Qwen2, OPT)")
    attention_out_gate: bool = Field(default=False, description="Qwen3-Next style output gate doubles q_proj")
    qk_norm: bool = False
    sandwich_norms: bool = Field(default=False, description="each layer also normalises the attention and MLP "
                                 "outputs (post_attention / pre_ and post_feedforward RMSNorms: Gemma-2/3): four "
                                 "hidden-size norms per layer, not two")
    max_position_embeddings: int | None = None
    derived_max_model_len: int | None = Field(default=None, description="vLLM's derived max_model_len when it "
                                              "differs from max_position_embeddings (rope scaling factor)")
    rotary_dim: int | None = Field(default=None, description="dims rotated by RoPE; None = no rotary cache")

    global_head_dim: int | None = Field(default=None, gt=0, description="head_dim of full-attention layers when it "
                                        "differs from the sliding layers' (Gemma-4 global_head_dim)")
    global_kv_heads: int | None = Field(default=None, gt=0, description="KV heads of full-attention layers when "
                                        "they differ (Gemma-4 num_global_key_value_heads)")
    global_k_eq_v: bool = Field(default=False, description="full-attention layers have no v_proj: values = keys "
                                "(Gemma-4 attention_k_eq_v)")
    dense_mlp_with_moe: bool = Field(default=False, description="MoE layers also run a dense MLP of "
                                     "intermediate_size (Gemma-4 enable_moe_block)")

    layer_attention: tuple[AttentionKind, ...]
    layer_mlp: tuple[MlpKind, ...]
    sliding_window: int | None = None
    attention_chunk_size: int | None = None

    mla: MlaSpec | None = None
    indexer: IndexerSpec | None = None
    moe: MoeSpec | None = None
    linear_attention: LinearAttentionSpec | None = None
    mamba: MambaSpec | None = None
    vision: VisionSpec | None = None
    cross_attention: CrossAttentionSpec | None = None
    compressed_attention: CompressedAttentionSpec | None = None
    num_mtp_layers: int = Field(default=0, ge=0, description="multi-token-prediction layers (not loaded by default)")
    mtp_layer_attention: tuple[AttentionKind, ...] = Field(
        default=(), description="layer kinds of one MTP step when the config spells them out (Nemotron-H "
        "mtp_hybrid_override_pattern); empty = one decoder layer like the last one")
    mtp_layer_mlp: tuple[MlpKind, ...] = ()

    dtype: str | None = Field(default=None, description="torch_dtype of the checkpoint")
    quantization: QuantSpec | None = None
    num_parameters_reported: int | None = Field(default=None, description="a total read from a public source")
    num_parameters_reported_source: str | None = Field(default=None, description="where the reported total is "
                                                       "quoted (file and note)")
    num_parameters_reported_rounding: int | None = Field(default=None, description="precision of a rounded "
                                                         "published figure (3.8B -> 50e6)")
    stored_precision_unread: str | None = Field(
        default=None, description="set when the shared data says this checkpoint's stored format (quantization_config)"
        " was not read although the evidence points to a quantized one: the why, stated with every estimate that "
        "does not name the format (the catalog prices it 16-bit)")
    num_parameters_reported_model: str | None = Field(
        default=None, description="catalog id of the model the reported total really counts, when the source "
        "attributes another model's total to this one (the evidence is in num_parameters_reported_source)")
    reported_count_includes: tuple[str, ...] = Field(
        default=(), description="named physical reasons the reported total differs from the served inventory "
        "(calculator.params.REPORTED_COUNT_TERMS): mtp, mtp_embeddings, embeddings_counted_twice, mxfp4_scales")
    unexplained_config_keys: tuple[str, ...] = Field(
        default=(), description="config keys neither read by the architecture reader nor on the list of keys "
        "that do not change memory (catalog.config_keys): the estimate may be wrong")

    @property
    def max_model_len_limit(self) -> int | None:
        """The longest max_model_len vLLM accepts without VLLM_ALLOW_LONG_MAX_MODEL_LEN (its default, too)."""
        return self.derived_max_model_len or self.max_position_embeddings

    @property
    def num_layers(self) -> int:
        return len(self.layer_attention)

    @property
    def value_head_dim(self) -> int:
        return self.v_head_dim or self.head_dim

    @model_validator(mode="after")
    def _consistent(self) -> ModelArch:
        if len(self.layer_attention) != len(self.layer_mlp):
            raise ValueError(
                f"layer_attention has {len(self.layer_attention)} entries but layer_mlp has {len(self.layer_mlp)}"
            )
        kinds = set(self.layer_attention)
        if "sliding" in kinds and not self.sliding_window:
            raise ValueError("sliding layers need sliding_window")
        if "chunked" in kinds and not self.attention_chunk_size:
            raise ValueError("chunked layers need attention_chunk_size")
        if "linear" in kinds and self.linear_attention is None:
            raise ValueError("linear-attention layers need linear_attention")
        if "mamba" in kinds and self.mamba is None:
            raise ValueError("mamba layers need mamba")
        if "moe" in self.layer_mlp and self.moe is None:
            raise ValueError("moe layers need moe")
        if self.cross_attention is not None:
            bad = [i for i in self.cross_attention.layers if not 0 <= i < len(self.layer_attention)]
            if bad or len(set(self.cross_attention.layers)) != len(self.cross_attention.layers):
                raise ValueError(f"cross_attention.layers must be distinct layer indices below "
                                 f"{len(self.layer_attention)}, got {list(self.cross_attention.layers)}")
        return self
