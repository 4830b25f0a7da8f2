"""Reliability under hostile input and concurrent runs (issue 10): no lost records, no clobbered files, no hangs.

Every hostile file is built here, at test time. The one real profile used is committed
(``profiles/vllm-issue-threads/vllm-4454--opt-125m.json``, which the built-in calculator matches); copies of it are
marked ``"synthetic": true``. Each plugin run is a real ``pytest`` subprocess, each CLI run a real ``llmsizer``
subprocess; the calculators that misbehave (hang, flood, crash) are small Python files written by the tests, named
as such.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from pytest_llmsizer.errors import CalculatorError, ConfigError
from pytest_llmsizer.pluggable.command import MAX_STDOUT_BYTES, command_calculator
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.report.csv_record import COLUMNS, append_records, csv_row
from pytest_llmsizer.safe_io import UnsafePathError, check_output, locked_append, read_regular
from pytest_llmsizer.sanitize import clean, csv_cell, plain_data_problem
from pytest_llmsizer.validation.tolerances import parse_tolerances

REPO = Path(__file__).resolve().parents[1]
GOOD = REPO / "profiles" / "vllm-issue-threads" / "vllm-4454--opt-125m.json"
GPT = REPO / "profiles" / "vllm-issue-threads" / "vllm-33155--gpt-oss-120b.json"
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
INI = """[pytest]
llmsizer_profile_paths = profiles
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
pythonpath = .
"""
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX file types (FIFO, devices, symlinks)")


def synthetic(source: Path = GOOD, note: str = "") -> dict:
    data = json.loads(source.read_text(encoding="utf-8"))
    data["synthetic"] = True
    data["source"]["notes"] = f"synthetic copy of {source.name} (issue 10 reliability tests){note}"
    return data


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text(INI, encoding="utf-8")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "p.json").write_text(json.dumps(synthetic(), indent=1), encoding="utf-8")
    return tmp_path


def pytest_run(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--llmsizer-no-gate",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=ENV)


def llmsizer(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_llmsizer.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False, env=ENV)


def no_crash(result: subprocess.CompletedProcess[str]) -> None:
    for text in (result.stdout, result.stderr):
        assert "INTERNALERROR" not in text and "Traceback" not in text, text[-3000:]


# ----------------------------------------------------------------------------------------------------------
# concurrent appends keep every row exactly once
# ----------------------------------------------------------------------------------------------------------

APPENDER = """
import sys
from pathlib import Path
from pytest_llmsizer.report.csv_record import append_records
path, writer, reps = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for rep in range(reps):
    records = [{"profile_file": f"{writer}/{rep}/{i}.json", "rows": []} for i in range(5)]
    append_records(path, records, f"t{rep}")
