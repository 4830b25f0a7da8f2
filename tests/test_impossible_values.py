"""Physically impossible measurements fail, with the JSON path, through every door: the loader, ``llmsizer check``,
the integrity check and both pytest items (issue 9, point 5). The profiles are a real committed one with one value
replaced: clearly marked synthetic edge cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmsizer.errors import ProfileError
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.validation.integrity import check_profile
from pytest_llmsizer.validation.tolerances import INTEGRITY_DEFAULTS

REPO = Path(__file__).resolve().parents[1]
LLAMA = REPO / "profiles" / "vllm-issue-threads" / "vllm-10511--meta-llama-3-8b.json"
WEIGHTS = "$.measurements.components.weights.bytes"


def _data(**change: int) -> dict:
    data = json.loads(LLAMA.read_text())
    data["synthetic"] = True
    for name, value in change.items():
        data["measurements"]["components"][name]["bytes"] = value
    return data


@pytest.mark.parametrize(("component", "value", "expected"), [
    ("weights", -5, "cannot be negative"),
    ("activations", -1, "cannot be negative"),
    ("weights", 10**15, "exceeds the GPU's memory"),
])
def test_loader_rejects_with_the_json_path(tmp_path: Path, component: str, value: int, expected: str):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_data(**{component: value})))
    with pytest.raises(ProfileError) as e:
        load_profile(path)
    (problem,) = e.value.problems
    assert problem.path == f"$.measurements.components.{component}.bytes"
    assert "physically impossible" in problem.message and expected in problem.message


def test_engine_deltas_may_be_negative(tmp_path: Path):
    # vLLM logs CUDA-graph capture "took -0.8 GiB" (real, vme-dev.jsonl); a negative KV pool is the integrity
    # check's to fail, not the loader's
    data = _data(kv_cache=-2 * 2**30)
    data["measurements"]["components"]["cuda_graphs"] = {"bytes": -858993459, "provenance": "engine",
                                                         "confidence": "high"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    report = check_profile(load_profile(path), INTEGRITY_DEFAULTS)
    assert "impossible_values" in [f.check for f in report.findings if f.severity == "fail"]


def test_integrity_check_flags_a_profile_built_in_code():
    profile = Profile.model_validate(_data(weights=-5))  # the model accepts it; the loader would not
    report = check_profile(profile, INTEGRITY_DEFAULTS)
    failed = [f for f in report.findings if f.severity == "fail"]
    assert any(f.check == "impossible_values" and WEIGHTS in f.message for f in failed)


def test_check_command_fails_with_the_json_path(tmp_path: Path):
    (tmp_path / "neg.json").write_text(json.dumps(_data(weights=-5)))
    proc = subprocess.run([sys.executable, "-m", "pytest_llmsizer.cli", "check", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1
    assert f"{WEIGHTS}: physically impossible: -5 bytes" in proc.stdout


def test_both_items_fail_and_no_absurd_percentage(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nllmsizer_profile_paths = profiles\n"
                     "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n")
    (pytester.path / "profiles").mkdir()
    (pytester.path / "profiles" / "neg.json").write_text(json.dumps(_data(weights=-5)))
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmsizer-no-gate")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"*profile unreadable*{WEIGHTS}: physically impossible*"])
    assert "1386526200420" not in result.stdout.str()
