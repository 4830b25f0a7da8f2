"""DeepSeek-V4 (Flash, Pro) configs in the project's architecture format.

V4 replaces MLA's latent cache with compressed attention (``compress_ratios``: per layer 0, 4 or 128), a 128-token
sliding window on every layer, a lightning indexer on the ratio-4 layers, grouped low-rank output projections
(``o_lora_rank``, ``o_groups``) and hyper-connections (``hc_mult``). None of that fits the generic reader, so the
keys are read here, strictly (a missing key is an error, never a default), and carried in
``CompressedAttentionSpec``; ``calculator/deepseek_v4.py`` prices them (../shared/notes/architectures.md section 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pytest_llmsizer.catalog.arch import AttentionKind, CompressedAttentionSpec, MlpKind, ModelArch, MoeSpec, QuantSpec
from pytest_llmsizer.catalog.config_keys import unexplained_keys
from pytest_llmsizer.errors import CatalogError

ALLOWED_RATIOS = (0, 4, 128)

READ_KEYS = frozenset({"compress_ratios", "expert_dtype", "hc_mult", "o_groups", "o_lora_rank"})
"""V4 keys this reader uses (beyond the common ones of ``config_keys.READ_TEXT_KEYS``)."""

NO_MEMORY_EFFECT = {
    "compress_rope_theta": "RoPE base of the compressed entries: changes angles, not sizes",
    "hc_eps": "hyper-connection normalisation epsilon: a constant, no tensor",
    "hc_sinkhorn_iters": "Sinkhorn iterations of the hyper-connection mixer: compute, not memory",
    "num_hash_layers": "the first layers route by a token-id hash table (vocab x top-k int32, about 3 MB per layer) "
                       "instead of a learned gate: under 0.01% of the weights, priced as the router",
}
"""V4 keys that do not change memory (or change it by less than 0.01%), each with the reason."""


def _int(cfg: Mapping[str, Any], model_id: str, key: str) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"{model_id}: DeepSeek-V4 config needs a positive integer {key}, got {value!r}")
    return value


def deepseek_v4_arch(config: Mapping[str, Any], cfg: Mapping[str, Any], model_id: str, *, moe: MoeSpec | None,
                     quantization: QuantSpec | None, source: str | None, aliases: tuple[str, ...],
                     notes: tuple[str, ...], reported: int | None) -> ModelArch:
    """A ``ModelArch`` for a ``deepseek_v4`` config (``config`` as read, ``cfg`` merged from ``text_config``)."""
    layers = _int(cfg, model_id, "num_hidden_layers")
    ratios = cfg.get("compress_ratios")
    if not isinstance(ratios, list) or not all(isinstance(r, int) and r in ALLOWED_RATIOS for r in ratios):
        raise CatalogError(f"{model_id}: compress_ratios must be a list of 0 / 4 / 128, got {ratios!r}")
    if len(ratios) < layers:
        raise CatalogError(f"{model_id}: compress_ratios has {len(ratios)} entries for {layers} layers")
    if moe is None:
        raise CatalogError(f"{model_id}: DeepSeek-V4 config without routed experts")
    expert_dtype = cfg.get("expert_dtype")
    if expert_dtype not in (None, "fp4", "fp8", "bf16"):
        raise CatalogError(f"{model_id}: unknown expert_dtype {expert_dtype!r} (expected fp4, fp8 or bf16)")
    qc = cfg.get("quantization_config")
    moe_algo = str(qc.get("moe_quant_algo") or "").lower() if isinstance(qc, Mapping) else ""
    expert_format: Literal["mxfp4", "nvfp4"] | None = (
        "nvfp4" if moe_algo == "nvfp4" else ("mxfp4" if expert_dtype == "fp4" else None))
    spec = CompressedAttentionSpec(
        compress_ratios=tuple(ratios[:layers]),  # the extra entries cover the MTP layer(s), not loaded by default
        head_dim=_int(cfg, model_id, "head_dim"),
        qk_rope_head_dim=_int(cfg, model_id, "qk_rope_head_dim"),
        q_lora_rank=_int(cfg, model_id, "q_lora_rank"),
        o_lora_rank=_int(cfg, model_id, "o_lora_rank"),
        o_groups=_int(cfg, model_id, "o_groups"),
        index_n_heads=_int(cfg, model_id, "index_n_heads"),
        index_head_dim=_int(cfg, model_id, "index_head_dim"),
        hc_mult=int(cfg.get("hc_mult") or 1),
        expert_format=expert_format,
    )
    window = _int(cfg, model_id, "sliding_window")
    dtype = cfg.get("torch_dtype") or cfg.get("dtype")
    full: AttentionKind = "full"  # every layer; its compression is in ``spec``
    moe_mlp: MlpKind = "moe"
    return ModelArch(
        id=model_id,
        aliases=aliases,
        model_type="deepseek_v4",
        source=source,
        notes=notes,
        hidden_size=_int(cfg, model_id, "hidden_size"),
        num_attention_heads=_int(cfg, model_id, "num_attention_heads"),
        num_kv_heads=_int(cfg, model_id, "num_key_value_heads"),
        head_dim=spec.head_dim,
        vocab_size=_int(cfg, model_id, "vocab_size"),
        intermediate_size=0,
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        max_position_embeddings=_int(cfg, model_id, "max_position_embeddings"),
        rotary_dim=spec.qk_rope_head_dim,
        layer_attention=(full,) * layers,
        layer_mlp=(moe_mlp,) * layers,
        sliding_window=window,
        moe=moe,
        compressed_attention=spec,
        num_mtp_layers=int(cfg.get("num_nextn_predict_layers") or 0),
        dtype=str(dtype).replace("torch.", "") if dtype else None,
        quantization=quantization,
        num_parameters_reported=reported,
        unexplained_config_keys=tuple(k for k in unexplained_keys(config)
                                      if k not in READ_KEYS and k not in NO_MEMORY_EFFECT),
    )
