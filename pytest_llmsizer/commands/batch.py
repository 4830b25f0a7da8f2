"""``llmsizer batch PATH...``: validate every profile found, one text and one JSON report each, and a summary.

A broken profile is reported and counted, never a crash of the batch. Progress goes to stderr, one line per profile.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from pytest_llmsizer.api import report_from_record
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
from pytest_llmsizer.errors import LlmsizerError, ProfileError
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.report.csv_record import append_records
from pytest_llmsizer.report.summary import summary_lines
from pytest_llmsizer.report.text import render_validation
from pytest_llmsizer.safe_io import check_output
from pytest_llmsizer.sanitize import clean_block, clean_tree
from pytest_llmsizer.validation.bands import ORDER
from pytest_llmsizer.validation.metrics import compute_metrics, gate_failure_line, gate_skipped_line
from pytest_llmsizer.validation.pipeline import internal_error, validate
from pytest_llmsizer.validation.record import ProfileRecord, fails_the_run

BATCH_MARKERS = (b"LLM sizer validation: ", b'{\n  "profile_file": ', b"llmsizer batch ")
"""First bytes of the files batch writes (text report, JSON report, summary): those it may replace on a rerun."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch", help="validate every profile under some paths",
        description="Validate every profile found (directories are searched for *.json), write a text and a JSON "
                    "report per profile into --out-dir and a batch-summary-YYYYmmdd_HHMMSS.txt. Exit 0 when every "
                    "profile passes as the pytest plugin would judge it (within tolerances, integrity sound; known "
                    "failures excepted), 1 otherwise.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="profile files or directories")
    p.add_argument("--out-dir", default="results/validation-reports", metavar="DIR",
                   help="where the reports go (default results/validation-reports)")
    p.add_argument("--csv", metavar="CSV", help="also append every result to a CSV record (the plugin's rows: one per "
                                               "profile, broken ones included)")
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


def relative_name(path: Path) -> str:
    """The path as the plugin names a profile: relative to the current directory (the project root) when it is
    inside it, with ``/`` separators; tolerances.yaml matches known failures and overrides against this."""
    absolute = path.absolute()
    cwd = Path.cwd()
    return absolute.relative_to(cwd).as_posix() if absolute.is_relative_to(cwd) else path.as_posix()


def _selection(paths: list[str]) -> bool:
    """Whether the paths pick part of the profiles, by the plugin's rule: the whole set is ``./profiles`` (the
    plugin's default profile directory) or a directory holding it; anything narrower is a selection, for which the
    gate's ``min_profiles`` is shown but not judged, as under ``pytest -k``."""
    whole = (Path.cwd() / "profiles").resolve()
    return not any(whole == (p := Path(text).resolve()) or whole.is_relative_to(p) for text in paths)


def _line(record: ProfileRecord) -> str:
    """One line of the batch summary, from the record's verdicts."""
    file, verdict = record["profile_file"], record["accuracy_verdict"]
    band = record["match_quality"] or "not compared"
    pct = "-" if record["primary_error_pct"] is None else f"{record['primary_error_pct']:+.2f}%"
    known = f" [known failure: {record['known_failure']}]" if record["known_failure"] else ""
    integrity = " [integrity FAILED]" if record["integrity_verdict"] == "failed" else ""
    if record["error"] is not None:
        mark = "~" if verdict == "xfailed" else "✗"
        return f"{mark} {file} - ERROR: {record['error'].replace(chr(10), ' ')}{known}{integrity}"
    mark = {"passed": "✓", "xpassed": "✓", "xfailed": "~"}.get(verdict or "", "✗")
    return f"{mark} {file} - {band} ({record['primary_quantity'] or '-'} {pct}){known}{integrity}"


def run(args: argparse.Namespace) -> int:
    files = profile_files(args.paths)
    if not files:
        raise LlmsizerError(f"no *.json files found under {' '.join(args.paths)}")
    if args.csv:  # a symlink or device there is refused now, not after every profile was validated
        check_output(Path(args.csv), what="CSV record", append=True)
    tolerances = tolerances_from_args(args)
    calculator, name = calculator_from_args(args)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def write(name: str, text: str) -> None:
        write_new_file(out_dir / name, text, force=args.force, markers=BATCH_MARKERS, what="batch report")

    now = datetime.now(timezone.utc)
    lines: list[str] = []
    records: list[ProfileRecord] = []
    used: set[str] = set()
    for i, path in enumerate(files, 1):
        stem = _report_stem(path, used)
        file = relative_name(path)
        profile, load_error = None, None
        try:
            profile = load_profile(path)
        except ProfileError as e:
            load_error = e.render()
        except Exception as e:  # a reader bug fails this profile, never the batch
            load_error = f"{path}: $: {internal_error('reading the profile', e)}"
        record = validate(profile, file, calculator=calculator, calculator_name=name, tolerances=tolerances,
                          load_error=load_error)
        records.append(record)
        lines.append(_line(record))
        if profile is None:
            write(f"{stem}_validation.txt", f"LLM sizer validation: {file}\nERROR: {record['error']}\n")
            write(f"{stem}_validation.json", dump_json(clean_tree(record)))
        else:
            report = report_from_record(profile, record)
            write(f"{stem}_validation.txt", clean_block(render_validation(report)) + "\n")
            write(f"{stem}_validation.json", dump_json(clean_tree(report.to_json())))
        print(f"[{i}/{len(files)}] {file}: {record['accuracy_verdict']} ({record['match_quality'] or 'not compared'})",
              file=sys.stderr)
    metrics = compute_metrics(records, tolerances.gate, selection=_selection(args.paths))
    errors = sum(r["error"] is not None and r["accuracy_verdict"] == "failed" for r in records)
    outside = sum(r["error"] is None and r["accuracy_verdict"] == "failed" for r in records)
    known = sum(r["accuracy_verdict"] == "xfailed" for r in records)
    integrity_failed = sum(r["integrity_verdict"] == "failed" for r in records)
    good = metrics.row("Good or better")
    success = "no data" if good is None or good.value is None else f"{good.value:.1f}% of {good.n}"
    gate_note = gate_skipped_line(metrics)
    totals = [
        f"Total: {len(files)}",
        *[f"{b}: {metrics.band_counts[b]}" for b in ORDER],
        f"Not compared: {sum(r['match_quality'] is None and r['accuracy_verdict'] != 'xfailed' for r in records)}",
        f"Errors: {errors}",
        f"Outside tolerances: {outside}",
        f"Integrity failed: {integrity_failed}",
        f"Known failures (tolerances.yaml, not counted above): {known}",
        f"Success rate (Good or better, known failures excluded): {success}",
    ]
    summary = [
        f"llmsizer batch {now.isoformat(timespec='seconds')} (calculator: {name})",
        "",
        *lines,
        "",
        *totals,
        "",
        *(metric_lines := summary_lines(records, metrics, gate_failure_line(metrics), gate_note)),
    ]
    summary_path = out_dir / f"batch-summary-{now.strftime('%Y%m%d_%H%M%S')}.txt"
    write(summary_path.name, "\n".join(summary) + "\n")
    if args.csv and records:
        append_records(Path(args.csv), records, now.isoformat(timespec="seconds"))
    print("\n".join(totals))
    print(metric_lines[-1])  # the gate's verdict on these profiles (batch's exit code does not depend on it)
    print(f"reports: {out_dir}  summary: {summary_path}")
    return EXIT_FAILED if any(fails_the_run(r) for r in records) else EXIT_OK
