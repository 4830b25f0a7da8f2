"""``llmsizer compare BASE.csv NEW.csv``: metric deltas, band changes and new / missing profiles between two runs."""

from __future__ import annotations

import argparse

from pytest_llmsizer.commands.common import EXIT_FAILED, EXIT_OK, add_report_options, checked, tolerances_from_args
from pytest_llmsizer.report.compare import DEFAULT_MAX_REGRESSION, compare_runs, render_comparison
from pytest_llmsizer.report.runs import latest_run

non_negative_float = checked(float, lambda v: 0 <= v < float("inf"), "a number of percentage points >= 0")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare two CSV records (did accuracy get better or worse?)",
        description="Match profiles by file between the latest run of BASE and of NEW (CSV records from the "
                    "plugin's --llmsizer-csv, validate --record or batch --csv) and print the deltas of the "
                    "success metrics, the profiles whose match band got worse or better, and new / missing "
                    "profiles. Exit 1 on a regression: a band worsening of a gated profile (not a known failure), "
                    "or a gated metric worse by more than --max-regression points.",
    )
    p.add_argument("base", metavar="BASE.csv", help="the earlier record")
    p.add_argument("new", metavar="NEW.csv", help="the later record")
    p.add_argument("--max-regression", type=non_negative_float, default=DEFAULT_MAX_REGRESSION, metavar="POINTS",
                   help=f"percentage points a gated metric may worsen (default {DEFAULT_MAX_REGRESSION:g})")
    add_report_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    comparison = compare_runs(latest_run(args.base), latest_run(args.new), tolerances_from_args(args).gate,
                              max_regression=args.max_regression)
    print(render_comparison(comparison, args.format))
    return EXIT_FAILED if comparison.regressed else EXIT_OK