"""


def test_concurrent_appenders_keep_every_row_once(tmp_path: Path) -> None:
    """8 processes append 20 times each (5 rows a time) to one CSV at once: 800 rows, each once, one header."""
    path = tmp_path / "rec.csv"
    writers, reps = 8, 20
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(path), f"w{w}", str(reps)], env=ENV)
             for w in range(writers)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert tuple(rows[0]) == COLUMNS
    assert all(len(r) == len(COLUMNS) for r in rows)
    found = Counter(r[0] for r in rows[1:])
    assert found == Counter({f"w{w}/{rep}/{i}.json": 1 for w in range(writers) for rep in range(reps)
                             for i in range(5)})


def test_four_pytest_runs_appending_at_once_keep_every_row(project: Path) -> None:
    for i in range(1, 3):
        (project / "profiles" / f"p{i}.json").write_text(json.dumps(synthetic(note=f" #{i}")), encoding="utf-8")
    for repetition in range(2):
        procs = [subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                                   "--llmsizer-no-gate", "--llmsizer-csv", "rec.csv"], cwd=project, env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(4)]
        assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
        rows = list(csv.DictReader(io.StringIO((project / "rec.csv").read_text(encoding="utf-8"), newline="")))
        assert Counter(r["profile_file"] for r in rows) == Counter(
            {f"profiles/{n}.json": 4 * (repetition + 1) for n in ("p", "p1", "p2")})


def test_a_failed_append_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")

    def build(head: bytes, size: int) -> str:
        assert head == b"a,b" and size == 8
        raise ConfigError("no")

    with pytest.raises(ConfigError):
        locked_append(path, build)
    assert path.read_text(encoding="utf-8") == "a,b\n1,2\n"
    with pytest.raises(ConfigError, match="different header"):
        append_records(path, [{"profile_file": "x.json", "rows": []}], "t")
    assert path.read_text(encoding="utf-8") == "a,b\n1,2\n"


# ----------------------------------------------------------------------------------------------------------
# outputs refuse symlinks, devices, FIFOs, read-only and foreign files
# ----------------------------------------------------------------------------------------------------------


def _make_target(root: Path, kind: str) -> tuple[Path, str]:
    """A hostile output path and the words the refusal must use."""
    victim = root / "victim.txt"
    victim.write_text("precious user data\n", encoding="utf-8")
    if kind == "symlink":
        link = root / "out.link"
        link.symlink_to(victim)
        return link, "symbolic link"
    if kind == "dangling-symlink":
        link = root / "dangling.link"
        link.symlink_to(root / "nowhere.csv")
        return link, "symbolic link"
    if kind == "fifo":
        fifo = root / "out.fifo"
        os.mkfifo(fifo)
        return fifo, "FIFO"
    if kind == "directory":
        d = root / "out.dir"
        d.mkdir()
        return d, "directory"
    if kind == "read-only":
        ro = root / "ro.csv"
        ro.write_text("", encoding="utf-8")
        ro.chmod(0o444)
        return ro, "read-only"
    if kind in ("/dev/null", "/dev/full", "/dev/zero"):
        return Path(kind), "character device"
    raise AssertionError(kind)


KINDS = ["symlink", "dangling-symlink", "fifo", "directory", "read-only", "/dev/null", "/dev/full", "/dev/zero"]


def _unchanged(root: Path, target: Path, kind: str) -> None:
    assert (root / "victim.txt").read_text(encoding="utf-8") == "precious user data\n"
    if kind.startswith("/dev/"):
        assert stat.S_ISCHR(os.stat(kind).st_mode), f"{kind} was replaced"
    elif kind.endswith("symlink"):
        assert target.is_symlink()
    elif kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(target).st_mode)
    elif kind == "read-only":
        assert target.read_bytes() == b""


@POSIX
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("option", ["--llmsizer-csv", "--llmsizer-json"])
def test_plugin_refuses_a_hostile_output_before_the_run(project: Path, kind: str, option: str) -> None:
    target, words = _make_target(project, kind)
    started = time.monotonic()
    result = pytest_run(project, f"{option}={target}", "--llmsizer-json-force", timeout=60)
    assert time.monotonic() - started < 60
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert words in result.stderr and str(target) in result.stderr
    assert "passed" not in result.stdout  # refused before the run
    no_crash(result)
    _unchanged(project, target, kind)


@POSIX
@pytest.mark.parametrize("kind", KINDS)
def test_cli_outputs_refuse_a_hostile_path_even_with_force(tmp_path: Path, kind: str) -> None:
    target, words = _make_target(tmp_path, kind)
    log = tmp_path / "vllm.log"
    log.write_text("INFO Loading model weights took 0.24 GB\nINFO # GPU blocks: 75937, # CPU blocks: 7281\n",
                   encoding="utf-8")
    for args in (("validate", str(GOOD), "--record", str(target)),
                 ("import", "vllm-log", str(log), "-o", str(target), "--force", "--model", "facebook/opt-125m",
                  "--gpu", "NVIDIA RTX A6000")):
        result = llmsizer(tmp_path, *args, timeout=60)
        assert result.returncode == 2, (args, result.stdout[-1000:], result.stderr)
        assert words in result.stderr, (args, result.stderr)
        no_crash(result)
        _unchanged(tmp_path, target, kind)


def test_json_report_replaces_only_its_own_files(project: Path) -> None:
    ini_before = (project / "pytest.ini").read_bytes()
    result = pytest_run(project, "--llmsizer-json=pytest.ini")
    assert result.returncode == 4 and "is not an llmsizer JSON report" in result.stderr
    assert "--llmsizer-json-force" in result.stderr
    assert (project / "pytest.ini").read_bytes() == ini_before
    (project / "mine.json").write_text('{"not": "a report"}\n', encoding="utf-8")
    assert pytest_run(project, "--llmsizer-json=mine.json").returncode == 4
    assert pytest_run(project, "--llmsizer-json=mine.json", "--llmsizer-json-force").returncode == 0
    assert json.loads((project / "mine.json").read_text(encoding="utf-8"))["format"] == "llmsizer-report/1"
    assert pytest_run(project, "--llmsizer-json=mine.json").returncode == 0  # our own report: replaced


def test_batch_replaces_its_own_reports_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = llmsizer(tmp_path, "batch", str(GOOD), "--out-dir", str(out))
    assert first.returncode == 0, first.stderr
    again = llmsizer(tmp_path, "batch", str(GOOD), "--out-dir", str(out))
    assert again.returncode == 0, again.stderr
    report = out / f"{GOOD.stem}_validation.txt"
    report.write_text("my own notes\n", encoding="utf-8")
    refused = llmsizer(tmp_path, "batch", str(GOOD), "--out-dir", str(out))
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert report.read_text(encoding="utf-8") == "my own notes\n"
    assert llmsizer(tmp_path, "batch", str(GOOD), "--out-dir", str(out), "--force").returncode == 0


def test_check_output_unit(tmp_path: Path) -> None:
    existing = tmp_path / "x.json"
    existing.write_text('{"format": "mine"}', encoding="utf-8")
    with pytest.raises(UnsafePathError, match="exists; refusing"):
        check_output(existing, what="output")
    check_output(existing, what="output", markers=(b'{"format": "mine"',))
    check_output(existing, what="output", force=True)
    check_output(tmp_path / "new" / "deeper" / "x.json", what="output")  # parents are created on write


# ----------------------------------------------------------------------------------------------------------
# YAML: aliases within a budget, a depth limit
# ----------------------------------------------------------------------------------------------------------

ALIAS_BOMB = textwrap.dedent("""\
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
    """)


def test_yaml_alias_bomb_is_refused_fast(project: Path) -> None:
    assert len(ALIAS_BOMB.encode()) < 600
    (project / "bomb.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
    started = time.monotonic()
    result = pytest_run(project, "--llmsizer-tolerances=bomb.yaml", timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 4
    assert "bomb.yaml:1: invalid YAML: more than 200,000 values once aliases are expanded" in result.stderr
    no_crash(result)


def test_yaml_nested_20000_deep_is_a_usage_error(project: Path) -> None:
    (project / "deep.yaml").write_text("defaults: " + "[" * 20000 + "]" * 20000 + "\n", encoding="utf-8")
    result = pytest_run(project, "--llmsizer-tolerances=deep.yaml", timeout=60)
    assert result.returncode == 4
    assert "deep.yaml:1: invalid YAML: nested more than 64 levels deep" in result.stderr
    no_crash(result)


def test_yaml_anchors_within_the_budget_still_work() -> None:
    text = "defaults:\n  weights: &w {rel: 0.07}\n  kv_cache: *w\n"
    tol = parse_tolerances(text, "t.yaml")
    assert tol.defaults["kv_cache"].rel == 0.07
    with pytest.raises(ConfigError, match="alias"):
        parse_tolerances("known_failures: &k [*k]\n", "t.yaml")


@POSIX
def test_tolerances_from_a_fifo_or_device_is_refused(project: Path) -> None:
    os.mkfifo(project / "tol.yaml")
    for path in ("tol.yaml", "/dev/zero"):
        result = pytest_run(project, f"--llmsizer-tolerances={path}", timeout=60)
        assert result.returncode == 4 and "only regular files are read" in result.stderr


# ----------------------------------------------------------------------------------------------------------
# calculators that hang, flood, crash or return what cannot be recorded
# ----------------------------------------------------------------------------------------------------------

HANGING = """
import time
def calc(profile):
    time.sleep(3600)  # never returns in time
