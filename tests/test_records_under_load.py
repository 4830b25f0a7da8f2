"""The CSV record under load: many profiles, xdist, repeated runs, Ctrl-C and a crashing worker.

Every profile here is synthetic ("synthetic": true, source reference "synthetic load-test profile"): copies of one
real committed profile (vllm#4454, opt-125m on an RTX A6000, which the built-in calculator matches), under
different names and folders. Each run is a real ``pytest`` subprocess.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pytest_llmsizer.report.csv_record import COLUMNS

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "profiles" / "vllm-issue-threads" / "vllm-4454--opt-125m.json"
N = 500
HEADER = ",".join(COLUMNS)

INI = """[pytest]
llmsizer_profile_paths = profiles
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
"""

SLOW_CALC = '''"""Test calculator: counts its calls in a file, then delegates to the built-in one slowly."""
import time

from pytest_llmsizer.pluggable.loader import builtin

CALLS = {calls!r}


def calc(profile):
    with open(CALLS, "a", encoding="utf-8") as f:
        f.write("call\\n")
    time.sleep(0.05)
    return builtin(profile)
'''

CRASH_CALC = '''"""Test calculator: kills its process (as a segfault would) on the one profile marked "crash"."""
import os

from pytest_llmsizer.pluggable.loader import builtin


def calc(profile):
    if "crash" in (profile.source.notes or ""):
        os._exit(1)
    return builtin(profile)
'''


def make_profiles(root: Path, n: int, *, crash: int | None = None) -> list[str]:
    """Write ``n`` synthetic profiles under ``root/profiles`` (ten folders); returns their relative paths."""
    data = json.loads(SOURCE.read_text(encoding="utf-8"))
    data["synthetic"] = True
    data["source"].pop("log_lines", None)
    data["source"]["reference"] = "synthetic load-test profile"
    paths = []
    for i in range(n):
        doc = json.loads(json.dumps(data))
        doc["source"]["notes"] = f"synthetic copy {i} of profiles/vllm-issue-threads/{SOURCE.name}" + (
            " (crash)" if i == crash else "")
        rel = f"profiles/group-{i % 10}/p{i:04d}.json"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(doc, indent=1), encoding="utf-8")
        paths.append(rel)
    return paths


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "pytest.ini").write_text(INI, encoding="utf-8")
    return pytester


def run(project: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--llmsizer-no-gate", *args],
        cwd=project.path, capture_output=True, text=True, timeout=600, check=False,
    )


def check_record(path: Path, files: list[str], runs: int = 1) -> list[dict[str, str]]:
    """The CSV holds exactly one header, first, and ``runs`` complete rows per profile, none interleaved: every
    record parses to the right number of columns and names a profile file; returns the rows."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    assert lines[0] == HEADER
    assert lines.count(HEADER) == 1
    records = list(csv.reader(io.StringIO(text, newline="")))
    assert len(records) == 1 + runs * len(files)
    assert all(len(r) == len(COLUMNS) for r in records)
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in records[1:]]
    assert Counter(r["profile_file"] for r in rows) == Counter({f: runs for f in files})
    return rows


def test_xdist_writes_one_header_and_a_row_per_profile(project: pytest.Pytester):
    files = make_profiles(project.path, N)
    result = run(project, "-n", "2", "--llmsizer-csv", "rec.csv")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{2 * N} passed" in result.stdout
    rows = check_record(project.path / "rec.csv", files)
    assert [r["profile_file"] for r in rows] == sorted(files)  # one atomic write, sorted, not arrival order
    assert {(r["accuracy_verdict"], r["integrity_verdict"]) for r in rows} == {("passed", "passed")}
    assert len({r["timestamp"] for r in rows}) == 1
    assert not list(project.path.glob(".rec.csv.*"))  # no temporary file left behind


