"""The CSV analysis (report/analyze.py): on a CSV the plugin writes from the committed real profiles, and on small
hand-made rows (clearly synthetic: profile files under ``synthetic/``) for the sign, groups and empty cells."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.report.analyze import analyze, load_rows, render
from pytest_llmsizer.report.csv_record import COLUMNS, GUIDE_COLUMNS
from pytest_llmsizer.validation.tolerances import GateConfig

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ real profiles

@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Run the plugin on the committed profiles once: the CSV record and the plugin's own JSON metrics."""
    tmp = tmp_path_factory.mktemp("real")
    csv_path, json_path = tmp / "r.csv", tmp / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "profiles/", "-p", "no:cacheprovider", "-q", "--llmsizer-csv", str(csv_path),
         "--llmsizer-json", str(json_path), "--llmsizer-no-gate"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return csv_path, json.loads(json_path.read_text(encoding="utf-8"))


def test_real_profiles_known_failures_apart(real: tuple[Path, dict]) -> None:
    csv_path, _ = real
    rows = load_rows(csv_path)
    a = analyze(rows)
    # the corpus grows with every import (profiles/README.md): count it rather than pin it
    assert a.n_rows == len(list((ROOT / "profiles").rglob("*.json"))) >= 200
    assert a.n_known_failures == sum(r["accuracy_verdict"] == "xfailed" for r in rows) > 0
    assert a.n_analyzed == a.n_rows - a.n_known_failures - a.n_unrated
    assert {k.profile for k in a.known_failures} == {r["profile_file"] for r in rows
                                                     if r["accuracy_verdict"] == "xfailed"}
    assert all(k.reason for k in a.known_failures)
    # bands only from the rows that are not known failures (the known ones hold Poor bands of their own)
    others = Counter(r["match_quality"] for r in rows if r["accuracy_verdict"] != "xfailed" and r["match_quality"])
    assert {b.band: b.count for b in a.bands} == {band: others.get(band, 0) for band in
                                                  ("Excellent", "Good", "Acceptable", "Fair", "Poor")}
    assert sum(b.count for b in a.bands) == a.n_analyzed
    assert any(r["match_quality"] == "Poor" for r in rows if r["accuracy_verdict"] == "xfailed")
    # empty cells stay None, never "" or 0
    assert any(r["difference_pct"] is None for r in rows)
    assert all(v is None or v != "" for r in rows for v in r.values())


def test_real_profiles_metrics_match_the_plugin_gate(real: tuple[Path, dict]) -> None:
    csv_path, report = real
    a = analyze(load_rows(csv_path))
    ours = {m.name: m for m in a.metrics}
    plugin = {m["name"]: m for m in report["metrics"]["metrics"]}
    assert report["metrics"]["band_counts"] == {b.band: b.count for b in a.bands}
    for name in ("mean |total error|", "Good or better", "Poor", "weights accuracy (mean |error|)",
                 "KV cache accuracy (mean |error|)"):
        if plugin[name]["value"] is None:
            assert ours[name].current is None and ours[name].met is None, name
        else:
            # the CSV holds 3 decimals of each pct
            assert ours[name].current == pytest.approx(plugin[name]["value"], abs=0.005), name
            assert ours[name].met is plugin[name]["passed"], name


def test_real_profiles_render_every_format(real: tuple[Path, dict]) -> None:
    rows = load_rows(real[0])
    a = analyze(rows)
    doc = json.loads(render(a, "json", detailed=True))
    known = sum(r["accuracy_verdict"] == "xfailed" for r in rows)
    assert doc["n_known_failures"] == known and len(doc["profiles"]) == len(rows)
    assert "profiles" not in json.loads(render(a, "json", detailed=False))
    text = render(a, "text", detailed=True)
    assert f"Known failures ({known}, not in the metrics)" in text
    assert "vllm-windows-6--opt-125m.json" in text
    md = render(a, "markdown", detailed=False)
    assert "| band | count | share |" in md


# ------------------------------------------------------------------------------------------------ synthetic rows

def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for i, row in enumerate(rows):
            full = dict.fromkeys(COLUMNS, "")
            full.update({"profile_file": f"synthetic/p{i}.json", "gpu_count": "1", "accuracy_verdict": "passed"})
            full.update({k: str(v) for k, v in row.items()})
            writer.writerow(full)
    return path