"""


def test_a_python_calculator_that_never_returns_fails_after_the_timeout(project: Path) -> None:
    (project / "hang_calc.py").write_text(HANGING, encoding="utf-8")
    started = time.monotonic()
    result = pytest_run(project, "--llmsizer-calculator=hang_calc:calc", "--llmsizer-calculator-timeout=1",
                        "--llmsizer-csv=rec.csv", timeout=120)
    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stdout[-2000:]
    assert "did not return within 1 s" in result.stdout
    assert "1 failed, 1 passed" in result.stdout
    rows = list(csv.DictReader(io.StringIO((project / "rec.csv").read_text(encoding="utf-8"), newline="")))
    assert [r["accuracy_verdict"] for r in rows] == ["failed"]
    cli = llmsizer(project, "validate", "profiles/p.json", "--calculator", "hang_calc:calc",
                   "--calculator-timeout", "1")
    assert cli.returncode == 2 and "did not return within 1 s" in cli.stderr


def test_external_calculator_stdout_flood_is_capped(tmp_path: Path) -> None:
    script = tmp_path / "flood.py"
    script.write_text("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", encoding="utf-8")
    calc = command_calculator(f"{sys.executable} {script}", timeout_s=60)
    started = time.monotonic()
    with pytest.raises(CalculatorError, match=f"more than {MAX_STDOUT_BYTES // 2**20} MiB on stdout"):
        calc(load_profile(GOOD))
    assert time.monotonic() - started < 30


def test_external_calculator_stderr_flood_is_bounded_in_messages(project: Path) -> None:
    (project / "chatty.py").write_text(
        "import sys\nfor _ in range(800):\n    sys.stderr.write('\\x1b[31mnoise ' * 10000 + '\\n')\nsys.exit(3)\n",
        encoding="utf-8")
    calc = command_calculator(f"{sys.executable} {project / 'chatty.py'}", timeout_s=60)
    with pytest.raises(CalculatorError) as e:
        calc(load_profile(GOOD))
    assert "exited with status 3" in str(e.value) and len(str(e.value)) < 2000 and "\x1b" not in str(e.value)
    result = pytest_run(project, f"--llmsizer-calculator-cmd={sys.executable} chatty.py", "--llmsizer-json=r.json",
                        "--html=r.html", timeout=300)
    assert result.returncode == 1
    assert len(result.stdout) < 50_000 and "\x1b" not in result.stdout
    assert (project / "r.json").stat().st_size < 100_000 and (project / "r.html").stat().st_size < 2_000_000


CALCS = """
from pytest_llmsizer.calculator.result import CalculatorResult
from pytest_llmsizer.pluggable.loader import builtin


