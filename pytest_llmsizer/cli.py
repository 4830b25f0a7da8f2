"""The ``llmsizer`` command: one subcommand per module in ``pytest_llmsizer.commands``.

Exit codes (README.md documents them): 0 success; 1 compared and outside tolerance, or problems found; 2 bad input
(unknown model or GPU, unreadable profile, invalid option), with a one-line message and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import resources
from typing import NoReturn

from pytest_llmsizer import __version__
from pytest_llmsizer.commands import (
    analyze,
    batch,
    calibrate,
    check,
    compare,
    estimate,
    gpus,
    importer,
    profile,
    trend,
    validate,
)
from pytest_llmsizer.commands.common import EXIT_OK, EXIT_USAGE
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.sanitize import SafeTextStream, clean


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the contract: exit 2, one line, no traceback)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _run_schema(args: argparse.Namespace) -> int:
    print(resources.files("pytest_llmsizer").joinpath("schema/profile.schema.json").read_text(encoding="utf-8"))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="llmsizer", description="GPU memory for LLM inference: estimate and validate.",
        epilog="Exit codes: 0 success; 1 compared and outside tolerances, or problems found; 2 bad input (unknown "
               "model or GPU, unreadable profile, invalid option, refusing to overwrite); 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    estimate.add_parser(sub)
    validate.add_parser(sub)
    batch.add_parser(sub)
    check.add_parser(sub)
    analyze.add_parser(sub)
    compare.add_parser(sub)
    trend.add_parser(sub)
    calibrate.add_parser(sub)
    importer.add_parser(sub)
    profile.add_parser(sub)
    gpus.add_parser(sub)
    schema = sub.add_parser("schema", help="print the JSON Schema of the native profile format",
                            description="Print the JSON Schema (draft 2020-12) of the native profile format.")
    schema.set_defaults(handler=_run_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; everything it prints goes through ``SafeTextStream`` (no terminal escapes)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeTextStream(sys.stdout), SafeTextStream(sys.stderr)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = saved


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except LlmsizerError as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"llmsizer {args.command}: error: {clean(message, 2000)}", file=sys.stderr)
        return EXIT_USAGE
    except OverflowError as e:  # a number beyond what the arithmetic can hold, from an input not checked above
        print(f"llmsizer {args.command}: error: a number is out of range ({clean(str(e))})", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"llmsizer {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
