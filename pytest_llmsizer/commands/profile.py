"""``llmsizer profile``: measure a deployment on real GPUs, one run or a whole campaign.

    llmsizer profile vllm MODEL --tp N --batch-size B --input-len I --output-len O -o PROFILE.json [-- ENGINE ARGS]
    llmsizer profile transformers MODEL|config.json --batch-size B --input-len I --output-len O -o PROFILE.json
    llmsizer profile --campaign validation-campaign.yaml --out-dir DIR [--dry-run]

Only the parser lives at import time: the profiler (``pytest_llmsizer.profiler``) is imported when a profile command
runs, so ``llmsizer estimate`` and the pytest plugin never load it.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn, TypeVar, overload

from pytest_llmsizer.commands.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, positive_float, positive_int
from pytest_llmsizer.errors import LlmsizerError

DEFAULT_HZ = 20.0
_N = TypeVar("_N")


class _PassThroughParser(argparse.ArgumentParser):
    """Everything after ``--`` is the engine's: kept verbatim in ``engine_args``, never parsed here."""

    # argparse's own overloads: a namespace passed in comes back (same type), else a new Namespace
    @overload
    def parse_known_args(self, args: Iterable[str] | None = None, namespace: None = None,
                         ) -> tuple[argparse.Namespace, list[str]]: ...
    @overload
    def parse_known_args(self, args: Iterable[str] | None, namespace: _N) -> tuple[_N, list[str]]: ...
    @overload
    def parse_known_args(self, *, namespace: _N) -> tuple[_N, list[str]]: ...

    def parse_known_args(self, args: Iterable[str] | None = None, namespace: Any = None) -> tuple[Any, list[str]]:
        args = list(sys.argv[1:] if args is None else args)
        tail: list[str] = []
        if "--" in args:
            i = args.index("--")
            args, tail = args[:i], args[i + 1:]
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.engine_args = tail
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _workload(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--batch-size", type=positive_int, required=required, metavar="B")
    p.add_argument("--input-len", type=positive_int, required=required, metavar="I", help="prompt tokens")
    p.add_argument("--output-len", type=positive_int, required=required, metavar="O", help="generated tokens")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sample-hz", type=positive_float, default=DEFAULT_HZ, metavar="HZ",
                   help=f"device memory readings per second (default {DEFAULT_HZ:g})")
    p.add_argument("--device-reader", default="auto", metavar="READER",
                   help="auto (NVML, else amdsmi), nvml, amdsmi, or module:attribute returning a DeviceReader")
    p.add_argument("--keep-failed", action="store_true",
                   help="write a failed run's partial profile (PROFILE.failed.json, marked failed)")
    p.add_argument("--no-validate", action="store_true", help="do not print the validation against the calculator")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="measure memory on real GPUs (vLLM, transformers, or a campaign)",
        description="Run an engine on real GPUs and write a profile: the components the engine's log states, the "
                    "device's baseline, peak and final memory per GPU, the workload, the settings and versions. "
                    "The profile is checked (integrity) and compared with the built-in calculator. Exit 0: written "
                    "and sound; 1: the run failed (crash, out of memory, timeout, peak equal to baseline) or, for "
                    "a campaign, any run failed; 2: bad input.",
    )
    p.add_argument("--campaign", metavar="YAML", help="profile every run of a campaign file (see README)")
    p.add_argument("--out-dir", metavar="DIR", help="campaign output directory (profiles, logs, campaign-log.jsonl)")
    p.add_argument("--dry-run", action="store_true", help="print the planned runs and their count; touch no GPU")
    _common(p)
    p.set_defaults(handler=run, kind=None)
    kinds = p.add_subparsers(dest="kind", metavar="ENGINE", parser_class=_PassThroughParser)
    v = kinds.add_parser(
        "vllm", help="run vLLM as a child process (default: vllm bench latency)",
        description="Run `vllm bench latency` (or --engine-cmd) with the workload; capture its log; sample every "
                    "visible GPU. Engine arguments after `--` are passed through verbatim.",
    )
    v.add_argument("model", metavar="MODEL", help="Hugging Face id or model directory")
    v.add_argument("--tp", type=positive_int, default=1, metavar="N", help="tensor parallel size (default 1)")
    _workload(v, required=True)
    v.add_argument("--dtype", metavar="D", help="passed to the engine as --dtype")
    v.add_argument("--engine-cmd", metavar="COMMAND",
                   help="launcher replacing 'vllm bench latency' (the run's flags are appended), e.g. "
                        "'docker exec c vllm bench latency'")
    v.add_argument("--timeout", type=positive_float, default=3600.0, metavar="SECONDS",
                   help="stop the engine after this long (default 3600)")
    v.add_argument("-o", "--output", required=True, metavar="PROFILE.json")
    v.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    _common(v)
    t = kinds.add_parser(
        "transformers", help="run Hugging Face transformers in this process on one GPU",
        description="Load the model on one GPU (or build it from its config with --random-weights: same tensor "
                    "sizes, no download), generate the workload, and measure weights (allocated after load), KV "
                    "cache (bytes of the returned cache), the allocator peak, activations (the remainder, "
                    "derived) and device totals. Needs torch and transformers (your own installs).",
    )
    t.add_argument("model", metavar="MODEL", help="Hugging Face id, model directory, or a config.json file")
    _workload(t, required=True)
    t.add_argument("--random-weights", action="store_true",
                   help="build the model from its config with random weights (no checkpoint download)")
    t.add_argument("--dtype", choices=("bfloat16", "float16", "float32"),
                   help="weights dtype (default: the config's torch_dtype, else bfloat16)")
    t.add_argument("--trust-remote-code", action="store_true")
    t.add_argument("-o", "--output", required=True, metavar="PROFILE.json")
    t.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    _common(t)