def run(tmp_path: Path, rows: list[dict[str, object]], gate: GateConfig | None = None):
    return analyze(load_rows(write_csv(tmp_path / "s.csv", rows)), gate)


def bias(a, component: str):
    return next(b for b in a.components if b.component == component)


def test_negative_pct_is_an_over_estimate(tmp_path: Path) -> None:
    a = run(tmp_path, [
        {"profile_file": "synthetic/kv-a.json", "kv_diff_pct": "-50", "match_basis": "kv_cache",
         "match_quality": "Poor", "profiled_kv_gb": "10", "calculated_kv_gb": "15"},
        {"profile_file": "synthetic/kv-b.json", "kv_diff_pct": "-40", "match_basis": "kv_cache",
         "match_quality": "Poor", "profiled_kv_gb": "10", "calculated_kv_gb": "14"},
        {"profile_file": "synthetic/kv-c.json", "kv_diff_pct": "10", "match_basis": "kv_cache",
         "match_quality": "Acceptable", "profiled_kv_gb": "10", "calculated_kv_gb": "9"},
        {"profile_file": "synthetic/w-a.json", "weights_diff_pct": "20", "match_basis": "weights",
         "match_quality": "Fair"},
        {"profile_file": "synthetic/w-b.json", "weights_diff_pct": "30", "match_basis": "weights",
         "match_quality": "Poor"},
    ])
    kv = bias(a, "kv_cache")
    assert (kv.n, kv.over, kv.under, kv.direction) == (3, 2, 1, "over")
    assert kv.mean_signed_pct == pytest.approx(-80 / 3)
    assert kv.mean_abs_pct == pytest.approx(100 / 3)
    assert kv.mean_abs_diff_gb == pytest.approx(10 / 3)
    assert (kv.worst.profile, kv.worst.pct) == ("synthetic/kv-a.json", -50.0)
    w = bias(a, "weights")
    assert (w.over, w.under, w.direction, w.mean_signed_pct) == (0, 2, "under", 25.0)
    # the KV issue is critical and says the calculator is above the measurement
    kv_issue = next(i for i in a.issues if i.message.startswith("KV cache:"))
    assert kv_issue.severity == "CRITICAL" and "over-estimates" in kv_issue.message and "-26.67%" in kv_issue.message
    recs = " ".join(a.recommendations)
    assert "KV cache is larger than measured" in recs and "activation" in recs and "-26.67%" in recs
    assert "weights are smaller than measured" in recs and "+25.00%" in recs
    assert "weights are larger" not in recs and "KV cache is smaller" not in recs
    # mean |error| on the match basis (50, 40, 10, 20, 30) = 30 -> critical
    assert a.basis_error.mean == pytest.approx(30.0)
    assert any(i.severity == "CRITICAL" and "mean |error| is 30.00%" in i.message for i in a.issues)


def test_mixed_bias_points_at_the_worst_case(tmp_path: Path) -> None:
    a = run(tmp_path, [{"activations_diff_pct": "-40"}, {"profile_file": "synthetic/act.json",
                                                         "activations_diff_pct": "60"}])
    act = bias(a, "activations")
    assert act.direction == "mixed" and act.worst.profile == "synthetic/act.json"
    assert any("errors go both ways" in r and "synthetic/act.json +60.00%" in r for r in a.recommendations)


def test_size_groups(tmp_path: Path) -> None:
    a = run(tmp_path, [
        {"model_params_b": "7", "weights_diff_pct": "1", "match_basis": "weights", "match_quality": "Excellent"},
        {"model_params_b": "10", "weights_diff_pct": "2", "match_basis": "weights", "match_quality": "Excellent"},
        {"model_params_b": "40", "weights_diff_pct": "4", "match_basis": "weights", "match_quality": "Good"},
        {"model_params_b": "70", "weights_diff_pct": "-30", "match_basis": "weights", "match_quality": "Poor"},
        {"model_params_b": "", "weights_diff_pct": "3", "match_basis": "weights", "match_quality": "Good"},
    ])
    groups = {g.name: g for g in a.by_size}
    assert list(groups) == ["small (< 10B)", "medium (10-40B)", "large (> 40B)", "unknown size"]
    assert [g.count for g in a.by_size] == [1, 2, 1, 1]
    assert groups["medium (10-40B)"].mean_params_b == 25.0
    assert groups["medium (10-40B)"].mean_abs_error_pct == 3.0
    assert groups["unknown size"].mean_params_b is None  # not 0B among the small ones
    assert groups["large (> 40B)"].components == {"weights": 30.0}
    # large models err much more than the rest: 30% vs mean(1, 2, 4) = 2.33%
    assert any(i.severity == "WARNING" and "large models" in i.message and "30.00%" in i.message for i in a.issues)


