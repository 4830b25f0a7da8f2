"""The gate judges the accuracy items that ran (issue 9, point 3): a selection that runs none outside the known
failures is not gated and says so in one line; a selection that runs some is gated on those. Real committed
profiles; the known-failure entry is this test's own."""

from __future__ import annotations

import pytest
from pytester_project import make_project

GOOD = ("vllm-33155--gpt-oss-120b.json", "vllm-4454--opt-125m.json")
KNOWN = "vllm-10511--meta-llama-3-8b.json"  # non-torch 1.79 GiB logged vs 0.15 calculated: fails

TOLERANCES = f"""
known_failures:
  - match: {{profile: "profiles/{KNOWN}"}}
    reason: "non-torch memory of a dev build"
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_project(pytester, (*GOOD, KNOWN), tolerances=TOLERANCES)


def test_integrity_only_is_not_gated(project: pytest.Pytester):
    result = project.runpytest("-p", "no:cacheprovider", "-m", "integrity")
    result.assert_outcomes(passed=3, deselected=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*accuracy: not run*",
                                 "llmsizer gate: not evaluated: no accuracy item ran (3 profile(s) selected)"])
    assert "accuracy: ;" not in result.stdout.str() and "MISSED" not in result.stdout.str()


@pytest.mark.parametrize("workers", [(), ("-n", "2")])
def test_only_known_failures_is_not_gated(project: pytest.Pytester, workers: tuple[str, ...]):
    result = project.runpytest_subprocess("-p", "no:cacheprovider", *workers, "-k", "llama")
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["llmsizer gate: not evaluated: the 1 accuracy item(s) that ran are all known "
                                 "failures (1 profile(s) selected)"])


def test_collect_only_is_not_gated_and_says_so(project: pytest.Pytester):
    result = project.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["llmsizer gate: not evaluated (--collect-only: no profile was validated)"])


def test_a_selection_is_gated_on_what_it_ran(project: pytest.Pytester):
    result = project.runpytest("-p", "no:cacheprovider", "-k", "opt")
    result.assert_outcomes(passed=2, deselected=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["1 profiles in the gate*", "gate: passed"])
    (project.path / "tolerances.yaml").write_text(TOLERANCES + "gate:\n  good_or_better_pct_min: 100\n")
    strict = project.runpytest("-p", "no:cacheprovider", "-k", "opt and accuracy")
    assert strict.ret == 1
    strict.stdout.fnmatch_lines(["FAIL llmsizer accuracy gate failed: *"])


def test_an_unrelated_suite_loads_nothing(pytester: pytest.Pytester):
    """A project without profiles, llmsizer options or ini keys: the plugin stays dormant and prints nothing."""
    pytester.makepyfile("def test_one(): pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
    assert "llmsizer" not in result.stdout.str()


def test_importing_the_plugin_loads_no_heavy_module():
    """pytest imports the plugin in every run of the environment: pydantic, YAML, matplotlib, jsonschema, the
    catalog and the calculator must wait until a run has profiles to deal with."""
    import subprocess
    import sys

    heavy = ("pydantic", "yaml", "matplotlib", "jsonschema", "pytest_llmsizer.catalog", "pytest_llmsizer.calculator",
             "pytest_llmsizer.profile.model")
    code = ("import sys, pytest_llmsizer.plugin, pytest_llmsizer; pytest_llmsizer.DataQualityWarning; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_min_profiles_guards_the_whole_set_not_a_selection(project: pytest.Pytester):
    """``gate.min_profiles`` guards the corpus against profiles dropping out of the gate; a selection (-k, -m, a
    sub-path) is judged on the metrics of what it ran, and shows the count without judging it."""
    (project.path / "tolerances.yaml").write_text(TOLERANCES + "gate:\n  min_profiles: 5\n")
    full = project.runpytest("-p", "no:cacheprovider")
    assert full.ret == 1
    full.stdout.fnmatch_lines(["FAIL llmsizer accuracy gate failed: profiles in the gate = 2 (target >= 5)"])
    for selection in (("-k", "opt"), (f"profiles/{GOOD[0]}",)):
        result = project.runpytest("-p", "no:cacheprovider", *selection)
        assert result.ret == 0, selection
        result.stdout.fnmatch_lines(["profiles in the gate*>= 5*(a selection: not judged)", "gate: passed"])
