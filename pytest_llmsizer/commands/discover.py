"""Finding profile files for the commands that take paths (batch, check, import)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pytest_llmsizer.errors import LlmsizerError


def profile_files(paths: Iterable[str]) -> list[Path]:
    """Every ``*.json`` under the given directories (recursively, sorted) plus the files given directly."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif path.exists():
            found.append(path)
        else:
            raise LlmsizerError(f"{path}: no such file or directory")
    return found


def csv_files(paths: Iterable[str]) -> list[Path]:
    """Every ``*.csv`` under the given directories (recursively, sorted) plus the files given directly."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.csv") if p.is_file())
        elif path.exists():
            found.append(path)
        else:
            raise LlmsizerError(f"{path}: no such file or directory")
    return found
