"""One pipeline, one verdict: the plugin, ``llmsizer batch``, ``llmsizer analyze`` and the API agree.

The same folder (every committed profile, the committed tolerances.yaml, plus broken profiles: invalid JSON, an
impossible negative byte count, an unknown model) goes through the plugin (``--llmsizer-csv``) and ``llmsizer batch
--csv``: the two CSVs must hold the same rows apart from ``node_id`` and ``timestamp``, and ``llmsizer analyze`` must
report the metrics the plugin's summary and JSON report give.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmsizer.validation.metrics import compute_metrics
from pytest_llmsizer.validation.pipeline import validate
from pytest_llmsizer.validation.record import fails_the_run
from pytest_llmsizer.validation.tolerances import load_tolerances

REPO = Path(__file__).resolve().parents[1]
LLAMA = REPO / "profiles" / "vllm-issue-threads" / "vllm-10511--meta-llama-3-8b.json"

INI = """
[pytest]
llmsizer_profile_paths = profiles
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _llmsizer(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_llmsizer.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, check=False, env=_env())


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row.pop("node_id")
        row.pop("timestamp")
    return rows


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the plugin, batch and analyze once on the same folder."""
    root = tmp_path_factory.mktemp("doors")
    shutil.copytree(REPO / "profiles", root / "profiles")
    shutil.copy(REPO / "tolerances.yaml", root / "tolerances.yaml")
    (root / "pytest.ini").write_text(INI)
    broken = root / "profiles" / "broken"
    broken.mkdir()
    (broken / "invalid.json").write_text("{")
    data = json.loads(LLAMA.read_text())
    data["synthetic"] = True  # synthetic edge cases built from a real profile
    data["measurements"]["components"]["weights"]["bytes"] = -5
    (broken / "negative-weights.json").write_text(json.dumps(data))
    data = json.loads(LLAMA.read_text())
    data["synthetic"] = True
    data["model"]["id"] = "no-such-org/no-such-model"
    (broken / "unknown-model.json").write_text(json.dumps(data))

    plugin = subprocess.run(
        [sys.executable, "-m", "pytest", "profiles", "-p", "no:cacheprovider", "-q", "--llmsizer-csv", "plugin.csv",
         "--llmsizer-json", "plugin.json"],
        cwd=root, capture_output=True, text=True, timeout=600, check=False, env=_env())
    batch = _llmsizer(root, "batch", "profiles", "--csv", "batch.csv", "--out-dir", "reports")
    analyze = _llmsizer(root, "analyze", "plugin.csv", "--format", "json")
    analyze_batch = _llmsizer(root, "analyze", "batch.csv", "--format", "json")
    return {"root": root, "plugin": plugin, "batch": batch, "analyze": analyze, "analyze_batch": analyze_batch}


def test_plugin_and_batch_write_identical_csv_rows(doors: dict) -> None:
    root = doors["root"]
    assert doors["plugin"].returncode == 1, doors["plugin"].stdout[-2000:]  # three broken profiles fail
    assert doors["batch"].returncode == 1, doors["batch"].stderr[-2000:]
    plugin, batch = _rows(root / "plugin.csv"), _rows(root / "batch.csv")
    committed = len(list((REPO / "profiles").rglob("*.json")))
    assert len(plugin) == committed + 3
    assert plugin == batch
    by_file = {r["profile_file"]: r for r in plugin}
    # known failures are xfailed through both doors, with their reason
    known = [r for r in plugin if r["known_failure"]]
    assert known and all(r["accuracy_verdict"] in ("xfailed", "xpassed") for r in known)
    # the impossible profile: unreadable, so both verdicts fail, and no absurd percentage is printed
    negative = by_file["profiles/broken/negative-weights.json"]
    assert negative["accuracy_verdict"] == "failed" and negative["integrity_verdict"] == "failed"
    assert negative["weights_diff_pct"] == ""
    assert by_file["profiles/broken/unknown-model.json"]["accuracy_verdict"] == "failed"


def test_analyze_reports_the_plugins_metrics(doors: dict) -> None:
    assert doors["analyze"].returncode == 0, doors["analyze"].stderr
    ours = {m["name"]: m for m in json.loads(doors["analyze"].stdout)["metrics"]}
    theirs = json.loads((doors["root"] / "plugin.json").read_text())["metrics"]
    assert set(ours) == {m["name"] for m in theirs["metrics"]}
    for metric in theirs["metrics"]:
        mine = ours[metric["name"]]
        assert mine["met"] is metric["passed"], metric["name"]
        assert mine["n"] == metric["n"], metric["name"]
        if metric["value"] is None:
            assert mine["current"] is None
        else:  # the CSV holds 3 decimals of each percentage
            assert mine["current"] == pytest.approx(metric["value"], abs=0.005), metric["name"]
    assert json.loads(doors["analyze_batch"].stdout)["metrics"] == json.loads(doors["analyze"].stdout)["metrics"]


def test_batch_summary_prints_the_plugins_metric_lines(doors: dict) -> None:
    stdout = doors["plugin"].stdout
    start = stdout.index("metric ")
    plugin_lines = stdout[start:].split("\n\n")[0].splitlines()
    summary = next((doors["root"] / "reports").glob("batch-summary-*.txt")).read_text()
    for line in plugin_lines:
        assert line in summary
    assert "Known failures (tolerances.yaml, not counted above): " in summary
    # the band counts of the batch exclude the known failures, like the plugin's
    assert "Poor: 0" in summary and "Poor 0" in stdout


def test_api_gives_the_pipelines_record() -> None:
    import pytest_llmsizer

    tolerances = load_tolerances(REPO / "tolerances.yaml")
    path = "profiles/vllm-issue-threads/vllm-33155--gpt-oss-120b.json"
    report = pytest_llmsizer.validate_profile(REPO / path, tolerances=tolerances)
    from pytest_llmsizer.pluggable.loader import builtin
    from pytest_llmsizer.profile.load import load_profile

    record = validate(load_profile(REPO / path), str(REPO / path), calculator=builtin, calculator_name="builtin",
                      tolerances=tolerances)
    assert report.record == record
    assert report.summary.overall_match == record["match_quality"] == "Excellent"
    assert not fails_the_run(record)
    assert compute_metrics([record], tolerances.gate).n_in_gate == 1


def test_row_record_keys_are_the_row_fields_and_convert_back() -> None:
    """``RowRecord`` (the typed wire form) is written out beside ``compare.Row``: the two field lists must stay
    equal, and a record's rows must give back the very ``Row`` objects the comparison made."""
    from pytest_llmsizer.pluggable.loader import builtin
    from pytest_llmsizer.profile.load import load_profile
    from pytest_llmsizer.validation.compare import compare
    from pytest_llmsizer.validation.record import ROW_FIELDS, RowRecord, outcome_of

    assert tuple(RowRecord.__annotations__) == ROW_FIELDS
    tolerances = load_tolerances(REPO / "tolerances.yaml")
    path = "profiles/vllm-issue-threads/vllm-10511--meta-llama-3-8b.json"  # several rows, one failing
    profile = load_profile(REPO / path)
    record = validate(profile, path, calculator=builtin, calculator_name="builtin", tolerances=tolerances)
    rows = compare(profile, builtin(profile), tolerances.for_profile(profile, path),
                   gate_derived=tolerances.gate_derived).rows
    assert len(rows) > 2
    assert outcome_of(record).rows == rows
    assert all(tuple(r) == ROW_FIELDS for r in record["rows"])


def test_plugin_json_records_are_the_pipelines(doors: dict) -> None:
    """Every record of the plugin's JSON report is exactly what the pipeline gives in-process for that file: the same
    integrity checks run (the catalog's parameter count for every door), the same verdicts and known failures."""
    from pytest_llmsizer.errors import ProfileError
    from pytest_llmsizer.pluggable.loader import builtin
    from pytest_llmsizer.profile.load import load_profile

    root = doors["root"]
    tolerances = load_tolerances(root / "tolerances.yaml")
    report = json.loads((root / "plugin.json").read_text())
    assert len(report["profiles"]) == len(list((root / "profiles").rglob("*.json")))
    for record in report["profiles"]:
        file = record["profile_file"]
        try:
            profile, error = load_profile(root / file), None
        except ProfileError as e:
            profile, error = None, e.render()
        ours = validate(profile, file, calculator=builtin, calculator_name="builtin", tolerances=tolerances,
                        load_error=error)
        ours = json.loads(json.dumps(ours))
        for key in ("node_id", "error", "integrity_error"):  # the load error names the file as each door read it
            record.pop(key)
            ours.pop(key)
        assert record == ours, file
