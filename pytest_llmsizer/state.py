"""Per-run plugin state, kept in ``config.stash`` (never on private config attributes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_llmsizer.calculator.result import Calculator
from pytest_llmsizer.validation.metrics import Metrics
from pytest_llmsizer.validation.tolerances import Tolerances


@dataclass
class PluginState:
    tolerances: Tolerances
    calculator: Calculator
    calculator_name: str
    tolerances_path: str | None = None
    profile_paths: list[Path] = field(default_factory=list)
    explicit_files: set[Path] = field(default_factory=set)
    profile_glob: str = "*.json"
    csv_path: Path | None = None
    json_path: Path | None = None
    gate_enabled: bool = True
    # controller-side results, filled from test reports (which is how xdist workers' results arrive)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: Metrics | None = None
    gate_line: str | None = None
    gate_evaluated: bool = False
    run_timestamp: str | None = None


STATE_KEY = pytest.StashKey[PluginState]()
