"""pytest entry point (``llmsizer`` in ``pytest11``): hooks only.

Which JSON files are profiles: those under ``llmsizer_profile_paths`` (ini, relative to the ini file; default
``profiles/`` under the root directory) or ``--llmsizer-profiles``, and any JSON file named explicitly on the command
line, whose name matches ``llmsizer_profile_glob``. Other JSON files (package.json, test fixtures) are never claimed.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from pytest_llmsizer.calculators import CalculatorError, load_calculator
from pytest_llmsizer.collect import ProfileFile
from pytest_llmsizer.errors import ConfigError
from pytest_llmsizer.state import STATE_KEY, PluginState
from pytest_llmsizer.validation.tolerances import load_tolerances


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmsizer", "LLM GPU-memory profiles (pytest-llmsizer)")
    group.addoption("--llmsizer-tolerances", metavar="PATH", default=None,
                    help="tolerances YAML (default: ini llmsizer_tolerances, else tolerances.yaml in the root "
                         "directory if present, else built-in defaults)")
    group.addoption("--llmsizer-calculator", metavar="SPEC", default=None,
                    help="calculator to validate: 'builtin' (default) or 'module:attribute'")
    group.addoption("--llmsizer-profiles", metavar="PATH", action="append", default=[],
                    help="directory (or file) of profiles to claim, in addition to ini llmsizer_profile_paths")
    parser.addini("llmsizer_tolerances", "tolerances YAML file", type="string", default="")
    parser.addini("llmsizer_calculator", "calculator spec: builtin or module:attribute", type="string",
                  default="builtin")
    parser.addini("llmsizer_profile_paths", "directories holding profile JSON files", type="paths", default=[])
    parser.addini("llmsizer_profile_glob", "file-name glob of profile files", type="string", default="*.json")


def _tolerances_path(config: pytest.Config) -> Path | None:
    option = config.getoption("llmsizer_tolerances")
    if option:
        return Path(option)
    ini = config.getini("llmsizer_tolerances")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return base / ini
    default = config.rootpath / "tolerances.yaml"
    return default if default.is_file() else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llmsizer: a pytest-llmsizer profile item")
    config.addinivalue_line("markers", "accuracy: compares a profile with the calculator")
    try:
        tolerances = load_tolerances(_tolerances_path(config))
        spec = config.getoption("llmsizer_calculator") or config.getini("llmsizer_calculator") or "builtin"
        calculator = load_calculator(spec)
    except (ConfigError, CalculatorError) as e:
        raise pytest.UsageError(str(e)) from None
    paths = [Path(p) for p in config.getini("llmsizer_profile_paths")]
    if not paths:
        paths = [config.rootpath / "profiles"]
    paths += [Path(p).resolve() for p in config.getoption("llmsizer_profiles")]
    explicit = set()
    for arg in config.args:
        candidate = Path(arg.split("::")[0])
        if not candidate.is_absolute():
            candidate = Path(config.invocation_params.dir) / candidate
        if candidate.suffix == ".json":
            explicit.add(candidate.resolve())
    config.stash[STATE_KEY] = PluginState(
        tolerances=tolerances, calculator=calculator, calculator_name=spec,
        profile_paths=[p.resolve() for p in paths], explicit_files=explicit,
        profile_glob=config.getini("llmsizer_profile_glob") or "*.json",
    )


def _claimed(state: PluginState, file_path: Path) -> bool:
    if file_path.suffix != ".json" or not fnmatch.fnmatch(file_path.name, state.profile_glob):
        return False
    resolved = file_path.resolve()
    if resolved in state.explicit_files:
        return True
    return any(resolved == p or resolved.is_relative_to(p) for p in state.profile_paths)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    state = parent.config.stash.get(STATE_KEY, None)
    if state is None or not _claimed(state, file_path):
        return None
    return ProfileFile.from_parent(parent, path=file_path)
