"""Terminal summary and JSON report of a run, built from the merged profile records and the metrics."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pytest_llmsizer.safe_io import write_replacing
from pytest_llmsizer.sanitize import clean_tree
from pytest_llmsizer.validation.metrics import Metrics

VERDICTS = ("passed", "failed", "error", "xfailed", "xpassed")
"""``error``: the item produced no result (its xdist worker crashed, its setup failed)."""

REPORT_MARKER = b'{\n  "format": "llmsizer-report/1"'
"""The first bytes of every JSON report: a file that starts so may be replaced by the next run's report."""


def summary_lines(records: dict[str, dict[str, Any]], metrics: Metrics, gate_line: str | None,
                  gate_enabled: bool) -> list[str]:
    accuracy = Counter(r.get("accuracy_verdict") for r in records.values())
    integrity = Counter(r.get("integrity_verdict") for r in records.values())
    warned = sum(1 for r in records.values()
                 if any(f["severity"] == "warn" for f in r.get("integrity_findings") or []))
    lines = [
        f"{len(records)} profiles; accuracy: " + ", ".join(f"{accuracy[v]} {v}" for v in VERDICTS if accuracy[v])
        + f"; integrity: {integrity['passed']} passed, {integrity['failed']} failed, "
        + (f"{integrity['error']} error, " if integrity["error"] else "") + f"{warned} with warnings",
        "",
    ]
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
    lines.append(f"{metrics.n_in_gate} profiles in the gate (known failures and unestimated profiles excluded)")
    if not gate_enabled:
        lines.append("gate: off (--llmsizer-no-gate)")
    elif gate_line:
        lines.append(gate_line)
    else:
        lines.append("gate: passed")
    return lines


def write_json_report(path: Path, records: dict[str, dict[str, Any]], metrics: Metrics, *, gate_enabled: bool,
                      gate_line: str | None, meta: dict[str, Any], force: bool = False) -> None:
    """Write the report; an existing file is replaced only if it is one of our reports (``REPORT_MARKER``) or with
    ``force``, and never through a symlink or onto a device (``safe_io.write_replacing``)."""
    doc = {
        "format": "llmsizer-report/1",
        **meta,
        "gate": {"enabled": gate_enabled, "passed": gate_line is None, "message": gate_line},
        "metrics": metrics.to_json(),
        "profiles": [records[k] for k in sorted(records)],
    }
    write_replacing(path, json.dumps(clean_tree(doc), indent=2, sort_keys=False, default=str) + "\n",
                    what="JSON report", force=force, markers=(REPORT_MARKER,), force_option="--llmsizer-json-force")
