"""``llmsizer batch PATH...``: validate every profile found, one text and one JSON report each, and a summary.

A broken profile is reported and counted, never a crash of the batch. Progress goes to stderr, one line per profile.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from pytest_llmsizer.api import validate_loaded
from pytest_llmsizer.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_calculator_options,
    calculator_from_args,
    dump_json,
    tolerances_from_args,
    write_new_file,
)
from pytest_llmsizer.commands.discover import profile_files
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.report.csv_record import append_records
from pytest_llmsizer.report.text import render_validation
from pytest_llmsizer.sanitize import clean_block, clean_tree
from pytest_llmsizer.validation.bands import GOOD_OR_BETTER, ORDER

BATCH_MARKERS = (b"LLM sizer validation: ", b'{\n  "profile_file": ', b"llmsizer batch ")
"""First bytes of the files batch writes (text report, JSON report, summary): those it may replace on a rerun."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch", help="validate every profile under some paths",
        description="Validate every profile found (directories are searched for *.json), write a text and a JSON "
                    "report per profile into --out-dir and a batch-summary-YYYYmmdd_HHMMSS.txt. Exit 0 when every "
                    "profile is within tolerances (known failures excepted), 1 otherwise.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="profile files or directories")
    p.add_argument("--out-dir", default="results/validation-reports", metavar="DIR",
                   help="where the reports go (default results/validation-reports)")
    p.add_argument("--csv", metavar="CSV", help="also append every result to a CSV record")
    p.add_argument("--force", action="store_true",
                   help="replace existing report files in --out-dir that this command did not write")
    add_calculator_options(p)
    p.set_defaults(handler=run)


def _report_stem(path: Path, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem) or "profile"
    name, n = stem, 2
    while name in used:
        name, n = f"{stem}-{n}", n + 1
    used.add(name)
    return name


def run(args: argparse.Namespace) -> int:
    files = profile_files(args.paths)
    if not files:
        raise LlmsizerError(f"no *.json files found under {' '.join(args.paths)}")
    tolerances = tolerances_from_args(args)
    calculator, name = calculator_from_args(args)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def write(name: str, text: str) -> None:
        write_new_file(out_dir / name, text, force=args.force, markers=BATCH_MARKERS, what="batch report")

    now = datetime.now(timezone.utc)
    lines, records, used = [], [], set()
    bands: Counter = Counter()
    gated: Counter = Counter()  # bands of profiles that are not known failures: the success rate, as the gate
    errors = failures = known = 0
    for i, path in enumerate(files, 1):
        stem = _report_stem(path, used)
        profile = None
        try:
            profile = load_profile(path)
            report = validate_loaded(profile, str(path), calculator=calculator, calculator_name=name,
                                     tolerances=tolerances)
        except Exception as e:  # any failure is this profile's, never the batch's (a bug is still reported)
            if not isinstance(e, LlmsizerError):
                e = LlmsizerError(f"internal error ({type(e).__name__}: {e}); please report it with this profile")
            message = str(e).replace("\n", " ")
            entry = tolerances.known_failure(profile, str(path)) if profile is not None else None
            if entry is not None:
                known += 1
                lines.append(f"~ {path} - NOT ESTIMATED: {message} [known failure: {entry.reason}]")
            else:
                errors += 1
                lines.append(f"✗ {path} - ERROR: {message}")
            write(f"{stem}_validation.txt", f"LLM sizer validation: {path}\nERROR: {e}\n")
            write(f"{stem}_validation.json", dump_json({"profile_file": str(path), "error": str(e)}))
            print(f"[{i}/{len(files)}] {path}: {'known failure' if entry else 'ERROR'}", file=sys.stderr)
            continue
        records.append(report.record)
        s = report.summary
        band = s.overall_match or "not compared"
        bands[band] += 1
        known_reason = report.record.get("known_failure")
        if not known_reason:
            gated[band] += 1
        if not s.passed and known_reason:
            known += 1
        elif not s.passed:
            failures += 1
        pct = "-" if s.total_percent_diff is None else f"{s.total_percent_diff:+.2f}%"
        mark = "✓" if s.passed else ("~" if known_reason else "✗")
        suffix = f" [known failure: {known_reason}]" if (known_reason and not s.passed) else ""
        lines.append(f"{mark} {path} - {band} ({s.basis or '-'} {pct}){suffix}")
        write(f"{stem}_validation.txt", clean_block(render_validation(report)) + "\n")
        write(f"{stem}_validation.json", dump_json(clean_tree(report.to_json())))
        print(f"[{i}/{len(files)}] {path}: {band}", file=sys.stderr)
    compared = sum(gated[b] for b in ORDER)
    success = 100 * sum(gated[b] for b in GOOD_OR_BETTER) / compared if compared else 0.0
    summary = [
        f"llmsizer batch {now.isoformat(timespec='seconds')} (calculator: {name})",
        "",
        *lines,
        "",
        f"Total: {len(files)}",
        *[f"{b}: {bands[b]}" for b in ORDER],
        f"Not compared: {bands['not compared']}",
        f"Errors: {errors}",
        f"Outside tolerances: {failures}",
        f"Known failures (tolerances.yaml): {known}",
        f"Success rate (Good or better, known failures excluded): {success:.1f}% of {compared}",
    ]
    summary_path = out_dir / f"batch-summary-{now.strftime('%Y%m%d_%H%M%S')}.txt"
    write(summary_path.name, "\n".join(summary) + "\n")
    if args.csv and records:
        append_records(Path(args.csv), records, now.isoformat(timespec="seconds"))
    print("\n".join(summary[-(len(ORDER) + 6):]))
    print(f"reports: {out_dir}  summary: {summary_path}")
    return EXIT_FAILED if errors or failures else EXIT_OK
