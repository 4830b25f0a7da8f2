#!/usr/bin/env python3
"""A deliberately simple external calculator for pytest-llmsizer: an EXAMPLE of the protocol, NOT an accurate model.

Protocol ``llmsizer-calculator/1`` (see README.md next to this file): one JSON request on stdin, one JSON answer on
stdout, exit status 0. Standard library only; it does not import pytest_llmsizer.

What it computes, per GPU:

* weights  = parameters x bytes per parameter / (tensor parallel x pipeline parallel)
  (parameters from ``inputs.num_parameters``, else ``profile.model.num_parameters``; bytes per parameter from the
  quantization bits, else the dtype, else 2);
* kv_cache = 2 (K and V) x layers / PP x max(1, KV heads / TP) x head_dim x KV bytes x max_model_len, i.e. ONE
  sequence of the profile's max_model_len (else the model's max_position_embeddings).

What it ignores, on purpose: vLLM sizes its KV pool from gpu_memory_utilization (so the measured kv_cache is
usually far larger than one sequence), activations, CUDA graphs, non-torch memory, sliding-window / MLA / linear
attention layers, MoE expert parallelism, quantization scales, and unquantized embeddings. Expect failures.

    pytest profiles/ --llmsizer-calculator-cmd "python examples/flat_calculator.py"
"""

from __future__ import annotations

import json
import sys

PROTOCOL = "llmsizer-calculator/1"
DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "fp8": 1, "float8_e4m3fn": 1,
               "fp8_e4m3": 1, "fp8_e5m2": 1}


def calculate(request: dict) -> dict:
    if request.get("protocol") != PROTOCOL:
        return {"error": f"this calculator speaks {PROTOCOL}, not {request.get('protocol')!r}"}
    profile = request["profile"]
    inputs = request.get("inputs") or {}
    engine = profile.get("engine", {})
    model = profile["model"]
    arch = inputs.get("architecture")
    assumptions = ["flat example calculator: weights and one max_model_len sequence of KV only"]

    params = inputs.get("num_parameters") or model.get("num_parameters")
    if not params:
        why = request.get("inputs_error") or "no parameter count"
        return {"error": f"cannot size {model['id']}: {why}"}
    tp = engine.get("tensor_parallel_size", 1)
    pp = engine.get("pipeline_parallel_size", 1)

    quant = model.get("quantization") or (arch or {}).get("quantization") or {}
    bits = quant.get("bits") or ((arch or {}).get("quantization") or {}).get("bits")
    dtype = (model.get("dtype") or (arch or {}).get("dtype") or "bfloat16").lower()
    if bits:
        weight_bytes = bits / 8
        assumptions.append(f"{quant.get('method', 'quantized')}: {bits} bits per parameter everywhere, scales ignored")
    else:
        weight_bytes = DTYPE_BYTES.get(dtype, 2)
    per_gpu = {"weights": round(params * weight_bytes / (tp * pp))}

    max_len = engine.get("max_model_len") or (arch or {}).get("max_position_embeddings")
    if arch and max_len:
        kv_dtype = (engine.get("kv_cache_dtype") or "auto").lower()
        kv_bytes = DTYPE_BYTES.get(kv_dtype, 1 if kv_dtype.startswith("fp8") else 2)
        layers = len(arch["layer_attention"]) / pp
        kv_heads = max(1, arch["num_kv_heads"] // tp)
        per_token = 2 * layers * kv_heads * arch["head_dim"] * kv_bytes
        per_gpu["kv_cache"] = round(per_token * max_len)
        assumptions.append(f"KV cache for one sequence of {max_len} tokens, every layer full attention")
    else:
        assumptions.append("no architecture or max_model_len: kv_cache not estimated")

    return {"per_gpu_bytes": per_gpu, "assumptions": assumptions, "inputs": {"num_parameters": params}}


def main() -> int:
    try:
        request = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        print(f"flat_calculator: stdin is not JSON: {e}", file=sys.stderr)
        return 2
    json.dump(calculate(request), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