def string_params(profile):
    result = builtin(profile).to_json()
    result["inputs"] = {"num_parameters": "6.7B"}
    return result


class Opaque:
    pass  # not plain data: execnet cannot send it from an xdist worker


def unpicklable(profile):
    return CalculatorResult(per_gpu_bytes={}, kv_cache_tokens=1214992, assumptions=[Opaque()])


class Nasty(Exception):
    def __str__(self):
        raise RuntimeError("str() of this exception fails")


def nasty(profile):
    raise Nasty()


def escapes(profile):
    raise ValueError("\\x1b[2J\\x1b[31mred alert\\x07" + "!" * 100000)
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
@pytest.mark.parametrize(("calc", "message"), [
    ("string_params", None),
    ("unpicklable", "cannot be recorded: record.assumptions[0]: a Opaque object, not plain data"),
    ("nasty", "raised Nasty: <Nasty object; str() raised RuntimeError>"),
    ("escapes", "raised ValueError: red alert\\x07!!!"),
])
def test_misbehaving_python_calculators_fail_their_profile_not_the_run(
    project: Path, calc: str, message: str | None, workers: tuple[str, ...]
) -> None:
    (project / "calcs.py").write_text(CALCS, encoding="utf-8")
    result = pytest_run(project, f"--llmsizer-calculator=calcs:{calc}", "--llmsizer-csv=rec.csv",
                        "--llmsizer-json=rep.json", *workers)
    no_crash(result)
    assert "\x1b" not in result.stdout and len(result.stdout) < 50_000
    rows = list(csv.DictReader(io.StringIO((project / "rec.csv").read_text(encoding="utf-8"), newline="")))
    assert len(rows) == 1
    report = json.loads((project / "rep.json").read_text(encoding="utf-8"))
    assert len(report["profiles"]) == 1
    if message is None:
        assert result.returncode == 0, result.stdout[-2000:]
        # the calculator's "6.7B" is not a count: the catalog's count of facebook/opt-125m is recorded instead
        assert rows[0]["model_params_b"] == "0.124" and rows[0]["accuracy_verdict"] == "passed"
    else:
        assert result.returncode == 1
        assert message in result.stdout, result.stdout[-3000:]
        assert rows[0]["accuracy_verdict"] == "failed"


