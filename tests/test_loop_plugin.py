"""The plugin's --llmsizer-calibration and --llmsizer-baseline, end to end through pytester on committed profiles."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from pytester_project import INI, make_project

from pytest_llmsizer.calculator.coefficient_set import builtin_set
from pytest_llmsizer.report import trend as _trend  # noqa: F401  numpy loads once per process: before pytester runs

# real profiles within tolerance whose KV figures depend on the fitted coefficients (vLLM 0.3-0.6, one GPU)
GOOD = ("vllm-4454--opt-125m.json", "vllm-windows-6--opt-125m.json", "vllm-2031--llama-2-7b.json")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_project(pytester, GOOD)


def _calibration(path: Path, non_torch_gib: float, name: str = "wider") -> Path:
    doc = builtin_set().to_document()
    doc["name"] = name
    doc["scope"] = {"engine_versions": ["0.11"], "platforms": ["cuda"]}
    for key in doc["coefficients"]:
        if key.startswith("non_torch_gib/<0.17/cuda/1"):
            doc["coefficients"][key]["value"] = non_torch_gib
    path.write_text(yaml.safe_dump(doc))
    return path


def test_calibration_option_changes_the_calculator_and_is_named(project: pytest.Pytester):
    cal = _calibration(project.path / "cal.yaml", 0.5)
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-calibration", str(cal),
                               "--llmsizer-csv", "out.csv", "--llmsizer-json", "out.json", "--llmsizer-no-gate")
    result.stdout.fnmatch_lines(["calibration: coefficients 'wider' from *cal.yaml*"])
    rows = list(csv.DictReader((project.path / "out.csv").open(newline="")))
    assert {r["calculator"] for r in rows} == {f"builtin (calibration 'wider': {cal})"}
    report = json.loads((project.path / "out.json").read_text())
    assert report["calibration"]["name"] == "wider" and report["calibration"]["scope"]["engine_versions"] == ["0.11"]
    # the profiles are vLLM 0.3-0.6: outside the calibration's scope, which every profile's assumptions say
    assumptions = [a for p in report["profiles"] for a in p.get("assumptions") or []]
    assert any("fitted on other deployments" in a for a in assumptions), assumptions[:5]


def test_calibration_from_ini_and_bad_file(project: pytest.Pytester):
    _calibration(project.path / "cal.yaml", 0.5)
    project.makeini(INI + "llmsizer_calibration = cal.yaml\n")
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-no-gate")
    result.stdout.fnmatch_lines(["calibration: coefficients 'wider'*"])
    (project.path / "cal.yaml").write_text("format: something-else\n")
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cal.yaml: $.format must be 'llmsizer-coefficients'*"])


def test_calibration_refuses_another_calculator(project: pytest.Pytester):
    cal = _calibration(project.path / "cal.yaml", 0.5)
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-calibration", str(cal),
                               "--llmsizer-calculator-cmd", "true")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmsizer-calibration applies to the built-in calculator only*"])


def test_baseline_regression_fails_the_gate_and_is_reported(project: pytest.Pytester):
    assert project.runpytest("-p", "no:cacheprovider", "--llmsizer-csv", "base.csv").ret == 0
    cal = _calibration(project.path / "cal.yaml", 3.0, name="too-much-overhead")
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-calibration", str(cal), "--llmsizer-baseline",
                               "base.csv", "--llmsizer-json", "new.json", "--llmsizer-csv", "new.csv")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*versus baseline*", "base: base.csv @ *", "FAIL llmsizer baseline regression*"])
    report = json.loads((project.path / "new.json").read_text())
    assert report["baseline"]["regressed"] is True and report["baseline"]["path"] == "base.csv"
    assert report["baseline"]["worse"], "no profile got a worse band"
    # `llmsizer compare` on the records the two runs wrote says the same
    from pytest_llmsizer.cli import main

    assert main(["compare", str(project.path / "base.csv"), str(project.path / "new.csv")]) == 1
    # --llmsizer-no-gate: the section is still shown, not as a failure (the items themselves still fail)
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-calibration", str(cal), "--llmsizer-baseline",
                               "base.csv", "--llmsizer-no-gate")
    result.stdout.fnmatch_lines(["llmsizer baseline regression*"])
    result.stdout.no_fnmatch_line("FAIL llmsizer baseline regression*")


def test_baseline_without_change_passes(project: pytest.Pytester):
    assert project.runpytest("-p", "no:cacheprovider", "--llmsizer-csv", "base.csv").ret == 0
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-baseline", "base.csv")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["versus baseline: no regression"])


def test_baseline_folder_embeds_the_trend_in_html(project: pytest.Pytester):
    (project.path / "history").mkdir()
    for _ in range(2):  # two runs appended to one record (possibly within the same second)
        assert project.runpytest("-p", "no:cacheprovider", "--llmsizer-csv", "history/runs.csv").ret == 0
    cal = _calibration(project.path / "cal.yaml", 0.15, name="same-values")
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-baseline", "history", "--html", "r.html",
                               "--self-contained-html", "--llmsizer-calibration", str(cal))
    assert result.ret == 0
    page = (project.path / "r.html").read_text()
    assert "<strong>Calibration:</strong> coefficients &#x27;same-values&#x27; from" in page
    assert "<h2>Versus baseline</h2>" in page and "Trend (" in page
    assert 'alt="success metrics over runs"' in page
    assert "Trend (3 runs)" in page


def test_bad_baseline_is_a_usage_error(project: pytest.Pytester):
    (project.path / "x.csv").write_text("a,b\n1,2\n")
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-baseline", "x.csv")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmsizer-baseline: x.csv: not a llmsizer CSV record*"])
