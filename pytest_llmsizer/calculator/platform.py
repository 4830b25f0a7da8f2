"""What vLLM's "Model loading took X GiB" measures on ROCm, beyond the weights themselves.

On CUDA the figure is torch's allocated bytes after loading: the weights and buffers that stay. On ROCm
(``RocmPlatform.get_current_memory_usage``) it is device-level used memory, ``total - free``: it also holds what the
caching allocator kept from post-load weight processing and any non-torch growth during loading
(memory-physics.md 2.1, architectures.md section 7). Those bytes are inside vLLM's ``weights_memory`` and so come out
of the KV pool. The terms, per rank:

* ``moe_padding`` (exact): ``VLLM_ROCM_MOE_PADDING`` pads every row of the 16-bit fused-MoE weights w13 and w2 whose
  byte stride is a multiple of 512 by 256 bytes, permanently (``UnquantizedFusedMoEMethod._maybe_pad_weight``);
* ``moe_reserve`` (fitted): the unpadded copies the padding (and the AITER shuffle) frees stay cached when the
  larger padded tensors of later layers cannot reuse them; a fraction of the 16-bit expert bytes;
* ``fp8_fnuz_mask`` (exact): on gfx94x (MI300X/MI325X) FP8 weights are normalised from e4m3fn to e4m3fnuz through a
  one-byte-per-element boolean mask (``normalize_e4m3fn_to_e4m3fnuz``); the largest one stays cached;
* ``fp8_moe_reserve`` (fitted): FP8 fused-MoE post-processing (requantisation, shuffles) leaves about one MoE
  layer's expert weights cached; a fraction of one layer's expert bytes;
* ``online_quant_reserve`` (fitted): ``--quantization fp8`` on a 16-bit checkpoint loads the 16-bit weights, then
  quantizes them layer by layer; the freed 16-bit blocks partly stay cached; a fraction of the 16-bit bytes;
* ``load_growth`` (fitted): non-torch growth during loading, per GPUs per replica.

Fitted coefficients live in ``coefficients.ROCM_LOAD`` with their provenance (``benchmarks/fit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator.params import Sharding
from pytest_llmsizer.catalog.arch import ModelArch

FNUZ_GPUS = ("MI300", "MI325")
"""Names of gfx94x accelerators, for a GPU the catalog does not hold (its gfx target unknown)."""


def fp8_is_fnuz(compute_capability: str | None, gpu_name: str | None) -> bool:
    """Whether the GPU's FP8 is e4m3fnuz, so vLLM converts e4m3fn checkpoints after loading: vLLM's
    ``RocmPlatform.is_fp8_fnuz`` tests 'gfx94' in the device's arch name, which the GPU catalog holds as
    ``compute_capability`` (MI300X, MI325X: gfx942). Only a GPU outside the catalog falls back to its name."""
    if compute_capability is not None:
        return compute_capability.startswith("gfx94")
    return any(g in (gpu_name or "").upper() for g in FNUZ_GPUS)


@dataclass(frozen=True)
class RocmLoadFeatures:
    """The physics quantities of one rank (bytes), before any fitted coefficient."""

    moe_padding: int = 0
    moe16_expert_bytes: int = 0
    fp8_largest_weight_elements: int = 0
    fp8_moe_layer_bytes: int = 0
    online_quantized16_bytes: int = 0


def _experts_quantized(arch: ModelArch) -> bool:
    q = arch.quantization
    return q is not None and "experts" not in q.not_converted


def rocm_load_features(arch: ModelArch, layers: range, sh: Sharding, dtype_bytes: float,
                       gpu_name: str | None, quantized_params: float = 0.0,
                       compute_capability: str | None = None) -> RocmLoadFeatures:
    """The ROCm load-figure quantities of the rank holding ``layers`` (``quantized_params``: the rank's parameters
    stored quantized, which an online quantization first loads in 16 bit)."""
    moe_layers = sum(1 for i in layers if arch.layer_mlp[i] == "moe")
    q = arch.quantization
    fp8 = q is not None and q.method == "fp8" and fp8_is_fnuz(compute_capability, gpu_name)
    padding = moe16 = fp8_layer = 0
    largest = 0
    h = arch.hidden_size
    if arch.moe is not None and moe_layers:
        moe = arch.moe
        width = moe.latent_size or h
        local_experts = moe.num_experts / (sh.tp * sh.dp) if sh.expert_parallel else moe.num_experts
        inter = moe.expert_intermediate_size if sh.expert_parallel else moe.expert_intermediate_size / sh.tp
        up_rows = local_experts * (2 if moe.gated else 1) * inter
        down_rows = local_experts * width
        if not _experts_quantized(arch):
            b = dtype_bytes
            pad = k.ROCM_MOE_PAD_BYTES
            per_layer = (up_rows * pad if (width * b) % k.ROCM_PAD_STRIDE_MULTIPLE == 0 else 0) + \
                        (down_rows * pad if (inter * b) % k.ROCM_PAD_STRIDE_MULTIPLE == 0 else 0)
            padding = int(per_layer * moe_layers)
            moe16 = int((up_rows * width + down_rows * inter) * b * moe_layers)
        elif fp8:
            fp8_layer = int(up_rows * width + down_rows * inter)
            largest = int(up_rows * width)
    if fp8 and q is not None:  # fp8 implies a quantization; spelled out so the type checker sees q narrowed
        q_heads = arch.num_attention_heads / sh.tp
        kv = max(1, arch.num_kv_heads // sh.tp)
        if "attention" not in q.not_converted and arch.mla is None:
            largest = max(largest, int(h * (q_heads + 2 * kv) * arch.head_dim))
        if "dense_mlp" not in q.not_converted and "dense" in (arch.layer_mlp[i] for i in layers):
            largest = max(largest, int(h * (2 if arch.mlp_gated else 1) * arch.intermediate_size / sh.tp))
    online = int(quantized_params * dtype_bytes) if q is not None and q.online else 0
    return RocmLoadFeatures(moe_padding=padding, moe16_expert_bytes=moe16, fp8_largest_weight_elements=largest,
                            fp8_moe_layer_bytes=fp8_layer, online_quantized16_bytes=online)


def rocm_load_terms(features: RocmLoadFeatures, gpus: int, coefficients: dict | None = None) -> dict[str, int]:
    """The ROCm load-figure terms (bytes) with the fitted coefficients applied (``coefficients``: a calibration's
    ``ROCM_LOAD``-shaped dict; default the built-in one)."""
    load = {**k.ROCM_LOAD, **(coefficients or {})}
    growth = load["load_growth_gib"] or k.ROCM_LOAD["load_growth_gib"]
    sizes = sorted(growth)
    size = max((s for s in sizes if s <= gpus), default=sizes[0])
    return {
        "moe_padding": features.moe_padding,
        "moe_reserve": round(load["moe16_reserve_fraction"] * features.moe16_expert_bytes),
        "fp8_fnuz_mask": features.fp8_largest_weight_elements,
        "fp8_moe_reserve": round(load["fp8_moe_layer_fraction"] * features.fp8_moe_layer_bytes),
        "online_quant_reserve": round(load["online_quant16_fraction"] * features.online_quantized16_bytes),
        "load_growth": round(growth[size] * 2**30),
    }
