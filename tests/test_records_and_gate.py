"""CSV record, JSON report, terminal summary, integrity items and the accuracy gate, end to end through pytester."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from pytester_project import PROFILES, make_project

from pytest_llmsizer.report.csv_record import COLUMNS, GUIDE_COLUMNS

# real profiles the calculator matches within tolerance
GOOD = ("vllm-33155--gpt-oss-120b.json", "vllm-4454--opt-125m.json", "vllm-windows-6--opt-125m.json")
LLAMA = "vllm-10511--meta-llama-3-8b.json"  # non-torch 1.79 GiB logged vs 0.15 calculated

GUIDE_HEADER = (
    "profile_file,model_id,model_params_b,gpu_type,gpu_count,batch_size,seq_length,dtype,profiled_total_gb,"
    "calculated_total_gb,difference_gb,difference_pct,match_quality,profiled_weights_gb,calculated_weights_gb,"
    "weights_diff_pct,profiled_kv_gb,calculated_kv_gb,kv_diff_pct,profiled_activations_gb,"
    "calculated_activations_gb,activations_diff_pct,profiled_overhead_gb,calculated_overhead_gb,overhead_diff_pct"
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_project(pytester, GOOD)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_header_starts_with_the_guide_columns_exactly():
    assert ",".join(GUIDE_COLUMNS) == GUIDE_HEADER
    assert COLUMNS[: len(GUIDE_COLUMNS)] == GUIDE_COLUMNS


def test_csv_record_rows(project: pytest.Pytester):
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-csv", "out/record.csv")
    result.assert_outcomes(passed=6)
    text = (project.path / "out" / "record.csv").read_text()
    assert text.splitlines()[0].startswith(GUIDE_HEADER + ",node_id,")
    rows = _rows(project.path / "out" / "record.csv")
    assert [r["profile_file"] for r in rows] == sorted(f"profiles/{n}" for n in GOOD)
    gptoss = next(r for r in rows if "gpt-oss" in r["profile_file"])
    # vllm#33155 logs weights only: every other component stays empty, never 0
    assert gptoss["profiled_weights_gb"] == f"{round(64.38 * 2**30) / 1e9:.4f}"
    assert gptoss["profiled_kv_gb"] == "" and gptoss["profiled_total_gb"] == "" and gptoss["kv_diff_pct"] == ""
    assert gptoss["accuracy_verdict"] == "passed" and gptoss["integrity_verdict"] == "passed"
    assert gptoss["match_quality"] == "Excellent" and gptoss["match_basis"] == "weights"
    assert gptoss["tp_size"] == "1" and gptoss["engine"] == "vllm"


def test_serial_and_xdist_csv_are_identical_apart_from_timestamps(project: pytest.Pytester):
    shutil.copy(PROFILES / LLAMA, project.path / "profiles" / LLAMA)
    (project.path / "profiles" / "broken.json").write_text("{")
    project.runpytest_subprocess("-p", "no:cacheprovider", "--llmsizer-csv", "serial.csv")
    project.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--llmsizer-csv", "parallel.csv")
    serial, parallel = _rows(project.path / "serial.csv"), _rows(project.path / "parallel.csv")
    for rows in (serial, parallel):
        for row in rows:
            row.pop("timestamp")
    assert len(serial) == 5
    assert serial == parallel


def test_appending_needs_a_matching_header_and_leaves_a_foreign_file_untouched(project: pytest.Pytester):
    project.runpytest("-p", "no:cacheprovider", "--llmsizer-csv", "rec.csv")
    project.runpytest("-p", "no:cacheprovider", "--llmsizer-csv", "rec.csv")
    rows = _rows(project.path / "rec.csv")
    assert len(rows) == 6
    assert (project.path / "rec.csv").read_text().count("profile_file,") == 1
    foreign = project.path / "theirs.csv"
    foreign.write_text("a,b,c\n1,2,3\n")
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-csv", "theirs.csv")
    assert result.ret == 4
    assert "different header" in result.stderr.str()
    assert foreign.read_text() == "a,b,c\n1,2,3\n"


def test_json_report_holds_outcomes_and_metrics(project: pytest.Pytester):
    shutil.copy(PROFILES / LLAMA, project.path / "profiles" / LLAMA)
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-json", "report.json", "--llmsizer-no-gate")
    result.assert_outcomes(passed=7, failed=1)
    doc = json.loads((project.path / "report.json").read_text())
    assert doc["format"] == "llmsizer-report/1"
    assert len(doc["profiles"]) == 4
    llama = next(p for p in doc["profiles"] if p["profile_file"].endswith(LLAMA))
    assert llama["accuracy_verdict"] == "failed"
    non_torch = next(r for r in llama["rows"] if r["quantity"] == "non_torch")
    assert non_torch["passed"] is False and non_torch["difference"] > 0
    assert any("framework overhead too low" in a for a in llama["recommendations"])
    names = [m["name"] for m in doc["metrics"]["metrics"]]
    assert "weights accuracy (mean |error|)" in names and doc["gate"]["enabled"] is False


def test_terminal_summary_has_the_success_metrics_table(project: pytest.Pytester):
    result = project.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "*llmsizer accuracy*",
        "3 profiles; accuracy: 3 passed; integrity: 3 passed, 0 failed, 0 with warnings",
        "metric*target*current*",
        "mean |total error|*< 5%*no data*",
        "Good or better*> 80%*100.0% (n=3)*ok*",
        "Poor*< 5%*0.0% (n=3)*ok*",
        "weights accuracy (mean |error|)*< 3%*",
        "KV cache accuracy (mean |error|)*< 5%*",
        "match bands: Excellent 3, Good 0, Acceptable 0, Fair 0, Poor 0",
        "largest errors:",
        "gate: passed",
    ])


def test_gate_fails_the_run_with_one_line_and_can_be_turned_off(project: pytest.Pytester):
    # a gate stricter than the real accuracy: weights error target 0.01%
    (project.path / "tol.yaml").write_text("gate:\n  weights_error_pct_max: 0.01\n  poor_pct_max: 0\n")
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-tolerances", "tol.yaml")
    result.assert_outcomes(passed=6)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "FAIL llmsizer accuracy gate failed: Poor = 0.0% (target < 0%); "
        "weights accuracy (mean |error|) = *% (target < 0.01%)"
    ])
    off = project.runpytest("-p", "no:cacheprovider", "--llmsizer-tolerances", "tol.yaml", "--llmsizer-no-gate")
    assert off.ret == 0
    collect = project.runpytest("-p", "no:cacheprovider", "--llmsizer-tolerances", "tol.yaml", "--collect-only")
    assert collect.ret == 0
    parallel = project.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--llmsizer-tolerances",
                                            "tol.yaml")
    assert parallel.ret == 1


def test_gate_passes_on_accurate_profiles(project: pytest.Pytester):
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0


def test_integrity_failure_and_warning(project: pytest.Pytester):
    data = json.loads((PROFILES / LLAMA).read_text())
    data["synthetic"] = True  # synthetic edge case: the real log's KV figure replaced by a negative one
    data["measurements"]["components"]["kv_cache"]["bytes"] = -2 * 2**30
    (project.path / "profiles" / "negative-kv.json").write_text(json.dumps(data))
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-no-gate", "-k", "integrity")
    result.assert_outcomes(passed=3, failed=1, deselected=4)
    result.stdout.fnmatch_lines(["*negative-kv.json: * integrity check(s) failed*", "*impossible_values*"])


@pytest.mark.parametrize("workers", [(), ("-n", "2")])
def test_html_report_has_columns_extras_summary_and_plots(project: pytest.Pytester, workers: tuple[str, ...]):
    shutil.copy(PROFILES / LLAMA, project.path / "profiles" / LLAMA)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", *workers, "--html", "report.html",
                                          "--self-contained-html", "--llmsizer-no-gate")
    assert result.ret == 1  # the llama profile's non-torch row fails
    html = (project.path / "report.html").read_text(encoding="utf-8")
    for column in ("Model", "GPU", "TP", "Match basis: error %", "Band"):
        assert 'class="sortable" data-column-type="llmsizer_' in html
        assert f">{column}</th>" in html, column
    assert "LLM sizer accuracy" in html
    assert html.count("data:image/svg+xml;base64,") >= 4  # calculated vs profiled, distribution, size, GPU count
    assert "meta-llama/Meta-Llama-3-8B" in html
    assert "framework overhead too low" in html  # the failing item's recommendation in its extras
