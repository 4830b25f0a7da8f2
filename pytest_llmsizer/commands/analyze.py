"""``llmsizer analyze CSV``: statistics, groups, biases, success metrics and advice from a CSV record."""

from __future__ import annotations

import argparse

from pytest_llmsizer.commands.common import EXIT_OK, add_report_options, tolerances_from_args
from pytest_llmsizer.report.analyze import analyze, load_rows, render


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="summarise a CSV record (from the plugin, validate --record or batch --csv)",
        description="Overall statistics, groups by model size (small < 10B, medium 10-40B, large > 40B) and by GPU "
                    "count, per-component bias and worst cases, the success metrics against their targets, issues "
                    "and recommendations. Known failures are listed apart.",
    )
    p.add_argument("csv", metavar="CSV", help="a CSV record written by pytest-llmsizer")
    p.add_argument("--detailed", action="store_true", help="add one line per profile")
    add_report_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rows = load_rows(args.csv)
    print(render(analyze(rows, tolerances_from_args(args).gate), args.format, args.detailed))
    return EXIT_OK
