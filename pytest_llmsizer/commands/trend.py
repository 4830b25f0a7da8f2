"""``llmsizer trend CSV... [--plot trend.png]``: the success metrics of every run, in time order."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_llmsizer.commands.common import EXIT_OK, add_report_options, tolerances_from_args
from pytest_llmsizer.commands.discover import csv_files
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.report.runs import load_runs
from pytest_llmsizer.report.trend import render_trend, trend, write_trend_png
from pytest_llmsizer.safe_io import check_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trend", help="success metrics over runs (CSV records), as a table and a plot",
        description="Every run in the CSV records given (rows sharing a timestamp; a record the plugin appended to "
                    "holds several), in time order, with the guide's success metrics: a table, and with --plot a "
                    "PNG. Directories are searched for *.csv (files there that are not records are skipped, named "
                    "on stderr).",
    )
    p.add_argument("paths", nargs="+", metavar="CSV", help="CSV records or directories holding them")
    p.add_argument("--plot", metavar="PNG", help="also write the metrics over runs as a PNG image")
    p.add_argument("--force", action="store_true", help="replace an existing --plot file that is not a PNG image")
    add_report_options(p)
    p.set_defaults(handler=run)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""First bytes of a PNG file: an existing image at --plot is replaced, anything else only with --force."""


def run(args: argparse.Namespace) -> int:
    if args.plot:  # before any work: never through a symlink, onto a device, or over a file that is not an image
        check_output(Path(args.plot), what="plot", force=args.force, markers=(PNG_SIGNATURE,))
    runs = []
    for text in args.paths:
        files = csv_files([text])
        for f in files:
            try:
                runs += load_runs(f)
            except LlmsizerError as e:
                if f == Path(text):
                    raise  # a file named explicitly must be a record
                print(f"skipped {f}: {str(e).split(': ', 2)[1]}", file=sys.stderr)
    if not runs:
        raise LlmsizerError(f"no CSV record found under {' '.join(args.paths)}")
    points = trend(runs, tolerances_from_args(args).gate)
    print(render_trend(points, args.format))
    if args.plot:
        if write_trend_png(points, args.plot):
            print(f"plot: {args.plot}", file=sys.stderr)
        else:
            print("plot: nothing to plot (no run has a success metric with data)", file=sys.stderr)
    return EXIT_OK
