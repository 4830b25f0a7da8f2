"""``llmsizer import``: real measurements into native profiles.

``import vllm-log LOG -o PROFILE.json`` reads a vLLM startup log (every format in notes/vllm-log-formats.md);
``import llmsizer PROFILE...`` converts original LLM Sizer profiler files. Nothing is overwritten without --force.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from pytest_llmsizer.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    dump_json,
    fraction,
    memory_gib,
    mib,
    positive_int,
    write_new_file,
)
from pytest_llmsizer.errors import LlmsizerError, ProfileError
from pytest_llmsizer.profile.load import detect_format, profile_from_data, read_json_file
from pytest_llmsizer.profile.model import FORMAT_NAME, Profile
from pytest_llmsizer.safe_io import (
    MAX_LINE_CHARS,
    LineStats,
    check_output,
    iter_text_lines,
    max_log_bytes,
    open_text_regular,
)


def _profile_text(profile: Profile) -> str:
    return dump_json(profile.model_dump(mode="json", exclude_none=True))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn vLLM logs or original LLM Sizer profiles into native profiles",
                       description="Turn real measurements into native profiles.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    log = kinds.add_parser(
        "vllm-log", help="a vLLM startup log",
        description="Read a vLLM startup log (V0 and V1 formats; per-rank lines; 'GB' printed by old versions read "
                    "as GiB) into a native profile. Options supply what the log lacks; a value that contradicts the "
                    "log, or a missing model or GPU, is an error, never a guess.",
    )
    log.add_argument("log", metavar="LOG", help="the log file ('-' for standard input)")
    log.add_argument("-o", "--output", required=True, metavar="PROFILE.json")
    log.add_argument("--source", help="where the log came from (issue URL, run id); default: the log's file name")
    log.add_argument("--model", help="Hugging Face id, when the log does not name it")
    log.add_argument("--gpu", metavar="NAME", help="GPU name as nvidia-smi prints it")
    log.add_argument("--tp", type=positive_int, metavar="N")
    log.add_argument("--pp", type=positive_int, metavar="N")
    log.add_argument("--gpu-memory-gib", type=memory_gib, metavar="X", help="memory per GPU the runtime sees")
    log.add_argument("--engine-version", metavar="V")
    log.add_argument("--gpu-memory-utilization", type=fraction, metavar="U")
    log.add_argument("--max-model-len", type=positive_int, metavar="L")
    log.add_argument("--max-num-seqs", type=positive_int, metavar="S")
    log.add_argument("--max-num-batched-tokens", type=positive_int, metavar="T")
    log.add_argument("--block-size", type=positive_int, metavar="B")
    log.add_argument("--kv-cache-dtype", metavar="K")
    log.add_argument("--dtype", metavar="D")
    log.add_argument("--quantization", metavar="Q")
    log.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    log.add_argument("--max-log-mib", dest="max_log_bytes", type=mib, default=None, metavar="MIB",
                     help="largest log read (default: LLMSIZER_MAX_LOG_MIB, else 1024 MiB); lines are cut at "
                          f"{MAX_LINE_CHARS // 2**20} MiB")
    log.set_defaults(handler=run_vllm_log)
    old = kinds.add_parser(
        "llmsizer", help="original LLM Sizer profiler files (legacy torch/API, bench v1, v2.0, v3.0)",
        description="Convert original LLM Sizer profiler files to native profiles (GB and GiB told apart, derived "
                    "components marked derived). Each PROFILE.json becomes PROFILE.native.json beside it, or "
                    "goes to --out-dir, or to -o for a single file.",
    )
    old.add_argument("profiles", nargs="+", metavar="PROFILE")
    old.add_argument("-o", "--output", metavar="OUT.json", help="output file (one input only)")
    old.add_argument("--out-dir", metavar="DIR", help="write every converted profile here")
    old.add_argument("--force", action="store_true", help="overwrite existing output files")
    old.set_defaults(handler=run_llmsizer)


def run_vllm_log(args: argparse.Namespace) -> int:
    if args.max_log_bytes is None:
        args.max_log_bytes = max_log_bytes()
    check_output(Path(args.output), what="output", force=args.force)  # refused before the log is read, not after

    from pytest_llmsizer.profile.vllm_log import profile_from_log

    stats = LineStats()
    if args.log == "-":
        stream, source = sys.stdin, args.source or "standard input"
        lines = iter_text_lines(stream, max_chars=args.max_log_bytes, source="standard input", stats=stats)
    else:
        path = Path(args.log)
        try:
            stream = open_text_regular(path, limit=args.max_log_bytes, what="vLLM logs", setting="--max-log-mib")
        except OSError as e:
            raise LlmsizerError(f"{path}: cannot read the log: {e.strerror or e}") from None
        source = args.source or path.name
        # the size was checked before opening; the cap also holds for a log still being written meanwhile
        lines = iter_text_lines(stream, max_chars=args.max_log_bytes, source=str(path), stats=stats)
    overrides = {name: getattr(args, name) for name in (
        "engine_version", "gpu_memory_utilization", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
        "block_size", "kv_cache_dtype", "dtype", "quantization") if getattr(args, name) is not None}
    if "engine_version" in overrides:
        overrides["version"] = overrides.pop("engine_version")
    with contextlib.ExitStack() as stack:
        if stream is not sys.stdin:
            stack.enter_context(stream)
        profile = profile_from_log(lines, source=source, model=args.model, gpu=args.gpu, tp=args.tp, pp=args.pp,
                                   gpu_memory_gib=args.gpu_memory_gib, **overrides)
    if stats.cut_lines:
        print(f"note: {stats.cut_lines} line(s) longer than {MAX_LINE_CHARS:,} characters were cut", file=sys.stderr)
    write_new_file(Path(args.output), _profile_text(profile), force=args.force)
    held = ", ".join(profile.measurements.components.present()) or "no memory component"
    print(f"wrote {args.output}: {profile.model.id}, {held}")
    return EXIT_OK


def run_llmsizer(args: argparse.Namespace) -> int:
    if args.output and len(args.profiles) != 1:
        raise LlmsizerError("-o takes one input profile; use --out-dir for several")
    failed = 0
    for text in args.profiles:
        path = Path(text)
        try:
            data = read_json_file(path)  # read and parsed once: the format check and the conversion share it
            fmt = detect_format(data) if isinstance(data, dict) else "unknown"
            if fmt == "native":
                print(f"skip  {path}: already a native {FORMAT_NAME} file")
                continue
            profile = profile_from_data(data, str(path))
        except ProfileError as e:
            failed += 1
            print(f"FAIL  {e.render()}")
            continue
        if args.output:
            out = Path(args.output)
        elif args.out_dir:
            out = Path(args.out_dir) / f"{path.stem}.native.json"
        else:
            out = path.with_name(f"{path.stem}.native.json")
        write_new_file(out, _profile_text(profile), force=args.force)
        print(f"ok    {path} ({fmt}) -> {out}")
    return EXIT_FAILED if failed else EXIT_OK
