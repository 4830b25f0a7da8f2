"""Shared pieces of the ``llmsizer`` subcommands: argument types, calculator and tolerance options, file output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_llmsizer.calculator.coefficient_set import load_calibration
from pytest_llmsizer.calculator.result import Calculator
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.pluggable.loader import calibrated, calibration_label, load_calculator
from pytest_llmsizer.safe_io import write_replacing
from pytest_llmsizer.validation.tolerances import Tolerances, load_tolerances

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def checked(convert: Callable[[str], float], accept: Callable[[float], bool], expected: str) -> Callable[[str], Any]:
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


positive_int = checked(int, lambda v: v >= 1, "a positive integer")
non_negative_int = checked(int, lambda v: v >= 0, "an integer >= 0")
fraction = checked(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
positive_float = checked(float, lambda v: 0 < v < float("inf"), "a positive number")
memory_gib = checked(float, lambda v: 0 < v <= 2**20, "a positive amount of memory, at most 1048576 (GiB or GB)")
timeout_seconds = checked(float, lambda v: 0 < v <= 1e6, "a positive number of seconds, at most 1000000")
mib = checked(lambda t: round(float(t) * 2**20), lambda v: 0 < v < 2**50, "a positive size in MiB")


def _parse_parameter_count(text: str) -> float:
    """'8030261248', '8.03e9' or '8.03B' (billions)."""
    text = text.strip()
    if text[-1:] in ("b", "B"):
        return float(text[:-1]) * 1e9
    return float(text)


parameter_count = checked(_parse_parameter_count, lambda v: 1 <= v <= 1e15,
                          "a parameter count such as 8.03e9 or 8.03B (at most 1e15)")


def add_calculator_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("calculator")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--calculator", metavar="SPEC", default=None,
                        help="'builtin' (default), an entry point of group pytest_llmsizer.calculators, or "
                             "'module:attribute'")
    choice.add_argument("--calculator-cmd", metavar="COMMAND", default=None,
                        help="an external calculator speaking the JSON protocol on stdin/stdout (see README)")
    group.add_argument("--calculator-timeout", type=timeout_seconds, default=60.0, metavar="SECONDS",
                       help="time limit per profile for --calculator-cmd, or for a Python --calculator (run in a "
                            "thread; see README) (default 60)")
    group.add_argument("--tolerances", metavar="PATH", default=None,
                       help="tolerances YAML (default: ./tolerances.yaml if present, else built-in defaults)")
    group.add_argument("--calibration", metavar="FILE", default=None,
                       help="coefficients fitted by `llmsizer calibrate` for the built-in calculator")


def add_report_options(p: argparse.ArgumentParser) -> None:
    """``--format`` and ``--tolerances`` of the commands that summarise CSV records (analyze, compare, trend)."""
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    p.add_argument("--tolerances", metavar="PATH", default=None,
                   help="take the success-metric targets from this tolerances YAML (gate: section)")


def calculator_from_args(args: argparse.Namespace) -> tuple[Calculator, str]:
    calibration = getattr(args, "calibration", None)
    if calibration:
        if args.calculator_cmd or (args.calculator or "builtin").strip() != "builtin":
            raise LlmsizerError("--calibration applies to the built-in calculator only")
        coefficients = load_calibration(calibration)
        return calibrated(coefficients), calibration_label(coefficients)
    if args.calculator_cmd:
        from pytest_llmsizer.pluggable.command import command_calculator

        return command_calculator(args.calculator_cmd, args.calculator_timeout), args.calculator_cmd
    from pytest_llmsizer.pluggable.runner import with_timeout

    name = args.calculator or "builtin"
    return with_timeout(load_calculator(args.calculator), args.calculator_timeout, name), name


def tolerances_from_args(args: argparse.Namespace) -> Tolerances:
    if args.tolerances:
        return load_tolerances(args.tolerances)
    default = Path("tolerances.yaml")
    return load_tolerances(default if default.is_file() else None)


def write_new_file(path: Path, text: str, *, force: bool, markers: tuple[bytes, ...] = (),
                   what: str = "output") -> None:
    """Write ``path`` atomically; refuse to replace an existing file unless ``force`` or it starts with one of
    ``markers`` (a report this command wrote), and never write through a symlink or onto a device, FIFO or read-only
    file, even with ``force`` (``safe_io.write_replacing``): never lose user data."""
    write_replacing(path, text, what=what, force=force, markers=markers)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str) + "\n"
