"""The committed profiles: every one loads and names its source, and the issue-thread import is up to date.

The qualifying-record count is computed here from the JSONL itself, independently of the import script, so
a bug in the script's filter shows up as a count mismatch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_llmsizer.profile.load import load_profile

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILES = REPO_ROOT / "profiles"
ISSUE_THREAD_PROFILES = PROFILES / "vllm-issue-threads"
SCRIPT = REPO_ROOT / "scripts" / "import_issue_threads.py"
ISSUE_THREADS = REPO_ROOT.parent / "shared" / "data" / "vllm-startup-logs" / "issue-threads.jsonl"

ALL_PROFILE_FILES = sorted(PROFILES.rglob("*.json"))


def _issue_thread_records() -> list[dict[str, Any]]:
    with ISSUE_THREADS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _qualifies(record: dict[str, Any]) -> bool:
    """Names its model AND (its GPU or its GPU memory)."""
    has_gpu = bool(record.get("gpu_name")) or record.get("total_gpu_memory_gib") is not None
    return bool(record.get("model")) and has_gpu


def test_profiles_folder_has_profiles() -> None:
    assert ALL_PROFILE_FILES, f"no *.json profile under {PROFILES}"


@pytest.mark.parametrize(
    "path", ALL_PROFILE_FILES, ids=[str(p.relative_to(PROFILES)) for p in ALL_PROFILE_FILES]
)
def test_profile_loads_and_names_its_source(path: Path) -> None:
    profile = load_profile(path)
    assert profile.source.reference.strip(), f"{path} does not name its source"


def test_one_profile_per_qualifying_record() -> None:
    qualifying = [r for r in _issue_thread_records() if _qualifies(r)]
    files = sorted(ISSUE_THREAD_PROFILES.glob("*.json"))
    assert len(files) == len(qualifying)

    committed: Counter[tuple[str, str | None]] = Counter()
    for path in files:
        profile = load_profile(path)
        assert profile.source.kind == "vllm-log"
        committed[(profile.source.reference, profile.model.name_in_source)] += 1
    expected = Counter((r["source"], r["model"]) for r in qualifying)
    assert committed == expected


def test_import_script_check_passes() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
