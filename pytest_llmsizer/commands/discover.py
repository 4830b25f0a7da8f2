"""Finding profile files for the commands that take paths (batch, check, import)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pytest_llmsizer.errors import LlmsizerError


def profile_files(paths: Iterable[str]) -> list[Path]:
    """Every ``*.json`` under the given directories (recursively, sorted; symlinked folders are not followed, so a
    loop cannot recur) plus the files given directly; a file reached twice (named twice, or through a symlink) is
    listed once, under its real name when a folder holds both."""
    found: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        try:
            real = path.resolve()
        except (OSError, RuntimeError):  # a symlink loop
            real = path
        if real not in seen:
            seen.add(real)
            found.append(path)

    for text in paths:
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.json") if p.is_file())
            for p in [p for p in files if not p.is_symlink()] + [p for p in files if p.is_symlink()]:
                add(p)  # real files first: a profile also reached through a link is listed under its own name
        elif path.exists() or path.is_symlink():
            add(path)
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
