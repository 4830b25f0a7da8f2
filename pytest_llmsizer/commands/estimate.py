"""``llmsizer estimate``: per-GPU memory of a model on a GPU (a contract: scripts depend on its JSON)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from pytest_llmsizer.calculator import COMPONENTS, Estimate, estimate
from pytest_llmsizer.calculator.coefficient_set import load_calibration
from pytest_llmsizer.calculator.resolve import request_from_options
from pytest_llmsizer.calculator.suggest import suggestions
from pytest_llmsizer.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    fraction,
    memory_gib,
    non_negative_int,
    positive_int,
)
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.units import GB, GiB


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate", help="predict per-GPU memory for a model on a GPU",
        description="Predict per-GPU memory (weights, KV cache, activations, non-torch, CUDA graphs) and the KV "
                    "capacity of a deployment. vLLM by default: it reserves gpu_memory_utilization x total memory "
                    "and fills the rest with KV cache.",
        epilog="Exit codes: 0 the deployment fits; 1 vLLM would refuse it (the reasons are printed, \"fits\": false "
               "in JSON); 2 bad input (unknown model or GPU, invalid option, a config key not understood under "
               "--strict).",
    )
    p.add_argument("model", metavar="MODEL_OR_CONFIG", help="Hugging Face id, or a path to a config.json")
    p.add_argument("--gpu", metavar="NAME", help="GPU name as nvidia-smi/amd-smi print it, or a short name")
    p.add_argument("--gpu-memory-gib", type=memory_gib, metavar="X",
                   help="memory per GPU visible to the runtime, GiB (overrides the catalog)")
    p.add_argument("--tp", type=positive_int, default=1, metavar="N", help="tensor parallel size")
    p.add_argument("--pp", type=positive_int, default=1, metavar="N", help="pipeline parallel size")
    p.add_argument("--data-parallel-size", type=positive_int, default=1, metavar="N",
                   help="data parallel size (with --enable-expert-parallel, experts are split over TP x DP)")
    p.add_argument("--enable-expert-parallel", action="store_true", help="split MoE experts over the EP group")
    p.add_argument("--language-model-only", action="store_true", help="do not load the vision tower")
    p.add_argument("--mm-encoder-tp-mode", choices=("weights", "data"), default=None,
                   help="'weights': shard the vision tower over TP; 'data' (default here): replicate it")
    p.add_argument("--dtype", metavar="D", help="auto, bfloat16, float16, float32")
    p.add_argument("--quantization", metavar="Q", help="awq, gptq, fp8, bitsandbytes, mxfp4, nvfp4, int8, ...")
    p.add_argument("--kv-cache-dtype", metavar="K", help="auto, fp8, fp8_e4m3, fp8_e5m2, ...")
    p.add_argument("--engine", choices=("vllm", "transformers"), default="vllm")
    p.add_argument("--engine-version", metavar="V", help="vLLM version, e.g. 0.11.0")
    p.add_argument("--gpu-memory-utilization", type=fraction, metavar="U")
    p.add_argument("--max-model-len", type=positive_int, metavar="L")
    p.add_argument("--max-num-seqs", type=positive_int, metavar="S")
    p.add_argument("--max-num-batched-tokens", type=positive_int, metavar="T")
    p.add_argument("--block-size", type=positive_int, metavar="B")
    p.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs")
    p.add_argument("--allow-long-max-model-len", action="store_true",
                   help="as VLLM_ALLOW_LONG_MAX_MODEL_LEN=1: accept a max_model_len above the model's limit")
    p.add_argument("--batch-size", type=positive_int, metavar="B", help="workload: concurrent sequences")
    p.add_argument("--input-len", type=non_negative_int, metavar="I", help="workload: prompt tokens")
    p.add_argument("--output-len", type=non_negative_int, metavar="O", help="workload: generated tokens")
    p.add_argument("--calibration", metavar="FILE", help="coefficients fitted by `llmsizer calibrate`")
    p.add_argument("--json", action="store_true", help="print one JSON object (per_gpu_bytes are integers)")
    p.add_argument("--strict", action="store_true",
                   help="refuse (exit 2) a config with keys the calculator does not understand")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    workload = (args.batch_size, args.input_len, args.output_len)
    if any(v is not None for v in workload) and any(v is None for v in workload):
        raise LlmsizerError("--batch-size, --input-len and --output-len go together")
    request = request_from_options(
        args.model,
        gpu=args.gpu,
        gpu_memory_bytes=round(args.gpu_memory_gib * GiB) if args.gpu_memory_gib else None,
        quantization=args.quantization,
        tensor_parallel_size=args.tp,
        pipeline_parallel_size=args.pp,
        data_parallel_size=args.data_parallel_size,
        enable_expert_parallel=args.enable_expert_parallel,
        language_model_only=args.language_model_only,
        mm_encoder_tp_mode=args.mm_encoder_tp_mode,
        dtype=args.dtype,
        kv_cache_dtype=args.kv_cache_dtype,
        engine=args.engine,
        engine_version=args.engine_version,
        gpu_memory_utilization=args.gpu_memory_utilization,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        block_size=args.block_size,
        enforce_eager=args.enforce_eager,
        allow_long_max_model_len=args.allow_long_max_model_len,
        batch_size=args.batch_size,
        input_len=args.input_len,
        output_len=args.output_len,
    )
    unexplained = request.arch.unexplained_config_keys
    if args.strict and unexplained:
        raise LlmsizerError(f"{request.arch.id}: config keys not understood (--strict): {', '.join(unexplained)}")
    if args.calibration:
        request = replace(request, calibration=load_calibration(args.calibration))
    result = estimate(request)
    hints = suggestions(request, result)
    if args.json:
        document = result.to_json()
        if hints:
            document["suggestions"] = hints
        print(json.dumps(document, indent=2, sort_keys=False))
    else:
        print(format_estimate(result, hints))
    return EXIT_OK if result.fits else EXIT_FAILED


def format_estimate(result: Estimate, hints: list[str] | None = None) -> str:
    """A readable table in GiB and GB, then capacity, the resolved inputs and the assumptions; a deployment the
    engine would refuse starts with DOES NOT FIT and the engine's reasons."""
    inputs = result.inputs
    lines = []
    if not result.fits:
        lines += ["DOES NOT FIT: vLLM would refuse this deployment:" if inputs["engine"] == "vllm"
                  else "DOES NOT FIT:"]
        lines += [f"  - {reason}" for reason in result.problems]
        if hints:
            lines.append("what would fit:")
            lines += [f"  - {hint}" for hint in hints]
        lines.append("")
    lines += [
        f"{inputs['model']} on {inputs.get('gpu') or 'GPU'} "
        f"({inputs['gpu_memory_gib']:.2f} GiB visible), engine {inputs['engine']}, "
        f"TP {inputs['tensor_parallel_size']} x PP {inputs['pipeline_parallel_size']}",
        "",
        f"{'per GPU':<14}{'GiB':>10}{'GB':>10}",
    ]
    for name in COMPONENTS:
        if name == "total":
            lines.append("-" * 34)
        value = result.per_gpu_bytes[name]
        lines.append(f"{name:<14}{value / GiB:>10.2f}{value / GB:>10.2f}")
    lines.append("")
    graph_line = cuda_graph_line(result)
    if graph_line:
        lines.append(graph_line)
    if result.kv_cache_tokens is not None:
        lines.append(f"KV cache capacity: {result.kv_cache_tokens:,} tokens")
    if result.max_concurrency is not None:
        length = inputs.get("max_model_len")
        if inputs["engine"] == "vllm":
            lines.append(f"max concurrency at {length:,} tokens per request: {result.max_concurrency:.2f}x")
        else:
            lines.append(f"sequences of this workload that fit: {result.max_concurrency:.2f}")
    shown = ("dtype", "kv_cache_dtype", "gpu_memory_utilization", "max_model_len", "max_num_seqs",
             "max_num_batched_tokens", "block_size", "engine_version_assumed", "quantization", "coefficients")
    lines.append("inputs: " + ", ".join(f"{k}={inputs[k]}" for k in shown if k in inputs))
    if result.assumptions:
        lines.append("assumptions:")
        lines += [f"  - {a}" for a in result.assumptions]
    return "\n".join(lines)


def cuda_graph_line(result: Estimate) -> str | None:
    """One line on the CUDA-graph pool where the table's cuda_graphs (the figure vLLM logs) is not the pool itself:
    the pool a GPU must hold, the cached blocks the first capture hands back, and what left them cached."""
    terms = result.details.get("cuda_graph_terms") or {}
    pool, released = terms.get("pool_bytes"), terms.get("released_cache_bytes") or 0
    if pool is None:
        return None
    budget = "inside" if result.details.get("cuda_graphs_in_budget") else "on top of"
    line = f"CUDA graphs: pool {pool / GiB:.2f} GiB ({budget} the utilization budget)"
    if released:
        line += (f"; vLLM logs {result.per_gpu_bytes['cuda_graphs'] / GiB:.2f} GiB (cuda_graphs above) because the "
                 f"capture first releases {released / GiB:.2f} GiB of blocks cached by the {terms['released_by']}")
    return line