def test_plain_data_problem_names_the_place() -> None:
    class Thing:
        pass

    assert plain_data_problem({"a": [1, 2.0, "x", None, True, {"b": ()}]}) is None
    assert plain_data_problem({"a": [1, {"b": Thing()}]}) == \
        "$.a[1].b: a Thing object, not plain data (str, int, float, bool, None, list, dict)"
    assert plain_data_problem({1: 2}) == "$: key '1' is a int, not a string"


@pytest.mark.parametrize(("args", "message"), [
    (("estimate", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "1e308"), "argument --gpu-memory-gib"),
    (("validate", str(GOOD), "--model-params", "1e400"), "argument --model-params"),
    (("validate", str(GOOD), "--calculator-total", "1e308"), "argument --calculator-total"),
    (("validate", str(GOOD), "--calculator-timeout", "1e308"), "argument --calculator-timeout"),
])
def test_huge_numbers_on_the_command_line_are_usage_errors(tmp_path: Path, args: tuple[str, ...],
                                                           message: str) -> None:
    result = llmsizer(tmp_path, *args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    no_crash(result)


# ----------------------------------------------------------------------------------------------------------
# collection: symlink loops, a profile reached twice
# ----------------------------------------------------------------------------------------------------------


@POSIX
def test_linked_folders_are_walked_once_and_each_profile_collected_once(project: Path) -> None:
    profiles = project / "profiles"
    (profiles / "self").symlink_to(".")
    (profiles / "sub").mkdir()
    (profiles / "sub" / "up").symlink_to("..")
    (profiles / "0-link.json").symlink_to("p.json")
    (profiles / "loop.json").symlink_to("loop.json")
    outside = project / "elsewhere"
    outside.mkdir()
    (outside / "q.json").write_text(json.dumps(synthetic(note=" elsewhere")), encoding="utf-8")
    (outside / "again").symlink_to(".")
    (profiles / "ext").symlink_to(outside)
    (profiles / "ext2").symlink_to(outside)
    result = pytest_run(project, "--llmsizer-csv=rec.csv", "--collect-only")
    no_crash(result)
    ids = sorted(line for line in result.stdout.splitlines() if "::" in line)
    assert ids == ["profiles/ext/q.json::accuracy", "profiles/ext/q.json::integrity",
                   "profiles/p.json::accuracy", "profiles/p.json::integrity"], result.stdout[-3000:]
    run = pytest_run(project, "--llmsizer-csv=rec.csv")
    assert run.returncode == 0, run.stdout[-3000:]
    rows = list(csv.DictReader(io.StringIO((project / "rec.csv").read_text(encoding="utf-8"), newline="")))
    assert sorted(r["profile_file"] for r in rows) == ["profiles/ext/q.json", "profiles/p.json"]
    loop = pytest_run(project, "profiles/loop.json")  # a file symlink loop named on the command line
    no_crash(loop)
    assert loop.returncode == 4 and "not found: profiles/loop.json" in loop.stdout + loop.stderr
    check = llmsizer(project, "check", "profiles", "profiles/p.json")
    assert check.stdout.splitlines() == ["ok    profiles/p.json (native)", "1 file(s) checked, 0 with problems"]


# ----------------------------------------------------------------------------------------------------------
# CSV formula injection
# ----------------------------------------------------------------------------------------------------------


def test_csv_cells_are_neutralised_the_owasp_way() -> None:
    record = {"profile_file": "=cmd|' /C calc'!A0.json", "model_id": "=HYPERLINK(\"http://x\",\"y\")",
              "gpu_type": "+1+1", "source": "@SUM(A1:A9)", "engine_version": "-2+3", "calculator": "\tx",
              "dtype": "\rbf16", "model_params": 8.0e9, "rows": [
                  {"quantity": "total", "profiled": 2e9, "calculated": 2.1e9, "difference": -1e8, "percent": -5.0}]}
    row = csv_row(record, "2026-12-04T00:00:00+00:00")
    assert row["profile_file"] == "'=cmd|' /C calc'!A0.json"
    assert row["model_id"].startswith("'=HYPERLINK")
    assert row["gpu_type"] == "'+1+1" and row["source"] == "'@SUM(A1:A9)" and row["engine_version"] == "'-2+3"
    assert row["calculator"] == "'\tx" and row["dtype"] == "'\\x0dbf16"
    assert row["difference_gb"] == "-0.1000" and row["difference_pct"] == "-5.000"  # numbers stay numbers
    assert csv_cell("-12.5") == "-12.5" and csv_cell("+3e9") == "+3e9" and csv_cell("-") == "'-"


# ----------------------------------------------------------------------------------------------------------
# what reaches the terminal: no escapes, nothing huge
# ----------------------------------------------------------------------------------------------------------


@POSIX
def test_escapes_in_file_names_do_not_reach_the_terminal(project: Path) -> None:
    name = "\x1b[2J\x1b[31mred\x07.json"
    (project / "profiles" / name).write_text(json.dumps(synthetic(note=" escape name")), encoding="utf-8")
    (project / "profiles" / "broken\x1b[5m.json").write_text("{", encoding="utf-8")
    result = pytest_run(project, "-vv", "--llmsizer-csv=rec.csv")  # -q -vv: verbose
    no_crash(result)
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "red\\x07.json::accuracy PASSED" in result.stdout
    check = llmsizer(project, "check", "profiles")
    assert "\x1b" not in check.stdout and "\x1b" not in check.stderr


def test_a_warning_on_a_minified_20mb_profile_is_not_printed_whole(project: Path) -> None:
    data = synthetic(GPT)
    data["measurements"]["components"]["weights"]["confidence"] = "low"  # -> a "confidence" warning
    data["source"]["log_lines"] = ["INFO filler " + "z" * 1000] * 20_000  # 20 MB on one line once minified
    (project / "profiles" / "p.json").write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    assert (project / "profiles" / "p.json").stat().st_size > 20_000_000
    result = pytest_run(project, "-W", "default::pytest_llmsizer.DataQualityWarning", "-rw")
    no_crash(result)
    assert "DataQualityWarning" in result.stdout and "confidence" in result.stdout
    assert len(result.stdout) < 50_000


def test_a_1mb_engine_version_is_not_echoed_in_full(project: Path) -> None:
    data = synthetic()
    data["engine"]["version"] = "1" * 1_000_000
    data["measurements"]["kv_cache_tokens"] = 1  # fail, so that the table and assumptions are printed
    (project / "profiles" / "p.json").write_text(json.dumps(data), encoding="utf-8")
    result = pytest_run(project, "--llmsizer-csv=rec.csv", "--llmsizer-json=r.json")
    no_crash(result)
    assert result.returncode == 1
    assert len(result.stdout) < 50_000 and "1" * 5000 not in result.stdout
    assert (project / "rec.csv").stat().st_size < 20_000
    assert (project / "r.json").stat().st_size < 100_000
    validate = llmsizer(project, "validate", "profiles/p.json")
    assert len(validate.stdout) < 50_000


def test_clean_strips_escapes_and_shortens() -> None:
    assert clean("\x1b[2J\x1b[31mred\x07 and\nmore", 100) == "red\\x07 and more"
    assert clean("x" * 1000, 10) == "x" * 10 + "…"
    assert clean("a\u202eb") == "a\\u202eb"


# ----------------------------------------------------------------------------------------------------------
# inputs: regular files only, sizes checked first
# ----------------------------------------------------------------------------------------------------------


@POSIX
def test_a_fifo_or_device_among_the_profiles_does_not_hang_the_run(project: Path) -> None:
    """pytest hands only regular files to collection hooks; named on the llmsizer command line they are refused
    (tests/test_log_streaming.py)."""
    os.mkfifo(project / "profiles" / "pipe.json")
    (project / "profiles" / "zero.json").symlink_to("/dev/zero")
    result = pytest_run(project, timeout=120)
    no_crash(result)
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout[-3000:]


def test_read_regular_checks_the_size_first(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(10 * 2**20)
    with pytest.raises(UnsafePathError, match=r"file is 10\.0 MiB; profiles are expected to be under 1 MiB"):
        read_regular(big, limit=2**20, what="profiles")


def test_profile_size_cap_is_configurable(project: Path) -> None:
    data = synthetic()
    data["source"]["log_lines"] = ["INFO filler " + "z" * 1000] * 2000  # about 2 MiB
    (project / "profiles" / "p.json").write_text(json.dumps(data), encoding="utf-8")
    env_run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--llmsizer-no-gate"],
                             cwd=project, capture_output=True, text=True, timeout=300, check=False,
                             env={**ENV, "LLMSIZER_MAX_PROFILE_MIB": "1"})
    assert "MiB; profiles are expected to be under 1 MiB (raise it with LLMSIZER_MAX_PROFILE_MIB)" in env_run.stdout
    assert pytest_run(project).returncode == 0  # under the default cap (64 MiB)


# ----------------------------------------------------------------------------------------------------------
# the building blocks, directly
# ----------------------------------------------------------------------------------------------------------


def test_timed_calculator_returns_raises_and_times_out() -> None:
    from pytest_llmsizer.pluggable.loader import builtin
    from pytest_llmsizer.pluggable.runner import TimedCalculator, with_timeout

    profile = load_profile(GOOD)
    assert with_timeout(builtin, 1, "builtin") is builtin  # the built-in calculator is called directly
    assert TimedCalculator(lambda p: {"per_gpu_bytes": {}}, 5, "ok")(profile) == {"per_gpu_bytes": {}}

    def boom(p: object) -> None:
        raise KeyError("no such thing")

    with pytest.raises(KeyError, match="no such thing"):
        TimedCalculator(boom, 5, "boom")(profile)
    started = time.monotonic()
    with pytest.raises(CalculatorError, match=r"calculator 'slow' did not return within 0\.2 s"):
        TimedCalculator(lambda p: time.sleep(30), 0.2, "slow")(profile)
    assert time.monotonic() - started < 5


@POSIX
def test_an_append_waits_for_the_lock_and_gives_up_with_a_message(tmp_path: Path) -> None:
    import fcntl

    path = tmp_path / "rec.csv"
    path.write_text("h\n", encoding="utf-8")
    with path.open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(UnsafePathError, match=r"held its lock for more than 0\.3 s; nothing was appended"):
            locked_append(path, lambda head, size: "row\n", timeout_s=0.3)
        assert 0.3 <= time.monotonic() - started < 5
    locked_append(path, lambda head, size: "row\n")
    assert path.read_text(encoding="utf-8") == "h\nrow\n"