def test_gpu_count_groups_and_multi_gpu_issue(tmp_path: Path) -> None:
    a = run(tmp_path, [
        {"gpu_count": "1", "kv_tokens_diff_pct": "1", "match_basis": "kv_cache_tokens", "match_quality": "Excellent"},
        {"gpu_count": "1", "kv_tokens_diff_pct": "-3", "match_basis": "kv_cache_tokens", "match_quality": "Good"},
        {"gpu_count": "8", "kv_tokens_diff_pct": "-12", "match_basis": "kv_cache_tokens", "match_quality": "Fair"},
        {"gpu_count": "2", "kv_tokens_diff_pct": "8", "match_basis": "kv_cache_tokens", "match_quality": "Acceptable"},
    ])
    assert [(g.name, g.count, g.mean_abs_error_pct) for g in a.by_gpu_count] == [
        ("1 GPU", 2, 2.0), ("2 GPUs", 1, 8.0), ("8 GPUs", 1, 12.0)]
    issue = next(i for i in a.issues if "multi-GPU" in i.message)
    assert issue.severity == "WARNING" and "10.00%" in issue.message and "2.00%" in issue.message
    assert any("multi-GPU error 10.00%" in r for r in a.recommendations)


def test_empty_cells_are_not_zero(tmp_path: Path) -> None:
    rows = load_rows(write_csv(tmp_path / "s.csv", [
        {"weights_diff_pct": "", "kv_diff_pct": "4", "match_basis": "kv_cache", "match_quality": "Good"},
        {"weights_diff_pct": "4", "match_basis": "weights", "match_quality": "Good"},
    ]))
    assert rows[0]["weights_diff_pct"] is None and rows[1]["kv_diff_pct"] is None
    a = analyze(rows)
    metrics = {m.name: m for m in a.metrics}
    # blank -> 0 would give 2.00% over 2 rows
    for name in ("weights accuracy (mean |error|)", "KV cache accuracy (mean |error|)"):
        assert (metrics[name].current, metrics[name].n) == (4, 1), name
    assert metrics["mean |total error|"].current is None and metrics["mean |total error|"].met is None
    assert a.total_error.n == 0 and a.total_error.mean is None
    assert bias(a, "activations").n == 0 and bias(a, "activations").mean_abs_pct is None
    assert [b.component for b in a.components if b.n] == ["weights", "kv_cache"]


def test_known_failures_stay_out_of_the_metrics(tmp_path: Path) -> None:
    a = run(tmp_path, [
        {"difference_pct": "1", "match_basis": "total", "match_quality": "Excellent"},
        {"profile_file": "synthetic/known.json", "difference_pct": "-90", "match_basis": "total",
         "match_quality": "Poor", "accuracy_verdict": "xfailed", "known_failure": "want of data: no config"},
        {"difference_pct": "", "accuracy_verdict": "passed"},
    ])
    assert (a.n_rows, a.n_analyzed, a.n_known_failures, a.n_unrated) == (3, 2, 1, 1)
    assert {b.band: b.count for b in a.bands}["Poor"] == 0
    metrics = {m.name: m for m in a.metrics}
    assert metrics["mean |total error|"].current == 1.0
    assert metrics["Good or better"].current == 100.0 and metrics["Good or better"].met is True
    assert a.known_failures[0].profile == "synthetic/known.json"
    assert a.known_failures[0].basis_pct == -90.0 and a.known_failure_kinds == {"want of data": 1}
    assert bias(a, "total").worst.pct == 1.0


def test_gate_targets_come_from_the_gate(tmp_path: Path) -> None:
    rows = [{"weights_diff_pct": "2", "match_basis": "weights", "match_quality": "Excellent"}]
    assert {m.name: m.met for m in run(tmp_path, rows).metrics}["weights accuracy (mean |error|)"] is True
    a = run(tmp_path, rows, GateConfig(weights_error_pct_max=1.0))
    weights = {m.name: m for m in a.metrics}["weights accuracy (mean |error|)"]
    assert (weights.target, weights.met) == ("< 1%", False)
    assert any("target missed: weights accuracy" in i.message for i in a.issues)


