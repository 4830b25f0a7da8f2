"""Per-run plugin state in ``config.stash`` (never on private config attributes): what the run was configured with
(frozen) and, on the controller only, what it found (``RunResults``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the plugin imports this module in every pytest run: keep it free of the heavy core
    from pytest_llmsizer.calculator.result import Calculator
    from pytest_llmsizer.settings import Settings
    from pytest_llmsizer.validation.metrics import Metrics
    from pytest_llmsizer.validation.record import ProfileRecord
    from pytest_llmsizer.validation.tolerances import Tolerances


@dataclass(frozen=True)
class PluginState:
    """The run's configuration, loaded: set once in ``pytest_configure`` of every process (controller and workers),
    only when the run has something to do with profiles."""

    settings: Settings
    tolerances: Tolerances
    calculator: Calculator
    calculator_name: str
    """What the records call the calculator: the spec, the command, or the calibration's label."""

    @property
    def gate_enabled(self) -> bool:
        return self.settings.gate and self.tolerances.gate.enabled


@dataclass
class RunResults:
    """What the controller gathered from the test reports (which is how xdist workers' results arrive)."""

    records: dict[str, ProfileRecord] = field(default_factory=dict)
    """profile_file -> its validation record, as the pipeline made it."""
    ran: dict[str, set[str]] = field(default_factory=dict)
    """profile_file -> the checks (accuracy, integrity) whose items ran in this session."""
    metrics: Metrics | None = None
    gate_line: str | None = None
    """The gate's failure line, None when it passed or was not evaluated."""
    gate_note: str | None = None
    """Why the gate was not evaluated (no accuracy item ran, --collect-only, turned off), None when it was."""
    timestamp: str | None = None
    """One timestamp per run: the CSV rows and the baseline comparison share it."""
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    """profile_file -> check -> why its item produced no result (its xdist worker crashed, its setup failed)."""
    placeholders: dict[str, ProfileRecord] = field(default_factory=dict)
    """profile_file -> an empty record, for a profile whose every item died (no pipeline record arrived)."""

    def add(self, check: str, record: ProfileRecord) -> None:
        file = record["profile_file"]
        # the accuracy item's record wins (an integrity item's is the same record from the same pipeline)
        if check == "accuracy" or file not in self.records:
            self.records[file] = record
        self.ran.setdefault(file, set()).add(check)

    def final_records(self) -> list[ProfileRecord]:
        """The records sorted by file, with the verdict of a check whose item did not run left empty (None)."""
        out = []
        for file in sorted(set(self.records) | set(self.placeholders)):
            record = self.records.get(file) or self.placeholders[file]
            ran = self.ran.get(file, set())
            if "accuracy" not in ran or "integrity" not in ran:
                record = record.copy()
                if "accuracy" not in ran:
                    record["accuracy_verdict"] = record["node_id"] = None
                if "integrity" not in ran:
                    record["integrity_verdict"] = None
            errors = self.errors.get(file)
            if errors:  # never an empty verdict for an item that ran and died: "error", counted by the summary
                record = record.copy()
                for check, reason in errors.items():
                    record[f"{check}_verdict"] = "error"  # type: ignore[literal-required]
                    if check == "accuracy":
                        record["node_id"] = f"{file}::accuracy"
                        record["error"] = reason
            out.append(record)
        return out


STATE_KEY = pytest.StashKey["PluginState"]()
RESULTS_KEY = pytest.StashKey["RunResults"]()
