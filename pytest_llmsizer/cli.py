"""The ``llmsizer`` command.

Exit codes: 0 success; 2 bad input (unknown model or GPU, invalid option), with a one-line message and no
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, NoReturn

from pytest_llmsizer import __version__
from pytest_llmsizer.calculator import COMPONENTS, Estimate, estimate
from pytest_llmsizer.calculator.resolve import request_from_options
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.units import GB, GiB

EXIT_OK = 0
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the contract: exit 2, one line, no traceback)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _checked(convert: Callable[[str], float], accept: Callable[[float], bool], expected: str) -> Callable[[str], Any]:
    """An argparse ``type=`` that converts and range-checks, with one message naming what was expected."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
_fraction = _checked(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
_positive_float = _checked(float, lambda v: 0 < v < float("inf"), "a positive number")


def _add_estimate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate", help="predict per-GPU memory for a model on a GPU",
        description="Predict per-GPU memory (weights, KV cache, activations, non-torch, CUDA graphs) and the KV "
                    "capacity of a deployment. vLLM by default: it reserves gpu_memory_utilization x total memory "
                    "and fills the rest with KV cache.",
    )
    p.add_argument("model", metavar="MODEL_OR_CONFIG", help="Hugging Face id, or a path to a config.json")
    p.add_argument("--gpu", metavar="NAME", help="GPU name as nvidia-smi/amd-smi print it, or a short name")
    p.add_argument("--gpu-memory-gib", type=_positive_float, metavar="X",
                   help="memory per GPU visible to the runtime, GiB (overrides the catalog)")
    p.add_argument("--tp", type=_positive_int, default=1, metavar="N", help="tensor parallel size")
    p.add_argument("--pp", type=_positive_int, default=1, metavar="N", help="pipeline parallel size")
    p.add_argument("--dtype", metavar="D", help="auto, bfloat16, float16, float32")
    p.add_argument("--quantization", metavar="Q", help="awq, gptq, fp8, bitsandbytes, mxfp4, nvfp4, int8, ...")
    p.add_argument("--kv-cache-dtype", metavar="K", help="auto, fp8, fp8_e4m3, fp8_e5m2, ...")
    p.add_argument("--engine", choices=("vllm", "transformers"), default="vllm")
    p.add_argument("--engine-version", metavar="V", help="vLLM version, e.g. 0.11.0")
    p.add_argument("--gpu-memory-utilization", type=_fraction, metavar="U")
    p.add_argument("--max-model-len", type=_positive_int, metavar="L")
    p.add_argument("--max-num-seqs", type=_positive_int, metavar="S")
    p.add_argument("--max-num-batched-tokens", type=_positive_int, metavar="T")
    p.add_argument("--block-size", type=_positive_int, metavar="B")
    p.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs")
    p.add_argument("--batch-size", type=_positive_int, metavar="B", help="workload: concurrent sequences")
    p.add_argument("--input-len", type=_non_negative_int, metavar="I", help="workload: prompt tokens")
    p.add_argument("--output-len", type=_non_negative_int, metavar="O", help="workload: generated tokens")
    p.add_argument("--json", action="store_true", help="print one JSON object (per_gpu_bytes are integers)")
    p.set_defaults(handler=_run_estimate)


def _run_schema(args: argparse.Namespace) -> int:
    print(resources.files("pytest_llmsizer").joinpath("schema/profile.schema.json").read_text(encoding="utf-8"))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="llmsizer", description="GPU memory for LLM inference: estimate and validate.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_estimate_parser(sub)
    schema = sub.add_parser("schema", help="print the JSON Schema of the native profile format",
                            description="Print the JSON Schema (draft 2020-12) of the native profile format.")
    schema.set_defaults(handler=_run_schema)
    return parser


def _run_estimate(args: argparse.Namespace) -> int:
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
        batch_size=args.batch_size,
        input_len=args.input_len,
        output_len=args.output_len,
    )
    result = estimate(request)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=False))
    else:
        print(format_estimate(result))
    return EXIT_OK


def format_estimate(result: Estimate) -> str:
    """A readable table in GiB and GB, then capacity, the resolved inputs and the assumptions."""
    inputs = result.inputs
    lines = [
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
    if result.kv_cache_tokens is not None:
        lines.append(f"KV cache capacity: {result.kv_cache_tokens:,} tokens")
    if result.max_concurrency is not None:
        length = inputs.get("max_model_len")
        if inputs["engine"] == "vllm":
            lines.append(f"max concurrency at {length:,} tokens per request: {result.max_concurrency:.2f}x")
        else:
            lines.append(f"sequences of this workload that fit: {result.max_concurrency:.2f}")
    shown = ("dtype", "kv_cache_dtype", "gpu_memory_utilization", "max_model_len", "max_num_seqs",
             "max_num_batched_tokens", "block_size", "engine_version_assumed", "quantization")
    lines.append("inputs: " + ", ".join(f"{k}={inputs[k]}" for k in shown if k in inputs))
    if result.assumptions:
        lines.append("assumptions:")
        lines += [f"  - {a}" for a in result.assumptions]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except LlmsizerError as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"llmsizer {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
