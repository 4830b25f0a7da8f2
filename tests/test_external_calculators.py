"""External calculators: the command protocol (llmsizer-calculator/1), its plugin options, and named entry points."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_llmsizer.calculator.result import CalculatorResult
from pytest_llmsizer.errors import CalculatorError, LlmsizerError
from pytest_llmsizer.pluggable import loader as calculators
from pytest_llmsizer.pluggable.command import PROTOCOL, CommandCalculator, command_calculator
from pytest_llmsizer.pluggable.loader import builtin, load_calculator
from pytest_llmsizer.profile.load import load_profile

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles" / "vllm-issue-threads"
EXAMPLE = REPO / "examples" / "flat_calculator.py"
# real measurements: a catalog model (the resolver's inputs are sent) and one the catalog lacks (inputs is null)
LLAMA = "vllm-10511--meta-llama-3-8b.json"
BAMBA = "vllm-10909--bamba-9.8b-1.8t-hf.json"

INI = """[pytest]
llmsizer_profile_paths = profiles
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
pythonpath = .
"""

# A fake external calculator for the tests: its behaviour is chosen by its first argument.
FAKE = textwrap.dedent('''
    import json, os, subprocess, sys, time

    mode = sys.argv[1]
    request = json.load(sys.stdin)
    if mode == "dump":
        with open(sys.argv[2], "w") as f:
            json.dump(request, f)
    if mode == "exit1":
        print("loading weights table", file=sys.stderr)
        print("Traceback (most recent call last):", file=sys.stderr)
        print("KeyError: 'hidden_size'", file=sys.stderr)
        sys.exit(1)
    if mode == "sleep":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(sys.argv[2], "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
        time.sleep(60)
    if mode == "notjson":
        print("not json")
        sys.exit(0)
    if mode == "empty":
        sys.exit(0)
    if mode == "raw":
        print(sys.argv[2])
        sys.exit(0)
    if mode == "error" or (mode == "decline-bamba" and "Bamba" in request["profile"]["model"]["id"]):
        print(json.dumps({"error": "unsupported model"}))
        sys.exit(0)
    # echo: answer exactly what the profile measured (a perfect calculator)
    components = request["profile"]["measurements"]["components"]
    print(json.dumps({"per_gpu_bytes": {k: v["bytes"] for k, v in components.items()},
                      "assumptions": ["echoes the measurement"], "inputs": {"num_parameters": 123}}))
''')


def _cmd(*argv: str | Path) -> str:
    return shlex.join([sys.executable, *map(str, argv)])


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    path = tmp_path / "fakecalc.py"
    path.write_text(FAKE, encoding="utf-8")
    return path


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    (pytester.path / "profiles").mkdir()
    for name in (LLAMA, BAMBA):
        shutil.copy(PROFILES / name, pytester.path / "profiles" / name)
    pytester.path.joinpath("fakecalc.py").write_text(FAKE, encoding="utf-8")
    return pytester


def _run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest("-p", "no:cacheprovider", "--llmsizer-no-gate", *args)


# -- through pytest ----------------------------------------------------------------------------------------------


def test_example_calculator_is_compared_with_the_measurements(project: pytest.Pytester):
    report = project.path / "report.json"
    command = _cmd(EXAMPLE)
    result = _run(project, "--llmsizer-calculator-cmd", command, "--llmsizer-json", str(report))
    result.assert_outcomes(passed=2, failed=2)  # both integrity items; the flat example fails both accuracy items
    result.stdout.fnmatch_lines([
        f"*profiles/{LLAMA}: outside tolerance: *kv_cache*",
        # its weights (8.03e9 parameters x 2 bytes) match the log; one 8192-token sequence of KV does not
        "weights*14.96* GiB*14.95* GiB*ok",
        "kv_cache*53.29* GiB*1.00* GiB*FAIL",
        "calculator assumptions:",
        "*KV cache for one sequence of 8192 tokens*",
    ])
    out = result.stdout.str()
    assert f"cannot estimate profiles/{BAMBA}: calculator command {command!r} declined: cannot size " \
           "ibm-fms/Bamba-9.8b-1.8T-hf: unknown model" in out
    assert "Traceback" not in out
    doc = json.loads(report.read_text())
    assert doc["calculator"] == command
    llama = next(r for r in doc["profiles"] if r["profile_file"].endswith(LLAMA))
    assert llama["calculator"] == command


def test_a_perfect_command_passes_even_without_resolver_inputs(project: pytest.Pytester):
    result = _run(project, "-v", "--llmsizer-calculator-cmd", _cmd("fakecalc.py", "echo"))
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"profiles/{LLAMA}::accuracy PASSED*", f"profiles/{BAMBA}::accuracy PASSED*"])


def test_a_declined_profile_fails_alone(project: pytest.Pytester):
    result = _run(project, "-v", "--llmsizer-calculator-cmd", _cmd("fakecalc.py", "decline-bamba"))
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([f"profiles/{LLAMA}::accuracy PASSED*", f"profiles/{BAMBA}::accuracy FAILED*",
                                 f"*cannot estimate profiles/{BAMBA}: calculator command * declined: "
                                 "unsupported model*"])


@pytest.mark.parametrize(("argv", "extra", "message"), [
    (("fakecalc.py", "exit1"), (), "exited with status 1: loading weights table | Traceback (most recent call "
                                   "last): | KeyError: 'hidden_size'"),
    (("fakecalc.py", "sleep", "pids.txt"), ("--llmsizer-calculator-timeout", "1"), "timed out after 1 s (killed)"),
    (("fakecalc.py", "notjson"), (), "printed invalid JSON on stdout (Expecting value at line 1 column 1); "
                                     "expected one JSON object: {\"per_gpu_bytes\""),
    (("fakecalc.py", "error"), (), "declined: unsupported model"),
])
def test_a_failing_command_fails_each_accuracy_item_and_the_run_completes(project: pytest.Pytester, argv, extra,
                                                                          message):
    command = _cmd(*argv)
    started = time.monotonic()
    result = _run(project, "--llmsizer-calculator-cmd", command, *extra)
    assert time.monotonic() - started < 30
    result.assert_outcomes(passed=2, failed=2)  # the integrity items still pass
    out = result.stdout.str()
    for name in (LLAMA, BAMBA):
        assert f"cannot estimate profiles/{name}: calculator command {command!r} {message}" in out
    assert "Traceback (most recent call last):\n" not in out
    assert "errors" not in result.parseoutcomes()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_missing_executable_fails_each_accuracy_item(project: pytest.Pytester):
    result = _run(project, "--llmsizer-calculator-cmd", "no-such-llmsizer-calculator --fast")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*cannot estimate profiles/*: calculator command 'no-such-llmsizer-calculator "
                                 "--fast': executable 'no-such-llmsizer-calculator' not found"])


def test_ini_command_and_timeout(project: pytest.Pytester):
    project.makeini(INI + f"llmsizer_calculator_cmd = {_cmd('fakecalc.py', 'sleep', 'pids.txt')}\n"
                          "llmsizer_calculator_timeout = 0.5\n")
    result = _run(project)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*timed out after 0.5 s (killed)*"])
    # the command line wins over the ini file
    result = _run(project, "--llmsizer-calculator", "builtin")
    assert "timed out" not in result.stdout.str()


@pytest.mark.parametrize(("args", "message"), [
    (("--llmsizer-calculator", "builtin", "--llmsizer-calculator-cmd", "python x.py"),
     "give either --llmsizer-calculator or --llmsizer-calculator-cmd, not both"),
    (("--llmsizer-calculator-cmd", "python 'unbalanced"), "cannot be parsed: No closing quotation"),
    (("--llmsizer-calculator-cmd", "python x.py", "--llmsizer-calculator-timeout", "soon"),
     "calculator timeout 'soon' is not a number of seconds"),
    (("--llmsizer-calculator-cmd", "python x.py", "--llmsizer-calculator-timeout", "0"),
     "calculator timeout must be a positive number of seconds, not 0.0"),
    (("--llmsizer-calculator", "no-such-name"), "unknown calculator 'no-such-name'; registered calculators: 'builtin'"),
])
def test_bad_calculator_options_are_usage_errors(project: pytest.Pytester, args, message):
    result = _run(project, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_both_in_the_ini_file_is_a_usage_error(project: pytest.Pytester):
    project.makeini(INI + "llmsizer_calculator = pkg:calc\nllmsizer_calculator_cmd = python x.py\n")
    result = _run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini sets both llmsizer_calculator and llmsizer_calculator_cmd" in result.stderr.str()


# -- the protocol, unit level ------------------------------------------------------------------------------------


def test_request_carries_the_profile_and_the_resolver_inputs(fake: Path, tmp_path: Path):
    dump = tmp_path / "request.json"
    result = CommandCalculator(_cmd(fake, "dump", dump))(load_profile(PROFILES / LLAMA))
    assert isinstance(result, CalculatorResult)
    assert result.per_gpu_bytes["weights"] == 16063177687 and result.inputs == {"num_parameters": 123}
    assert result.assumptions == ["echoes the measurement"]
    request = json.loads(dump.read_text())
    assert request["protocol"] == PROTOCOL == "llmsizer-calculator/1"
    assert "inputs_error" not in request
    assert request["profile"] == json.loads((PROFILES / LLAMA).read_text()) | {"synthetic": False}
    inputs = request["inputs"]
    assert inputs["model"] == "meta-llama/Meta-Llama-3-8B"
    assert inputs["num_parameters"] == 8030261248
    assert inputs["gpu_memory_bytes"] == 85061827297 and inputs["gpu_memory_utilization"] == 0.9
    assert inputs["tensor_parallel_size"] == 1 and inputs["pipeline_parallel_size"] == 1
    assert inputs["max_model_len"] is None and inputs["kv_cache_dtype"] is None  # the profile does not say
    arch = inputs["architecture"]
    assert (arch["num_kv_heads"], arch["head_dim"], len(arch["layer_attention"])) == (8, 128, 32)


def test_request_without_resolver_inputs_says_why(fake: Path, tmp_path: Path):
    dump = tmp_path / "request.json"
    CommandCalculator(_cmd(fake, "dump", dump))(load_profile(PROFILES / BAMBA))
    request = json.loads(dump.read_text())
    assert request["inputs"] is None
    assert request["inputs_error"].startswith("unknown model 'ibm-fms/Bamba-9.8b-1.8T-hf'")


def test_example_script_answers_a_request(fake: Path, tmp_path: Path):
    result = command_calculator(_cmd(EXAMPLE))(load_profile(PROFILES / LLAMA))
    assert result.per_gpu_bytes == {"weights": 8030261248 * 2, "kv_cache": 2 * 32 * 8 * 128 * 2 * 8192}
    assert result.inputs == {"num_parameters": 8030261248}


@pytest.mark.parametrize(("stdout", "message"), [
    ("[1, 2]", "printed a JSON list; expected one JSON object"),
    ('{"weights": 1}', "answered no 'per_gpu_bytes' object"),
    ('{"per_gpu_bytes": {"weights": 1}, "kv_cache_tokens": "many"}', "answered kv_cache_tokens = 'many'"),
    ('{"per_gpu_bytes": {"weights": 1}, "assumptions": "one"}', "answered 'assumptions' that is not a list"),
    ('{"per_gpu_bytes": {"vram": 1}}', "calculator returned unknown component 'vram'"),
    ('{"per_gpu_bytes": {"weights": "1 GiB"}}', "per_gpu_bytes.weights = '1 GiB'; expected bytes"),
    ("x" * 500, "got '" + "x" * 200 + "...'"),
])
def test_unusable_answers(fake: Path, stdout: str, message: str):
    calc = CommandCalculator(_cmd(fake, "raw", stdout))
    with pytest.raises(CalculatorError, match="calculator command") as info:
        calc(load_profile(PROFILES / LLAMA))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_stdout(fake: Path):
    with pytest.raises(CalculatorError, match=r"printed nothing on stdout; expected one JSON object: "
                                              r"\{\"per_gpu_bytes\""):
        CommandCalculator(_cmd(fake, "empty"))(load_profile(PROFILES / LLAMA))


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # an orphan the container's init has not reaped yet is dead


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_timeout_kills_the_command_and_its_children(fake: Path, tmp_path: Path):
    pids = tmp_path / "pids.txt"
    calc = CommandCalculator(_cmd(fake, "sleep", pids), timeout_s=1)
    started = time.monotonic()
    with pytest.raises(CalculatorError, match=r"timed out after 1 s \(killed\)"):
        calc(load_profile(PROFILES / LLAMA))
    assert time.monotonic() - started < 10
    parent, child = map(int, pids.read_text().split())
    deadline = time.monotonic() + 5
    while (_alive(parent) or _alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(parent) and not _alive(child)


def test_command_errors_are_llmsizer_errors():
    assert issubclass(CalculatorError, LlmsizerError)
    with pytest.raises(CalculatorError, match="calculator command is empty"):
        command_calculator("   ")
    with pytest.raises(CalculatorError, match="positive number of seconds"):
        command_calculator("python x.py", timeout_s=float("nan"))
    calc = command_calculator("python x.py", 5)
    assert (calc.argv, calc.timeout_s) == (["python", "x.py"], 5.0)
    assert repr(calc) == "CommandCalculator('python x.py', timeout_s=5)"


def test_not_executable(tmp_path: Path):
    script = tmp_path / "calc.sh"
    script.write_text("#!/bin/sh\necho {}\n")
    script.chmod(0o644)
    if os.access(script, os.X_OK):
        pytest.skip("running as a user who can execute anything")
    with pytest.raises(CalculatorError, match="cannot start: Permission denied"):
        CommandCalculator(shlex.quote(str(script)))(load_profile(PROFILES / LLAMA))


# -- named calculators: the entry-point group pytest_llmsizer.calculators ----------------------------------------


def _fake_distribution(root: Path, entry_points: str) -> None:
    """An installed distribution as importlib.metadata finds it on sys.path: a dist-info folder and a module."""
    info = root / "fake_llmsizer_calcs-1.0.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text("Metadata-Version: 2.1\nName: fake-llmsizer-calcs\nVersion: 1.0\n")
    info.joinpath("entry_points.txt").write_text(f"[pytest_llmsizer.calculators]\n{entry_points}")
    root.joinpath("fake_llmsizer_calcs.py").write_text(textwrap.dedent('''
        def echo(profile):
            comps = profile.measurements.components.present()
            return {"per_gpu_bytes": {k: c.bytes for k, c in comps.items()}}

        not_callable = 42
    '''))


ENTRY_POINTS = """\
echo = fake_llmsizer_calcs:echo
vendor:calc = fake_llmsizer_calcs:echo
numbers = fake_llmsizer_calcs:not_callable
broken = fake_llmsizer_calcs_missing:calc
"""


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    _fake_distribution(root, ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "fake_llmsizer_calcs", raising=False)
    return root


def test_entry_point_is_found_by_name(registered: Path):
    calc = load_calculator("echo")
    assert calc.__module__ == "fake_llmsizer_calcs"
    assert load_calculator("vendor:calc") is calc  # a registered name wins over module:attribute
    assert load_calculator(" echo ") is calc
    assert set(calculators.registered_calculators()) >= {"echo", "vendor:calc", "numbers", "broken"}


def test_entry_point_problems(registered: Path):
    with pytest.raises(CalculatorError, match=r"unknown calculator 'nope'; registered calculators: 'builtin', "
                                              r"'broken', 'echo', 'numbers', 'vendor:calc'"):
        load_calculator("nope")
    with pytest.raises(CalculatorError, match=r"calculator 'broken': entry point 'fake_llmsizer_calcs_missing:calc' "
                                              r"cannot be loaded: ModuleNotFoundError"):
        load_calculator("broken")
    with pytest.raises(CalculatorError, match=r"calculator 'numbers' is not callable \(got int\)"):
        load_calculator("numbers")


def test_builtin_without_and_with_its_entry_point(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(calculators.metadata, "entry_points", lambda group: [])
    assert load_calculator(None) is builtin and load_calculator("builtin") is builtin
    group = calculators.ENTRY_POINT_GROUP
    ep = calculators.metadata.EntryPoint("builtin", "pytest_llmsizer.pluggable.loader:builtin", group)
    monkeypatch.setattr(calculators.metadata, "entry_points", lambda group: [ep])
    assert load_calculator("builtin") is builtin
    with pytest.raises(CalculatorError, match=r"registered calculators: 'builtin' \("):
        load_calculator("other")  # listed once


def test_entry_point_calculator_through_pytest(project: pytest.Pytester):
    _fake_distribution(project.path, "echo = fake_llmsizer_calcs:echo\n")  # on sys.path through "pythonpath = ."
    result = _run(project, "-v", "--llmsizer-calculator", "echo")
    result.assert_outcomes(passed=4)
