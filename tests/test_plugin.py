"""The pytest plugin, end to end through pytester (serially and under xdist), on real committed profiles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles" / "vllm-issue-threads"
# real measurements the calculator matches (vllm#33155: gpt-oss-120b weights; vllm#10511 without non-torch)
PASSING = "vllm-33155--gpt-oss-120b.json"
LLAMA = "vllm-10511--meta-llama-3-8b.json"

# The outer test run has imported pytest_llmsizer already, so in-process runs cannot assertion-rewrite it.
INI = """
[pytest]
llmsizer_profile_paths = profiles
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
pythonpath = .
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    (pytester.path / "profiles").mkdir()
    shutil.copy(PROFILES / PASSING, pytester.path / "profiles" / PASSING)
    return pytester


def _write(pytester: pytest.Pytester, name: str, data: object) -> Path:
    path = pytester.path / "profiles" / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _llama_without_non_torch() -> dict:
    data = json.loads((PROFILES / LLAMA).read_text())
    del data["measurements"]["components"]["non_torch"]
    return data


def test_profile_passes_and_node_id_is_path_accuracy(project: pytest.Pytester):
    result = project.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"profiles/{PASSING}::accuracy PASSED*", f"profiles/{PASSING}::integrity PASSED*"])


def test_failure_prints_one_table(project: pytest.Pytester):
    data = _llama_without_non_torch()
    # synthetic edge case: the real KV figure scaled by 0.8 so that kv_cache must fail
    data["measurements"]["components"]["kv_cache"]["bytes"] = int(data["measurements"]["components"]["kv_cache"][
        "bytes"] * 0.8)
    _write(project, "scaled.json", data)
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-no-gate")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*outside tolerance: kv_cache*",
        "component*profiled*calculated*difference*percent*band*tolerance*",
        "weights*GiB*GiB*Excellent*ok*",
        "kv_cache*GiB*GiB*Poor*FAIL*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_broken_profiles_fail_their_own_item_and_others_still_run(project: pytest.Pytester):
    _write(project, "truncated.json", '{"format": "llmsizer-profile", "format_version": 1, "model": {')
    _write(project, "invalid.json", {"format": "llmsizer-profile", "format_version": 1, "model": {"id": ""},
                                     "hardware": {"gpu_count": 0}})
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=4)
    out = result.stdout.str()
    assert "errors" not in result.parseoutcomes()
    assert "truncated.json: $: invalid JSON at line 1" in out
    assert "$.source: Field required" in out and "$.hardware.gpu_count" in out and "$.model.id" in out
    assert result.ret == 1


def test_json_files_outside_profile_paths_are_not_claimed(project: pytest.Pytester):
    (project.path / "package.json").write_text('{"name": "x"}')
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "profile.json").write_text("{broken")
    result = project.runpytest("-p", "no:cacheprovider", ".")
    result.assert_outcomes(passed=2)


def test_explicit_file_argument_is_claimed(pytester: pytest.Pytester):
    shutil.copy(PROFILES / PASSING, pytester.path / "one.json")
    result = pytester.runpytest("-p", "no:cacheprovider", "one.json")
    result.assert_outcomes(passed=2)


def test_known_failure_becomes_xfail_with_reason(project: pytest.Pytester):
    _write(project, "llama.json", json.loads((PROFILES / LLAMA).read_text()))
    (project.path / "tol.yaml").write_text(
        'known_failures:\n  - match: {profile: "profiles/llama.json"}\n    reason: "non-torch of a dev build"\n'
    )
    result = project.runpytest("-p", "no:cacheprovider", "-rx", "--llmsizer-tolerances", "tol.yaml")
    result.assert_outcomes(passed=3, xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*llama.json::accuracy*known failure: non-torch of a dev build*"])


def test_strict_known_failure_that_passes_fails_the_run(project: pytest.Pytester):
    (project.path / "tol.yaml").write_text(
        f'known_failures:\n  - match: {{profile: "profiles/{PASSING}"}}\n    reason: "listed but fixed"\n'
    )
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-tolerances", "tol.yaml")
    result.assert_outcomes(passed=1, failed=1)


def test_override_by_model_loosens_a_component(project: pytest.Pytester):
    _write(project, "llama.json", json.loads((PROFILES / LLAMA).read_text()))
    (project.path / "tol.yaml").write_text(
        "overrides:\n  - match: {model: 'meta-llama/*', tp: 1}\n    tolerances: {non_torch: {rel: 1.0}}\n"
    )
    assert project.runpytest("-p", "no:cacheprovider").ret == 1
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-tolerances", "tol.yaml")
    result.assert_outcomes(passed=4)


def test_k_selects_by_model_and_tp(project: pytest.Pytester):
    _write(project, "llama.json", _llama_without_non_torch())
    result = project.runpytest("-p", "no:cacheprovider", "-k", "Meta-Llama-3-8B and tp1 and accuracy")
    result.assert_outcomes(passed=1, deselected=3)
    result = project.runpytest("-p", "no:cacheprovider", "-m", "accuracy")
    result.assert_outcomes(passed=2, deselected=2)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("defaults: [1, 2\n", "invalid YAML"),
        ("defaults:\n  weights: {rel: -0.1}\n", "greater than or equal to 0"),
        ("defaults:\n  weights: {rell: 0.1}\n", "unknown key"),
        ("bogus: 1\n", "unknown key"),
        ("defaults:\n  weights: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ],
)
def test_broken_tolerances_stop_the_run_with_exit_4(project: pytest.Pytester, content: str, fragment: str):
    (project.path / "tol.yaml").write_text(content)
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-tolerances", "tol.yaml")
    assert result.ret == 4
    assert fragment in result.stderr.str()
    assert "tol.yaml" in result.stderr.str()


def test_plugged_in_calculator(project: pytest.Pytester):
    project.makepyfile(my_calc="""
        def zero(profile):
            return {"per_gpu_bytes": {"weights": 0}}

        def boom(profile):
            raise RuntimeError("calculator bug")
    """)
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-calculator", "my_calc:zero")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*weights*GiB*0.000 GiB*Poor*FAIL*"])
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-calculator", "my_calc:boom")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*calculator my_calc:boom raised RuntimeError: calculator bug*"])
    result = project.runpytest("-p", "no:cacheprovider", "--llmsizer-calculator", "my_calc:missing")
    assert result.ret == 4


def test_same_outcomes_serially_and_under_xdist(project: pytest.Pytester):
    _write(project, "llama.json", json.loads((PROFILES / LLAMA).read_text()))
    _write(project, "broken.json", "")
    serial = project.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    parallel = project.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-n", "2")
    for result in (serial, parallel):
        result.assert_outcomes(passed=3, failed=3)
        # under xdist the two failures are reported in the order the workers finish: match each on its own
        result.stdout.fnmatch_lines(["*FAILED profiles/broken.json::accuracy*"])
        result.stdout.fnmatch_lines(["*FAILED profiles/llama.json*"])
    assert serial.ret == parallel.ret == 1