def run(args: argparse.Namespace) -> int:
    if args.campaign:
        if args.kind:
            raise LlmsizerError("--campaign runs a whole campaign: give no engine (vllm / transformers) with it")
        return _run_campaign(args)
    if args.kind is None:
        raise LlmsizerError("name an engine (llmsizer profile vllm|transformers ...) or a campaign (--campaign)")
    if args.dry_run or args.out_dir:
        raise LlmsizerError("--dry-run and --out-dir belong to --campaign")
    out = Path(args.output)
    _check_outputs(out, keep_failed=args.keep_failed, force=args.force)
    return _run_vllm(args, out) if args.kind == "vllm" else _run_transformers(args, out)


def _check_outputs(out: Path, *, keep_failed: bool, force: bool) -> None:
    """Refuse, before any GPU time is spent, every file the run would write that already exists (unless ``force``)
    or cannot be written safely (a symlink, a device, a FIFO, a read-only file): the profile, the engine log beside
    it, and with ``keep_failed`` the failed profile (``safe_io.check_output``)."""
    from pytest_llmsizer.profiler.runner import failed_path_for, log_path_for
    from pytest_llmsizer.safe_io import check_output

    check_output(out, what="profile", force=force)
    check_output(log_path_for(out), what="engine log", force=force)
    if keep_failed:
        check_output(failed_path_for(out), what="failed profile", force=force)


def _reader(spec: str) -> Any:
    from pytest_llmsizer.profiler.devices import open_reader

    return open_reader(spec)


def _report(result: Any, *, validate: bool) -> int:
    from pytest_llmsizer.profiler.report import print_result

    return print_result(result, validate=validate)


def _run_vllm(args: argparse.Namespace, out: Path) -> int:
    from pytest_llmsizer.profiler.plan import RunSpec
    from pytest_llmsizer.profiler.runner import profile_vllm

    spec = RunSpec(model=args.model, engine="vllm", batch_size=args.batch_size, input_len=args.input_len,
                   output_len=args.output_len, tensor_parallel_size=args.tp, engine_args=tuple(args.engine_args),
                   engine_cmd=tuple(shlex.split(args.engine_cmd)) if args.engine_cmd else None,
                   timeout=args.timeout, dtype=args.dtype)
    reader = _reader(args.device_reader)
    try:
        result = profile_vllm(spec, out, reader=reader, hz=args.sample_hz, keep_failed=args.keep_failed)
    finally:
        reader.close()
    return _report(result, validate=not args.no_validate)


def _run_transformers(args: argparse.Namespace, out: Path) -> int:
    from pytest_llmsizer.profiler.transformers_cli import profile_transformers

    result = profile_transformers(args, out)
    return _report(result, validate=not args.no_validate)


def _run_campaign(args: argparse.Namespace) -> int:
    from pytest_llmsizer.profiler.campaign import CampaignError, load_campaign
    from pytest_llmsizer.profiler.campaign_run import plan_lines, run_campaign

    try:
        campaign = load_campaign(args.campaign)
    except CampaignError as e:
        print(f"llmsizer profile: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    out_dir = Path(args.out_dir) if args.out_dir else None
    if args.dry_run:
        lines = plan_lines(campaign, out_dir)
        for line in lines:
            print(line)
        skip = sum(1 for line in lines if re.search(r"^\s*\d+\. skip ", line))
        print(f"{len(campaign.runs)} planned runs ({len(campaign.runs) - skip} to run, {skip} already done)"
              + ("" if out_dir else "; no --out-dir given, so nothing is known to be done"))
        return EXIT_OK
    if out_dir is None:
        raise LlmsizerError("--campaign needs --out-dir DIR (profiles, logs and the campaign log go there)")
    spec = args.device_reader
    summary = run_campaign(campaign, out_dir, reader_factory=lambda: _reader(spec), hz=args.sample_hz,
                           keep_failed=args.keep_failed, device_reader=spec)
    for line in summary.lines():
        print(line)
    return EXIT_FAILED if summary.failed else EXIT_OK
