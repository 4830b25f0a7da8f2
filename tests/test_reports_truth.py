"""Reports tell the truth (issue 9, point 4): known failures are left out of the plots and metrics, and say how many
and why; the ranking column says what it holds; integrity rows carry model, GPU and TP; the component table shows
once per item. Real committed profiles; the known-failure entry is this test's own."""

from __future__ import annotations

import html
import json
import re

import pytest
from pytester_project import make_project

from pytest_llmsizer.report.html import COLUMNS, summary_html
from pytest_llmsizer.validation.metrics import compute_metrics
from pytest_llmsizer.validation.tolerances import DEFAULT_TOLERANCES, GateConfig

GOOD = "vllm-33155--gpt-oss-120b.json"  # weights only, within 0.3%
KNOWN = "vllm-10511--meta-llama-3-8b.json"  # non-torch 1.79 GiB logged vs 0.15 calculated: fails
REASON = "non-torch memory of a dev build"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_project(pytester, (GOOD, KNOWN), tolerances=(
        f'known_failures:\n  - match: {{profile: "profiles/{KNOWN}"}}\n    reason: "{REASON}"\n'))


def _tests(page: str) -> dict[str, dict]:
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))
    return {t["testId"]: t for runs in blob["tests"].values() for t in runs}


def test_html_rows_columns_and_known_failures(project: pytest.Pytester):
    pytest.importorskip("pytest_html")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--html", "r.html", "--self-contained-html",
                                          "--llmsizer-json", "r.json")
    result.assert_outcomes(passed=3, xfailed=1)
    page = (project.path / "r.html").read_text(encoding="utf-8")
    assert ">Match basis: error %</th>" in page and "Total error %" not in page
    tests = _tests(page)
    good, known = f"profiles/{GOOD}::accuracy", f"profiles/{KNOWN}::accuracy"
    assert tests[good]["llmsizer_error"].endswith("weights -0.29")
    # integrity rows carry model, GPU and TP, and leave the accuracy columns empty
    integrity = tests[f"profiles/{GOOD}::integrity"]
    assert integrity["llmsizer_model"] == "openai/gpt-oss-120b" and integrity["llmsizer_tp"].endswith("1")
    assert integrity["llmsizer_gpu"] and integrity["llmsizer_error"] == integrity["llmsizer_band"] == ""
    # the known failure's reason is in its row, in its extras and in the JSON record
    assert f"(known failure: {REASON})" in tests[known]["llmsizer_band"]
    assert REASON in json.dumps(tests[known]["extras"])
    doc = json.loads((project.path / "r.json").read_text())
    assert next(p for p in doc["profiles"] if p["profile_file"].endswith(KNOWN))["known_failure"] == REASON
    # the component table once per item: in the extras of the passing item, in the log of the xfailed one only
    assert json.dumps(tests[good]["extras"]).count("llmsizer-components") == 1
    assert "llmsizer-components" not in json.dumps(tests[known]["extras"])
    assert "non_torch" in tests[known]["log"]
    # the summary: metrics and plots without the known failure, saying so
    assert "1 known failure(s) (tolerances.yaml), left out of the metrics and the plots" in page
    assert "Plots: 1 profile(s) (1 known failure(s) left out)." in page
    assert doc["metrics"]["n_known_failures"] == 1 and doc["metrics"]["n_in_gate"] == 1


def _record(file: str, pct: float, verdict: str, known: str | None = None) -> dict:
    row = {"quantity": "weights", "profiled": 10 * 2**30, "calculated": 10 * 2**30 * (1 - pct / 100),
           "difference": 10 * 2**30 * pct / 100, "percent": pct, "band": None, "allowed": 2**29, "passed": True,
           "gating": True, "provenance": "engine", "rank": None}
    return {"profile_file": file, "model_id": "m", "model_params": 8e9, "gpu_count": 1, "rows": [row],
            "primary_quantity": "weights", "primary_error_pct": pct, "match_quality": "Good",
            "accuracy_verdict": verdict, "known_failure": known, "recommendations": [], "assumptions": []}


def test_plots_leave_known_failures_out():
    """A known failure at -8556% would flatten every box to a line at 0: it is not plotted (synthetic records)."""
    records = [_record("a.json", 1.0, "passed"), _record("b.json", -3.0, "passed"),
               _record("k.json", -8556.0, "xfailed", "architecture not supported")]
    metrics = compute_metrics(records, GateConfig())
    with_known = summary_html(records, metrics, DEFAULT_TOLERANCES.defaults)
    without = summary_html(records[:2], compute_metrics(records[:2], GateConfig()), DEFAULT_TOLERANCES.defaults)
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', with_known)
    assert images == re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', without)  # the same plots
    assert "k.json: architecture not supported" in with_known and "(1 known failure(s) left out)" in with_known
    assert metrics.n_known_failures == 1 and metrics.n_in_gate == 2
    assert len(COLUMNS) == 5
