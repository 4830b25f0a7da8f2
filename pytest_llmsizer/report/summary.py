"""Terminal summary and JSON report of a run (the plugin's and ``llmsizer batch``'s), built from the validation
records and the one metrics function's result."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmsizer.safe_io import write_replacing
from pytest_llmsizer.sanitize import clean_tree
from pytest_llmsizer.validation.metrics import Metrics
from pytest_llmsizer.validation.record import ProfileRecord

VERDICTS = ("passed", "failed", "error", "xfailed", "xpassed")
"""``error``: the item produced no result (its xdist worker crashed, its setup failed)."""

REPORT_MARKER = b'{\n  "format": "llmsizer-report/1"'
"""The first bytes of every JSON report: a file that starts so may be replaced by the next run's report."""


def _counts(counter: Counter, names: Sequence[str]) -> str:
    return ", ".join(f"{counter[v]} {v}" for v in names if counter[v]) or "not run"


def summary_lines(records: Sequence[ProfileRecord], metrics: Metrics, gate_line: str | None,
                  gate_note: str | None) -> list[str]:
    """The success metrics (metric, target, current), band counts, largest errors and the gate's verdict: the
    gate line when it failed, else the note saying why it was not evaluated, else "gate: passed"."""
    accuracy = Counter(r["accuracy_verdict"] for r in records)
    integrity = Counter(r["integrity_verdict"] for r in records)
    warned = sum(1 for r in records if any(f["severity"] == "warn" for f in r["integrity_findings"]))
    integrity_text = "not run"
    if integrity["passed"] or integrity["failed"] or integrity["error"]:
        errored = f"{integrity['error']} error, " if integrity["error"] else ""
        integrity_text = f"{integrity['passed']} passed, {integrity['failed']} failed, {errored}{warned} with warnings"
    lines = [
        f"{len(records)} profiles; accuracy: {_counts(accuracy, VERDICTS)}; integrity: {integrity_text}",
        "",
    ]
    if not metrics.n_in_gate:  # nothing to measure: one line says why, no table of empty metrics
        return [lines[0], gate_note or gate_line or "no profile in the gate"]
    width = max(len(r.name) for r in metrics.rows) if metrics.rows else 10
    lines.append(f"{'metric':<{width}}  {'target':<8}  current")
    for row in metrics.rows:
        status = "" if row.passed is None else ("  ok" if row.passed else "  MISSED")
        lines.append(f"{row.name:<{width}}  {row.target:<8}  {row.current}{status}")
    lines.append("")
    lines.append("match bands: " + ", ".join(f"{name} {n}" for name, n in metrics.band_counts.items()))
    if metrics.worst:
        lines.append("largest errors:")
        for w in metrics.worst:
            pct = "-" if w["percent"] is None else f"{w['percent']:+.2f}%"
            lines.append(f"  {w['profile_file']}: {w['quantity']} {pct} ({w['band']})")
    lines.append(f"{metrics.n_in_gate} profiles in the gate ({metrics.n_known_failures} known failures and "
                 f"{metrics.n_records - metrics.n_in_gate - metrics.n_known_failures} not compared or not run "
                 "left out)")
    lines.append(gate_line or gate_note or "gate: passed")
    return lines


def json_report(records: Sequence[ProfileRecord], metrics: Metrics, *, gate_enabled: bool, gate_line: str | None,
                gate_note: str | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "format": "llmsizer-report/1",
        **(meta or {}),
        "gate": {"enabled": gate_enabled, "evaluated": gate_note is None and gate_enabled,
                 "passed": gate_line is None, "message": gate_line or gate_note},
        "metrics": metrics.to_json(),
        "profiles": sorted(records, key=lambda r: r["profile_file"]),
    }


def write_json_report(path: Path, records: Sequence[ProfileRecord], metrics: Metrics, *, gate_enabled: bool,
                      gate_line: str | None, gate_note: str | None = None, meta: dict[str, Any] | None = None,
                      force: bool = False) -> None:
    """Write the report; an existing file is replaced only if it is one of our reports (``REPORT_MARKER``) or with
    ``force``, and never through a symlink or onto a device (``safe_io.write_replacing``)."""
    doc = json_report(records, metrics, gate_enabled=gate_enabled, gate_line=gate_line, gate_note=gate_note,
                      meta=meta)
    write_replacing(path, json.dumps(clean_tree(doc), indent=2, sort_keys=False, default=str) + "\n",
                    what="JSON report", force=force, markers=(REPORT_MARKER,), force_option="--llmsizer-json-force")
