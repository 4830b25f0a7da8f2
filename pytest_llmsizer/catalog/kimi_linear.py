"""Kimi-Linear (``kimi_linear``: Kimi Delta Attention + MLA) configs, translated to the generic reader's keys.

The released config nests its hybrid layout in ``linear_attn_config`` (``kda_layers`` / ``full_attn_layers``,
1-based, as vLLM's kimi_linear.py reads them) and names the expert fan-out ``num_experts_per_token``. Both are
rewritten here into the keys ``hf_config.arch_from_hf_config`` already understands, so every other fact (MLA on the
full-attention layers, MoE, first_k_dense_replace) is read by the common code (../shared/notes/architectures.md 4).

KDA state per layer per request equals a Gated-DeltaNet state with equal key and value heads: conv (kernel - 1) x
3 x heads x head_dim in the model dtype, recurrent heads x head_dim x head_dim in fp32 (``kda_state_dtype``), so the
layers are described as ``linear`` with ``state_dtype`` float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_llmsizer.errors import CatalogError

READ_KEYS = frozenset({"linear_attn_config", "num_experts_per_token"})
"""Kimi-Linear keys this translation reads (the rest go through the common reader)."""

NO_MEMORY_EFFECT = {
    "mla_use_nope": "the MLA layers apply no RoPE, but the 64 rope dimensions are still projected and cached "
                    "(architectures.md 4): sizes unchanged",
}


def explained(unexplained: tuple[str, ...]) -> tuple[str, ...]:
    """The common reader's unexplained keys, less those this module reads or explains."""
    return tuple(k for k in unexplained if k not in READ_KEYS and k not in NO_MEMORY_EFFECT)


def _layer_list(linear: Mapping[str, Any], key: str, model_id: str, num_layers: int) -> list[int]:
    values = linear.get(key)
    if not isinstance(values, list) or not all(isinstance(v, int) and 1 <= v <= num_layers for v in values):
        raise CatalogError(f"{model_id}: linear_attn_config.{key} must list 1-based layer numbers (1..{num_layers}), "
                           f"got {values!r}")
    return values


def normalise(cfg: Mapping[str, Any], model_id: str) -> dict[str, Any]:
    """The config with Kimi-Linear's layout and KDA sizes in the generic keys (``layer_types``, ``linear_*``)."""
    out = dict(cfg)
    linear = cfg.get("linear_attn_config")
    if not isinstance(linear, Mapping):
        raise CatalogError(f"{model_id}: kimi_linear config lacks the linear_attn_config object")
    layers = cfg.get("num_hidden_layers")
    if not isinstance(layers, int) or layers <= 0:
        raise CatalogError(f"{model_id}: config.json lacks num_hidden_layers")
    kda = set(_layer_list(linear, "kda_layers", model_id, layers))
    full = set(_layer_list(linear, "full_attn_layers", model_id, layers))
    if kda & full or len(kda | full) != layers:
        raise CatalogError(f"{model_id}: kda_layers and full_attn_layers must split the {layers} layers between them")
    out["layer_types"] = ["linear_attention" if i in kda else "full_attention" for i in range(1, layers + 1)]
    for key in ("num_heads", "head_dim", "short_conv_kernel_size"):
        if not isinstance(linear.get(key), int) or linear[key] <= 0:
            raise CatalogError(f"{model_id}: linear_attn_config.{key} must be a positive integer")
    out["linear_num_key_heads"] = out["linear_num_value_heads"] = linear["num_heads"]
    out["linear_key_head_dim"] = out["linear_value_head_dim"] = linear["head_dim"]
    out["linear_conv_kernel_dim"] = linear["short_conv_kernel_size"]
    out.setdefault("mamba_ssm_dtype", "float32")  # KDA's recurrent state is fp32 whatever the model dtype
    if "num_experts_per_tok" not in out and "num_experts_per_token" in out:
        out["num_experts_per_tok"] = out["num_experts_per_token"]
    return out
