"""Weight bytes per GPU: the parameter inventory priced by storage format.

Quantization formats store linear layers in few bits plus scales (and zero points, and GPTQ's g_idx), and leave
embeddings, lm_head, norms, routers and convolutions in 16 bits; modules a checkpoint lists as not converted stay
16-bit too. A flat bytes-per-parameter rule misses both (memory-physics.md 3.1).
"""

from __future__ import annotations

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator.params import LINEAR_KINDS, Inventory, Sharding, layer_inventory
from pytest_llmsizer.catalog.arch import ModelArch, QuantSpec
from pytest_llmsizer.errors import EstimateError

# which inventory kind each "not converted" module kind covers
_NOT_CONVERTED_KIND = {
    "attention": "attention",
    "linear_attention": "linear_attention",
    "shared_expert": "shared_expert",
    "dense_mlp": "dense_mlp",
}


def dtype_bytes(dtype: str | None) -> float:
    """Bytes per element of a (weight or activation) dtype; fp32 checkpoints are served in 16 bit by vLLM."""
    name = (dtype or k.DEFAULT_WEIGHT_DTYPE).lower().replace("torch.", "")
    if name == "auto":
        return 2
    try:
        return k.DTYPE_BYTES[name]
    except KeyError:
        raise EstimateError(f"unknown dtype {dtype!r}; expected one of {sorted(k.DTYPE_BYTES)}") from None


def serving_dtype(arch: ModelArch, requested: str | None) -> str:
    """The dtype vLLM serves in: ``--dtype`` if given, else the checkpoint's, with fp32 downcast to bf16."""
    if requested and requested != "auto":
        return requested
    if arch.dtype in (None, "float32", "fp32", "float"):
        return k.DEFAULT_WEIGHT_DTYPE
    return arch.dtype


def quantized_bytes_per_param(q: QuantSpec, hidden: int) -> float:
    """Bytes per parameter of a quantized linear layer, scales and zero points included (physics 3.1 table).

    ``hidden`` stands for the input/output dimension in per-channel terms (a 1/dim overhead, < 0.1%).
    """
    g = q.group_size if q.group_size and q.group_size > 0 else None
    if q.method in ("awq", "gptq", "int4"):
        data = q.bits / 8
        if g is None:
            return data + k.QUANT_SCALE_BYTES / hidden
        scales = k.QUANT_SCALE_BYTES / g
        zeros = (q.bits / 8) / g if q.zero_point else 0.0
        g_idx = k.GPTQ_G_IDX_BYTES / hidden if q.method == "gptq" else 0.0
        return data + scales + zeros + g_idx
    if q.method == "fp8":
        if q.fp8_scaling == "channel":
            return 1 + k.FP32_SCALE_BYTES / hidden
        if q.fp8_scaling == "block":
            bx, by = q.weight_block_size or (128, 128)
            return 1 + k.FP32_SCALE_BYTES / (bx * by)
        return 1.0
    if q.method == "int8":
        return 1 + k.FP32_SCALE_BYTES / hidden
    if q.method == "mxfp4":
        return k.MXFP4_BYTES_PER_PARAM
    if q.method == "nvfp4":
        return k.NVFP4_BYTES_PER_PARAM
    if q.method == "bitsandbytes-4bit":
        block = k.BNB_4BIT_BLOCK
        if q.double_quant:
            return 0.5 + 1 / block + 4 / (block * 256)
        return 0.5 + 4 / block
    if q.method == "bitsandbytes-8bit":
        return 1 + k.FP32_SCALE_BYTES / hidden
    raise EstimateError(f"no weight pricing for quantization {q.method!r}")


