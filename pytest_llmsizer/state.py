"""Per-run plugin state, kept in ``config.stash`` (never on private config attributes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_llmsizer.calculators import Calculator
from pytest_llmsizer.validation.tolerances import Tolerances


@dataclass
class PluginState:
    tolerances: Tolerances
    calculator: Calculator
    calculator_name: str
    profile_paths: list[Path] = field(default_factory=list)
    explicit_files: set[Path] = field(default_factory=set)
    profile_glob: str = "*.json"


STATE_KEY = pytest.StashKey[PluginState]()