def test_two_runs_append_to_the_same_record(project: pytest.Pytester):
    files = make_profiles(project.path, N)
    first = run(project, "--llmsizer-csv", "rec.csv")
    assert first.returncode == 0, first.stdout[-3000:]
    after_first = (project.path / "rec.csv").read_bytes()
    time.sleep(1.1)  # timestamps have a one-second resolution: let the two runs differ
    second = run(project, "-n", "2", "--llmsizer-csv", "rec.csv")
    assert second.returncode == 0, second.stdout[-3000:]
    after_second = (project.path / "rec.csv").read_bytes()
    assert after_second.startswith(after_first)  # the first run's bytes are kept as they were
    rows = check_record(project.path / "rec.csv", files, runs=2)
    first_stamp, second_stamp = rows[0]["timestamp"], rows[-1]["timestamp"]
    assert first_stamp != second_stamp
    assert [r["timestamp"] for r in rows] == [first_stamp] * N + [second_stamp] * N


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a process group (POSIX)")
@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_ctrl_c_leaves_the_previous_record_intact(project: pytest.Pytester, workers: tuple[str, ...]):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group (the controller and, under xdist,
    its workers); so does this test. An interrupted run must not append a partial record."""
    files = make_profiles(project.path, 200)
    first = run(project, "--llmsizer-csv", "rec.csv")
    assert first.returncode == 0, first.stdout[-3000:]
    before = (project.path / "rec.csv").read_bytes()
    calls = project.path / "calls.txt"
    (project.path / "slow_calc.py").write_text(SLOW_CALC.format(calls=str(calls)), encoding="utf-8")
    with (project.path / "pytest.ini").open("a", encoding="utf-8") as f:
        f.write("pythonpath = .\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--llmsizer-no-gate",
         "--llmsizer-csv", "rec.csv", "--llmsizer-calculator", "slow_calc:calc", *workers],
        cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        # interrupt once a few profiles are done, so that the run holds results that must not be appended
        while not calls.exists() or calls.read_text(encoding="utf-8").count("call") < 10:
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    assert "KeyboardInterrupt" in output
    assert (project.path / "rec.csv").read_bytes() == before  # byte for byte
    assert not list(project.path.glob(".rec.csv.*"))
    check_record(project.path / "rec.csv", files)


def test_a_crashed_worker_is_a_failed_item_and_the_run_is_recorded(project: pytest.Pytester):
    """A worker that dies (here: ``os._exit(1)`` inside the calculator, as a segfault or an OOM kill would) under
    pytest-xdist: xdist reports the item it was running as failed ("worker 'gw0' crashed while running ..."),
    starts a replacement worker, hands it the dead worker's pending items, and the run completes normally (exit 1,
    one failure). That is not an interruption: every other profile has a real result, so the run appends its
    complete record, like any run with a failure, rather than leaving the previous CSV as it was (which is reserved
    for interrupted runs, whose results are partial).

    What is asserted: the previous record's bytes are kept as the file's prefix; the new rows form one complete,
    well-formed set (one row per profile, the right number of columns, no second header); every profile but the
    crashed one passed both checks; the crashed profile still has its row (its integrity check ran on a worker),
    whose accuracy columns are empty: the crashed item produced no result, and its failure is in pytest's report.
    """
    files = make_profiles(project.path, N, crash=123)
    crashed = files[123]
    first = run(project, "--llmsizer-csv", "rec.csv")
    assert first.returncode == 0, first.stdout[-3000:]
    before = (project.path / "rec.csv").read_bytes()
    (project.path / "crash_calc.py").write_text(CRASH_CALC, encoding="utf-8")
    with (project.path / "pytest.ini").open("a", encoding="utf-8") as f:
        f.write("pythonpath = .\n")
    result = run(project, "-n", "2", "--llmsizer-csv", "rec.csv",
                 "--llmsizer-calculator", "crash_calc:calc")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout[-3000:]
    assert "crashed while running" in result.stdout and f"{crashed}::accuracy" in result.stdout
    assert f"1 failed, {2 * N - 1} passed" in result.stdout
    after = (project.path / "rec.csv").read_bytes()
    assert after.startswith(before)
    rows = check_record(project.path / "rec.csv", files, runs=2)[N:]
    assert all(r["calculator"] == "crash_calc:calc" for r in rows if r["profile_file"] != crashed)
    verdicts = {r["profile_file"]: (r["accuracy_verdict"], r["integrity_verdict"]) for r in rows}
    assert verdicts.pop(crashed) == ("", "passed")
    assert set(verdicts.values()) == {("passed", "passed")}
    crashed_row = next(r for r in rows if r["profile_file"] == crashed)
    assert crashed_row["calculated_kv_tokens"] == "" and crashed_row["node_id"] == ""
