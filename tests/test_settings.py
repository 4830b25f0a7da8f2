"""Option and ini resolution (``pytest_llmsizer.settings``): command line over ini over defaults, typed ini values,
and the dormant state of an unrelated project's run. Resolved from real ``pytest.Config`` objects (pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmsizer.errors import CalculatorError
from pytest_llmsizer.settings import DEFAULT_CALCULATOR_TIMEOUT_S, resolve_settings


def test_unrelated_project_is_dormant(pytester: pytest.Pytester):
    pytester.makepyfile("def test_one(): pass\n")
    settings = resolve_settings(pytester.parseconfig())
    assert not settings.active and settings.profile_paths == ()


def test_a_profiles_directory_or_a_json_argument_activates(pytester: pytest.Pytester):
    (pytester.path / "profiles").mkdir()
    settings = resolve_settings(pytester.parseconfig())
    assert settings.active and settings.profile_paths == ((pytester.path / "profiles").resolve(),)
    (pytester.path / "profiles").rmdir()
    (pytester.path / "one.json").write_text("{}")
    settings = resolve_settings(pytester.parseconfig("one.json"))
    assert settings.active and settings.explicit_files == frozenset({(pytester.path / "one.json").resolve()})


def test_command_line_over_ini_over_default(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nllmsizer_csv = from-ini.csv\nllmsizer_calculator_timeout = 2.5\n"
                     "llmsizer_gate = false\nllmsizer_tolerances = tol.yaml\n")
    settings = resolve_settings(pytester.parseconfig())
    assert settings.csv_path == pytester.path / "from-ini.csv"  # relative to the ini file
    assert settings.calculator_timeout_s == 2.5 and isinstance(settings.calculator_timeout_s, float)
    assert settings.gate is False and settings.tolerances_path == pytester.path / "tol.yaml"
    settings = resolve_settings(pytester.parseconfig("--llmsizer-csv", "cli.csv", "--llmsizer-calculator-timeout",
                                                     "7", "--llmsizer-tolerances", "other.yaml"))
    assert settings.csv_path == Path("cli.csv") and settings.calculator_timeout_s == 7.0
    assert settings.tolerances_path == Path("other.yaml")


def test_defaults(pytester: pytest.Pytester):
    (pytester.path / "profiles").mkdir()
    (pytester.path / "tolerances.yaml").write_text("")
    settings = resolve_settings(pytester.parseconfig())
    assert settings.calculator_spec == "builtin" and settings.calculator_cmd is None
    assert settings.gate is True
    assert settings.calculator_timeout_s == DEFAULT_CALCULATOR_TIMEOUT_S
    assert settings.tolerances_path == pytester.path / "tolerances.yaml"
    assert settings.csv_path is None and settings.json_path is None and settings.profile_glob == "*.json"


def test_contradictions_are_errors(pytester: pytest.Pytester):
    with pytest.raises(CalculatorError, match="not both"):
        resolve_settings(pytester.parseconfig("--llmsizer-calculator", "a:b", "--llmsizer-calculator-cmd", "x"))
    with pytest.raises(CalculatorError, match="not a number of seconds"):
        resolve_settings(pytester.parseconfig("--llmsizer-calculator-cmd", "x", "--llmsizer-calculator-timeout",
                                              "soon"))
    pytester.makeini("[pytest]\nllmsizer_calculator = a:b\nllmsizer_calculator_cmd = python x.py\n")
    with pytest.raises(CalculatorError, match="keep one"):
        resolve_settings(pytester.parseconfig())


def test_settings_are_frozen(pytester: pytest.Pytester):
    settings = resolve_settings(pytester.parseconfig("--llmsizer-no-gate"))
    assert settings.active and settings.gate is False
    with pytest.raises(AttributeError):
        settings.gate = True  # type: ignore[misc]


def test_a_selection_is_recognised(pytester: pytest.Pytester):
    (pytester.path / "profiles" / "sub").mkdir(parents=True)
    (pytester.path / "profiles" / "sub" / "a.json").write_text("{}")
    assert not resolve_settings(pytester.parseconfig()).selection
    assert not resolve_settings(pytester.parseconfig("profiles")).selection
    assert not resolve_settings(pytester.parseconfig("tests", "profiles")).selection
    for args in (("-k", "llama"), ("-m", "integrity"), ("profiles/sub",), ("profiles/sub/a.json",),
                 ("profiles/sub/a.json::accuracy",), ("--deselect", "profiles/sub/a.json::accuracy")):
        assert resolve_settings(pytester.parseconfig(*args)).selection, args
