"""Runs inside CSV records: one CSV file may hold many runs (the plugin appends), told apart by their timestamp.

A *run* is the rows of one CSV file that share a ``timestamp`` (every writer stamps all rows of one run with the
same time: the plugin, ``validate --record`` and ``batch --csv``). ``compare`` takes the latest run of each file;
``trend`` takes every run of every file, in time order. Pure apart from :func:`load_runs`, which reads the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.report.analyze import Metric, analyze, load_rows
from pytest_llmsizer.validation.tolerances import GateConfig

Row = dict[str, Any]

LOWER_IS_BETTER = {"mean |total error|", "Poor", "weights accuracy (mean |error|)", "KV cache accuracy (mean |error|)"}
"""The guide's success metrics where a smaller value is better (the other gated one, Good or better, is higher)."""
GATED_METRICS = (*sorted(LOWER_IS_BETTER), "Good or better")
"""The metrics a regression is judged on (the count of profiles is shown but is not a quality)."""


@dataclass(frozen=True)
class Run:
    """The rows of one run, where they came from and when."""

    source: str
    """The CSV file (or "this run" for the plugin's own records)."""
    timestamp: str | None
    rows: list[Row]

    @property
    def when(self) -> datetime | None:
        return parse_timestamp(self.timestamp)

    @property
    def label(self) -> str:
        return f"{self.source} @ {self.timestamp or 'no timestamp'}"

    def metrics(self, gate: GateConfig | None = None) -> list[Metric]:
        """The guide's success metrics of this run (``report.analyze``'s definitions, known failures excluded)."""
        return analyze(self.rows, gate).metrics


def parse_timestamp(text: str | None) -> datetime | None:
    """An ISO 8601 timestamp as written by the records (naive ones are taken as UTC); None when absent or unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def runs_of(rows: list[Row], source: str) -> list[Run]:
    """Split CSV rows into runs, oldest first.

    A run is a contiguous block of rows with one timestamp and no profile twice: two runs appended within the same
    second share a timestamp, and the repeated profile tells them apart. Rows without a timestamp sort first.
    """
    runs: list[Run] = []
    seen: set[Any] = set()
    for row in rows:
        ts = row.get("timestamp") or None
        key = row.get("profile_file")
        if not runs or runs[-1].timestamp != ts or key in seen:
            runs.append(Run(source, ts, []))
            seen = set()
        runs[-1].rows.append(row)
        seen.add(key)
    floor = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(runs, key=lambda r: r.when or floor)


def load_runs(path: str | Path) -> list[Run]:
    """Every run in a CSV record, oldest first. Raises LlmsizerError naming the file when it is not a record."""
    rows = load_rows(path)
    if not rows:
        raise LlmsizerError(f"{path}: the CSV record holds no rows")
    return runs_of(rows, str(path))


def latest_run(path: str | Path) -> Run:
    """The newest run of a CSV record (what ``compare`` compares)."""
    return load_runs(path)[-1]


def metric_value(metrics: list[Metric], name: str) -> Metric | None:
    return next((m for m in metrics if m.name == name), None)