def test_render_formats(tmp_path: Path) -> None:
    a = run(tmp_path, [
        {"model_params_b": "8", "difference_pct": "-3", "match_basis": "total", "match_quality": "Good",
         "weights_diff_pct": "0.5"},
        {"model_params_b": "70", "gpu_count": "4", "difference_pct": "12", "match_basis": "total",
         "match_quality": "Fair", "accuracy_verdict": "failed"},
    ])
    doc = json.loads(render(a, "json", detailed=False))
    assert doc["n_rows"] == 2 and doc["bands"][1] == {"band": "Good", "count": 1, "share_pct": 50.0}
    assert json.loads(render(a, "json", detailed=True))["profiles"][0]["profile"] == "synthetic/p0.json"

    md = render(a, "markdown", detailed=True)
    lines = md.splitlines()
    header = lines.index("| band | count | share |")
    assert lines[header + 1] == "|---|---:|---:|"
    assert "| metric | target | current | n | met |" in md
    assert "mean \\|total error\\|" in md  # pipes inside cells are escaped
    assert "## Profiles" in md and "synthetic/p1.json" in md

    text = render(a, "text", detailed=False)
    assert "synthetic/p1.json" in text  # the worst case
    assert "## " not in text and "|---" not in text
    tlines = text.splitlines()
    band_header = next(i for i, line in enumerate(tlines) if line.startswith("band "))
    # aligned: the count column ends at the same place in the header, the rule and every row
    end = tlines[band_header].index("count") + len("count")
    for line in tlines[band_header + 1:band_header + 7]:
        assert line[end - 1] != " ", line
    assert "Profiles" not in text and "Profiles" in render(a, "text", detailed=True)
    with pytest.raises(LlmsizerError, match="unknown format"):
        render(a, "html", detailed=False)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ bad input

def test_missing_guide_columns_are_named(tmp_path: Path) -> None:
    header = [c for c in COLUMNS if c not in ("kv_diff_pct", "match_quality")]
    path = tmp_path / "bad.csv"
    path.write_text(",".join(header) + "\n" + ",".join("" for _ in header) + "\n", encoding="utf-8")
    with pytest.raises(LlmsizerError, match="match_quality, kv_diff_pct") as e:
        load_rows(path)
    assert "lacks 2 of the guide's columns" in str(e.value)


def test_the_original_tools_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "validation-results.csv"
    path.write_text("profile_file,model_name,params_b,gpus,diff_total_pct,match_quality\n"
                    "a.json,m,7,1,3.0,Excellent ✓✓\n", encoding="utf-8")
    with pytest.raises(LlmsizerError, match="model_id") as e:
        load_rows(path)
    assert str(len(GUIDE_COLUMNS) - 2) in str(e.value)  # profile_file and match_quality are there


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a CSV record"),
    (b"", "empty file"),
    (b'{"profiles": []}\n', "lacks"),
])
def test_unreadable_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LlmsizerError, match=message):
        load_rows(path)


def test_ragged_row_and_bad_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [{"weights_diff_pct": "1"}])
    path.write_text(path.read_text(encoding="utf-8") + "only,three,cells\n", encoding="utf-8")
    with pytest.raises(LlmsizerError, match=r"s\.csv:3: 3 cells"):
        load_rows(path)
    with pytest.raises(LlmsizerError, match=r"synthetic/p0\.json: column kv_diff_pct: 'lots'"):
        run(tmp_path, [{"kv_diff_pct": "lots"}])
    with pytest.raises(LlmsizerError, match="not a finite number"):
        run(tmp_path, [{"kv_diff_pct": "nan"}])
    with pytest.raises(LlmsizerError, match="match_quality 'Great'"):
        run(tmp_path, [{"match_quality": "Great"}])


def test_quoted_newlines_crlf_and_bom(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [{"accuracy_verdict": "xfailed", "known_failure": "two\nlines: of reason"}])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    rows = load_rows(path)
    assert len(rows) == 1 and rows[0]["profile_file"] == "synthetic/p0.json"
    assert analyze(rows).known_failures[0].reason == "two\nlines: of reason"  # read as text: CRLF -> LF
