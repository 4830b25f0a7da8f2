"""``llmsizer validate``, ``batch``, ``check`` and the Python API, end to end on real committed profiles."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_llmsizer
from pytest_llmsizer.report.csv_record import COLUMNS

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles" / "vllm-issue-threads"
GPTOSS = PROFILES / "vllm-33155--gpt-oss-120b.json"  # weights 64.38 GiB logged; calculator within 0.3%
LLAMA = PROFILES / "vllm-10511--meta-llama-3-8b.json"  # non-torch 1.79 GiB logged, 0.15 calculated
LEGACY = REPO / "tests" / "fixtures" / "legacy"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("llmsizer")
    cmd = [exe] if exe else [sys.executable, "-m", "pytest_llmsizer.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300, check=False, cwd=cwd)


def test_validate_shows_the_guide_sections_and_exit_0():
    proc = run("validate", str(GPTOSS))
    assert proc.returncode == 0, proc.stderr
    for section in ("MODEL INFORMATION", "TEST CONFIGURATION", "PROFILED RESULTS (ground truth, per GPU)",
                    "CALCULATOR INPUTS", "VALIDATION RESULTS", "SUMMARY"):
        assert section in proc.stdout
    assert "64.38 GiB (69.13 GB)  [engine, high]" in proc.stdout
    assert "overall match      Excellent" in proc.stdout


def test_validate_outside_tolerance_exits_1_with_recommendation(tmp_path: Path):
    record = tmp_path / "rec.csv"
    proc = run("validate", str(LLAMA), "--record", str(record))
    assert proc.returncode == 1
    assert "framework overhead too low: non_torch profiled 1.79 GiB vs calculated 0.15 GiB" in proc.stdout
    rows = list(csv.DictReader(record.open()))
    assert list(rows[0]) == list(COLUMNS) and rows[0]["accuracy_verdict"] == "failed"


def test_validate_json_and_overrides():
    proc = run("validate", str(LLAMA), "--json", "--kv-quant", "fp8", "--model-params", "8.03B")
    out = json.loads(proc.stdout)
    assert out["engine"]["kv_cache_dtype"] == "fp8" and out["model"]["num_parameters"] == 8_030_000_000
    kv_tokens_row = [r for r in out["comparison"] if r["quantity"] == "kv_cache"]
    assert kv_tokens_row and out["summary"]["overall_match"] in ("Excellent", "Good", "Acceptable", "Fair", "Poor")
    assert out["calculator_inputs"]["kv_cache_dtype"] == "fp8"


def test_validate_calculator_total_needs_a_measured_total():
    proc = run("validate", str(GPTOSS), "--calculator-total", "70")
    assert proc.returncode == 2 and "no measured total" in proc.stderr
    proc = run("validate", str(LEGACY / "v2_rocm_1gpu.json"), "--calculator-total", "22.0")
    assert proc.returncode in (0, 1), proc.stderr
    assert "total 22 GB" in proc.stdout


def test_validate_unknown_model_override_exits_2():
    proc = run("validate", str(GPTOSS), "--model-id", "no-such/model")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "unknown model" in proc.stderr


def test_batch_writes_reports_and_summary(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    for p in (GPTOSS, LLAMA):
        shutil.copy(p, src / p.name)
    (src / "broken.json").write_text("{")
    out = tmp_path / "reports"
    proc = run("batch", str(src), "--out-dir", str(out), "--csv", str(tmp_path / "b.csv"))
    assert proc.returncode == 1  # one broken profile and one outside tolerance
    names = sorted(p.name for p in out.iterdir())
    assert "vllm-33155--gpt-oss-120b_validation.txt" in names and "broken_validation.json" in names
    summary = next(out.glob("batch-summary-*.txt")).read_text()
    assert "✗" in summary and "ERROR: " in summary and "Errors: 1" in summary and "Excellent:" in summary
    assert "Success rate" in summary
    assert "[3/3]" in proc.stderr
    # one row per profile, the broken one included, as the plugin writes them (issue 9: it used to skip it)
    rows = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert len(rows) == 3
    broken = next(r for r in rows if r["profile_file"].endswith("broken.json"))
    assert broken["accuracy_verdict"] == "failed" and broken["integrity_verdict"] == "failed"


def test_check_lists_every_problem(tmp_path: Path):
    proc = run("check", str(LEGACY))
    assert proc.returncode == 1
    assert "broken_v2_many.json: 6 problem(s)" in proc.stdout
    assert "$.memory_breakdown" in proc.stdout
    ok = run("check", str(PROFILES))
    assert ok.returncode == 0 and "36 file(s) checked, 0 with problems" in ok.stdout


def test_schema_and_help():
    for command in ("estimate", "validate", "batch", "check", "schema"):
        proc = run(command, "--help")
        assert proc.returncode == 0 and "usage: llmsizer" in proc.stdout


def test_python_api():
    report = pytest_llmsizer.validate_profile(GPTOSS)
    assert report.summary.overall_match == "Excellent"
    assert report.summary.total_percent_diff == pytest.approx(-0.29, abs=0.01)
    profile = pytest_llmsizer.load_profile(GPTOSS)
    assert profile.model.id == "openai/gpt-oss-120b"
    est = pytest_llmsizer.estimate("meta-llama/Llama-3.1-8B", gpu_memory_gib=79.18, engine_version="0.11")
    assert est.to_json()["per_gpu_bytes"]["weights"] == est.per_gpu_bytes["weights"]
    legacy = pytest_llmsizer.validate_profile(LEGACY / "v2_rocm_1gpu.json", model_id="meta-llama/Llama-3.1-8B",
                                              gpu_id="AMD Instinct MI300X")
    assert legacy.profile.model.id == "meta-llama/Llama-3.1-8B"


VLLM_LOGS = REPO / "tests" / "fixtures" / "vllm_logs"


def test_import_vllm_log_needs_the_model_then_writes_a_loadable_profile(tmp_path: Path):
    out = tmp_path / "p.json"
    proc = run("import", "vllm-log", str(VLLM_LOGS / "multi_line_table.log"), "-o", str(out))
    assert proc.returncode == 2 and "pass --model" in proc.stderr and not out.exists()
    proc = run("import", "vllm-log", str(VLLM_LOGS / "multi_line_table.log"), "-o", str(out),
               "--model", "meta-llama/Meta-Llama-3-8B", "--source", "vllm-project/vllm#10511")
    assert proc.returncode == 0, proc.stderr
    profile = pytest_llmsizer.load_profile(out)
    # the log's own numbers: weights 14.96, non-torch 1.79, activation 1.26, KV 53.29 GiB on a 79.22 GiB GPU
    comps = profile.measurements.components
    assert comps.weights.bytes == round(14.96 * 2**30) and comps.kv_cache.bytes == round(53.29 * 2**30)
    assert profile.hardware.memory_per_gpu_bytes == round(79.22 * 2**30)
    assert profile.source.reference == "vllm-project/vllm#10511"
    again = run("import", "vllm-log", str(VLLM_LOGS / "multi_line_table.log"), "-o", str(out), "--model", "x/y")
    assert again.returncode == 2 and "--force" in again.stderr
    validated = run("validate", str(out))
    assert validated.returncode == 1 and "non_torch" in validated.stdout


def test_import_vllm_log_conflicting_option_is_an_error(tmp_path: Path):
    proc = run("import", "vllm-log", str(VLLM_LOGS / "one_line_0_6_4_tp2.log"), "-o", str(tmp_path / "p.json"),
               "--tp", "4")
    assert proc.returncode == 2 and "tp" in proc.stderr.lower()


def test_import_llmsizer_converts_original_formats(tmp_path: Path):
    proc = run("import", "llmsizer", str(LEGACY / "v2_cuda_tp2.json"), str(LEGACY / "v3_rocm_1gpu.json"),
               str(LEGACY / "broken_v2_many.json"), "--out-dir", str(tmp_path))
    assert proc.returncode == 1  # one broken input
    assert "ok    " in proc.stdout and "FAIL  " in proc.stdout
    converted = pytest_llmsizer.load_profile(tmp_path / "v2_cuda_tp2.native.json")
    assert converted.source.original_format == "llmsizer-v2.0"
    assert converted.measurements.components.weights.provenance.value == "derived"


def test_import_llmsizer_reports_a_json_array_instead_of_crashing(tmp_path: Path):
    """A JSON file that is not an object (synthetic edge case) is one FAIL line naming the file, not a traceback."""
    (tmp_path / "list.json").write_text("[1]")
    proc = run("import", "llmsizer", str(tmp_path / "list.json"), str(LEGACY / "v2_cuda_tp2.json"),
               "--out-dir", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"FAIL  {tmp_path / 'list.json'}: $: expected a JSON object, got an array" in proc.stdout
    assert (tmp_path / "out" / "v2_cuda_tp2.native.json").is_file()


def test_analyze_a_csv_record(tmp_path: Path):
    record = tmp_path / "r.csv"
    subprocess.run([sys.executable, "-m", "pytest", "profiles/", "-p", "no:cacheprovider", "-q",
                    "--llmsizer-csv", str(record), "--llmsizer-no-gate"], cwd=REPO, capture_output=True, timeout=300,
                   check=False)
    for fmt in ("text", "markdown", "json"):
        proc = run("analyze", str(record), "--format", fmt, "--detailed")
        assert proc.returncode == 0, proc.stderr
    data = json.loads(run("analyze", str(record), "--format", "json").stdout)
    with record.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert data["n_rows"] == len(rows) >= 200
    assert data["n_known_failures"] == sum(r["accuracy_verdict"] == "xfailed" for r in rows)
    bad = run("analyze", str(LEGACY / "v2_cuda_tp2.json"))
    assert bad.returncode == 2


def test_batch_fails_on_an_integrity_failure_as_the_plugin_does(tmp_path: Path):
    """A profile within tolerance whose measurement is unsound fails the plugin's integrity item, so batch exits 1
    too (synthetic edge case: the real log's KV pool replaced by a negative one, which vLLM prints when it cannot
    start)."""
    data = json.loads(LLAMA.read_text())
    data["synthetic"] = True
    data["measurements"]["components"]["kv_cache"]["bytes"] = -2 * 2**30
    (tmp_path / "negative-kv.json").write_text(json.dumps(data))
    proc = run("batch", str(tmp_path / "negative-kv.json"), "--out-dir", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "Integrity failed: 1" in proc.stdout
    summary = next((tmp_path / "out").glob("batch-summary-*.txt")).read_text()
    assert "[integrity FAILED]" in summary


def test_trend_plot_refuses_a_user_file_and_a_symlink(tmp_path: Path):
    """--plot replaces a PNG image only: a text file there (or a symlink to one) is kept, with exit 2, before any
    record is read; --force replaces a regular file, never a symlink."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    link = tmp_path / "link.png"
    link.symlink_to(notes)
    for target, why in ((notes, "exists and is not an llmsizer plot"), (link, "is a symbolic link")):
        proc = run("trend", str(tmp_path / "missing.csv"), "--plot", str(target))
        assert proc.returncode == 2 and why in proc.stderr, proc.stderr
    proc = run("trend", str(tmp_path / "missing.csv"), "--plot", str(link), "--force")
    assert proc.returncode == 2 and "is a symbolic link" in proc.stderr
    assert notes.read_text() == "mine\n" and link.is_symlink()
    proc = run("trend", str(tmp_path / "missing.csv"), "--plot", str(notes), "--force")
    assert proc.returncode == 2 and "missing.csv: no such file or directory" in proc.stderr  # past the check


def test_batch_refuses_a_symlinked_csv_before_writing_any_report(tmp_path: Path):
    """--csv through a symlink is refused at the start (exit 2), so no report is written for a run whose record
    cannot be kept."""
    target = tmp_path / "elsewhere.csv"
    target.write_text("")
    (tmp_path / "rec.csv").symlink_to(target)
    proc = run("batch", str(GPTOSS), "--out-dir", str(tmp_path / "out"), "--csv", str(tmp_path / "rec.csv"))
    assert proc.returncode == 2 and "is a symbolic link" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists() and target.read_text() == ""


def test_import_vllm_log_refuses_an_existing_output_before_reading_the_log(tmp_path: Path):
    """Without --force an existing -o file is refused first (the log, here missing, is not even opened) and kept."""
    out = tmp_path / "mine.json"
    out.write_text('{"mine": true}\n')
    proc = run("import", "vllm-log", str(tmp_path / "missing.log"), "-o", str(out))
    assert proc.returncode == 2 and "exists; refusing to overwrite it (pass --force" in proc.stderr, proc.stderr
    assert out.read_text() == '{"mine": true}\n'