def mxfp4_expert_padding(arch: ModelArch, tp: int) -> float:
    """Factor by which vLLM's MXFP4 MoE path pads expert weights: the per-rank expert intermediate size is rounded
    up to a multiple of 256 for the fused kernels (gpt-oss: 2880 -> 3072, +6.7%; vllm#33155 logs 64.38 GiB for
    gpt-oss-120b on an H100, which this padding reproduces)."""
    if arch.moe is None:
        return 1.0
    per_rank = arch.moe.expert_intermediate_size / tp
    padded = -(-per_rank // k.MXFP4_MOE_PADDING) * k.MXFP4_MOE_PADDING
    return padded / per_rank


def quantized_kinds(quant: QuantSpec | None) -> set[str]:
    """Inventory kinds a quantization format stores quantized (linear layers less the not-converted modules)."""
    if quant is None:
        return set()
    kinds = set(LINEAR_KINDS)
    for module in quant.not_converted:
        kinds.discard(_NOT_CONVERTED_KIND.get(module, ""))
    return kinds


UNCONVERTED_SUFFIX = "_16bit"
"""Inventory kinds moved out of the quantized set for single layers carry this suffix (``mamba_16bit``)."""


def split_unconverted_layers(arch: ModelArch, inventory: Inventory, layers: range, sh: Sharding,
                             quant: QuantSpec | None) -> Inventory:
    """Move the parameters of modules a checkpoint leaves 16-bit in single layers (``quant.not_converted_layers``:
    Meta's 405B FP8 keeps decoder layers 0 and 125 whole, NVIDIA's Nemotron-3-Nano FP8 the in/out projections of
    the six Mamba layers next to attention) to ``<kind>_16bit``, which ``weight_bytes`` prices at 16 bits."""
    if quant is None or not quant.not_converted_layers:
        return inventory
    out = Inventory(inventory)
    for index, module in quant.not_converted_layers:
        if index not in layers:
            continue
        one = layer_inventory(arch, index, sh)
        kinds = LINEAR_KINDS if module == "all" else (module,)
        for kind in kinds:
            moved = min(one.get(kind, 0), out.get(kind, 0))
            if moved:
                out[kind] -= moved
                out[kind + UNCONVERTED_SUFFIX] += moved
    return out


def weight_bytes(arch: ModelArch, inventory: Inventory, *, dtype: str, quant: QuantSpec | None,
                 tp: int = 1) -> dict[str, float]:
    """Bytes per inventory kind on one rank."""
    b16 = dtype_bytes(dtype)
    quantized = quantized_kinds(quant)
    if quant is not None:
        q_bytes = quantized_bytes_per_param(quant, arch.hidden_size)
    out: dict[str, float] = {}
    for kind, params in inventory.items():
        if quant is not None and kind in quantized:
            out[kind] = params * q_bytes
            if kind == "experts" and quant.method == "mxfp4":
                out[kind] *= mxfp4_expert_padding(arch, tp)
        else:
            out[kind] = params * b16
    return out


def rotary_cache_bytes(arch: ModelArch, dtype: str) -> int:
    """vLLM registers a cos/sin cache buffer of max_position x rotary_dim in the model dtype; it is part of
    "Model loading took" (e.g. 32 MiB for Llama-3.1-8B, the gap between 14.96 GiB of tensors and 14.99 logged)."""
    if not arch.rotary_dim or not arch.max_position_embeddings:
        return 0
    return int(arch.max_position_embeddings * arch.rotary_dim * dtype_bytes(dtype))


def mla_absorbed_bytes(arch: ModelArch, attention_layers: int, tp: int, dtype: str, quant: QuantSpec | None) -> int:
    """vLLM's MLA backends absorb kv_b_proj into two matrices (W_UK_T, W_UV) after loading. When kv_b_proj is
    quantized they are dequantized copies in the model dtype, kept beside the quantized weight, and "Model loading
    took" includes them (``MLACommonImpl.process_weights_after_loading``): kv_lora_rank x heads/TP x (qk_nope + v)
    elements per layer. For 16-bit checkpoints they are views of the loaded weight and cost nothing."""
    if arch.mla is None or quant is None or "attention" in quant.not_converted:
        return 0
    m = arch.mla
    per_layer = m.kv_lora_rank * (arch.num_attention_heads / tp) * (m.qk_nope_head_dim + m.v_head_dim)
    return int(per_layer * attention_layers * dtype_bytes(dtype))
