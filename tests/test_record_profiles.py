"""The committed profiles: every one loads and names its source, and each importer's output is up to date.

The qualifying-record counts are computed here from the JSONL files themselves, independently of the importers, so a
bug in an importer's filter shows up as a count mismatch. Each importer's ``--check`` runs here (the CI drift check).
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
from pytest_llmsizer.units import GiB

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILES = REPO_ROOT / "profiles"
SHARED_LOGS = REPO_ROOT.parent / "shared" / "data" / "vllm-startup-logs"

ALL_PROFILE_FILES = sorted(PROFILES.rglob("*.json"))

SOURCES = {
    # shared file -> (profile folder, importer script, schema's GPU field, schema's memory field)
    "issue-threads.jsonl": ("vllm-issue-threads", "import_issue_threads.py", "gpu_name", "total_gpu_memory_gib"),
    "notebooks-and-docs.jsonl": ("vllm-notebooks-and-docs", "import_notebooks_and_docs.py", "gpu_name",
                                 "total_gpu_memory_gib"),
    "vme-dev.jsonl": ("vme-dev", "import_vme_dev.py", "accelerator", "gpu_total_gib"),
}

NOT_IMPORTED_DUPLICATES = {("notebooks-and-docs.jsonl", "noonghunna/club-3090#612")}
"""Records that repeat a log another file already holds (the importer lists them with that reason)."""


def _records(name: str) -> list[dict[str, Any]]:
    with (SHARED_LOGS / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _qualifies(name: str, record: dict[str, Any]) -> bool:
    """Names its model AND (its GPU or its GPU memory), and is not a known duplicate."""
    _, _, gpu, memory = SOURCES[name]
    has_gpu = bool(record.get(gpu)) or record.get(memory) is not None
    return bool(record.get("model")) and has_gpu and (name, record.get("source")) not in NOT_IMPORTED_DUPLICATES


def _reference(name: str, record: dict[str, Any]) -> str:
    if name == "vme-dev.jsonl":
        return f"{record['source']}, record {record['id']}"
    return record["source"]


def test_profiles_folder_has_profiles() -> None:
    assert ALL_PROFILE_FILES, f"no *.json profile under {PROFILES}"


@pytest.mark.parametrize(
    "path", ALL_PROFILE_FILES, ids=[str(p.relative_to(PROFILES)) for p in ALL_PROFILE_FILES]
)
def test_profile_loads_and_names_its_source(path: Path) -> None:
    profile = load_profile(path)
    assert profile.source.reference.strip(), f"{path} does not name its source"
    assert not profile.synthetic


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_one_profile_per_qualifying_record(name: str) -> None:
    folder = PROFILES / SOURCES[name][0]
    qualifying = [r for r in _records(name) if _qualifies(name, r)]
    files = sorted(folder.glob("*.json"))
    assert len(files) == len(qualifying)

    committed: Counter[tuple[str, str | None]] = Counter()
    for path in files:
        profile = load_profile(path)
        assert profile.source.kind == "vllm-log"
        assert profile.source.original_format == f"vllm-startup-log ({name} record)"
        for comp in profile.measurements.components.present().values():
            assert comp.provenance.value in ("engine", "derived")
        committed[(profile.source.reference, profile.model.name_in_source)] += 1
    expected = Counter((_reference(name, r), r["model"]) for r in qualifying)
    assert committed == expected


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_importer_check_passes(name: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / SOURCES[name][1]), "--check"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match the data" in result.stdout


def test_derived_totals_are_the_engine_budget() -> None:
    """Every derived total is utilization x memory (+ the logged graph pool before vLLM 0.21), and says so."""
    checked = 0
    for path in ALL_PROFILE_FILES:
        profile = load_profile(path)
        total = profile.measurements.components.total
        if total is None:
            continue
        assert total.provenance.value == "derived", path
        assert total.note and total.note.startswith("DERIVED, not measured: total = gpu_memory_utilization"), path
        eng, hw = profile.engine, profile.hardware
        assert eng.gpu_memory_utilization is not None and hw.memory_per_gpu_bytes is not None, path
        budget = eng.gpu_memory_utilization * round(hw.memory_per_gpu_bytes / GiB, 2) * GiB
        graphs = profile.measurements.components.cuda_graphs
        extra = graphs.bytes if graphs is not None and "; + CUDA graph pool" in total.note else 0
        assert abs(total.bytes - (budget + extra)) <= 2, path
        checked += 1
    assert checked >= 150  # every vme-dev record has the figures it needs
