"""The plugin's options and ini keys, and their resolution into one frozen ``Settings`` (command line > ini >
default), in one place.

Cheap on purpose: pytest imports the plugin in every run of an environment it is installed in, so this module (and
``plugin.py``) imports nothing heavier than pytest's own API. Nothing is loaded here: the tolerances file and the
calculator are loaded by the plugin, and only when the run has something to do with profiles (``Settings.active``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_llmsizer.errors import CalculatorError

DEFAULT_CALCULATOR_TIMEOUT_S = 60.0
DEFAULT_PROFILE_DIR = "profiles"


def add_options(parser: Any) -> None:
    """Register the ``--llmsizer-*`` options and the ``llmsizer_*`` ini keys (``parser`` is a ``pytest.Parser``)."""
    group = parser.getgroup("llmsizer", "LLM GPU-memory profiles (pytest-llmsizer)")
    group.addoption("--llmsizer-tolerances", metavar="PATH", default=None,
                    help="tolerances YAML (default: ini llmsizer_tolerances, else tolerances.yaml in the root "
                         "directory if present, else built-in defaults)")
    group.addoption("--llmsizer-calculator", metavar="SPEC", default=None,
                    help="calculator to validate: 'builtin' (default), a name registered in the entry-point "
                         "group pytest_llmsizer.calculators, or 'module:attribute'")
    group.addoption("--llmsizer-calculator-cmd", metavar="COMMAND", default=None,
                    help="external calculator program, run once per profile (JSON request on stdin, JSON answer "
                         "on stdout: protocol llmsizer-calculator/1); ini llmsizer_calculator_cmd")
    group.addoption("--llmsizer-calculator-timeout", metavar="SECONDS", default=None,
                    help="seconds an external calculator may take per profile (default: ini "
                         "llmsizer_calculator_timeout, else 60)")
    group.addoption("--llmsizer-profiles", metavar="PATH", action="append", default=[],
                    help="directory (or file) of profiles to claim, in addition to ini llmsizer_profile_paths")
    group.addoption("--llmsizer-csv", metavar="PATH", default=None,
                    help="append one CSV row per profile (the guide's columns first); ini llmsizer_csv")
    group.addoption("--llmsizer-json", metavar="PATH", default=None,
                    help="write every outcome and the aggregate metrics as JSON; ini llmsizer_json. An existing file "
                         "is replaced only if it is an llmsizer JSON report (or with --llmsizer-json-force)")
    group.addoption("--llmsizer-json-force", action="store_true", default=False,
                    help="let --llmsizer-json replace an existing regular file that is not an llmsizer report")
    group.addoption("--llmsizer-no-gate", action="store_true", default=False,
                    help="do not fail the run when aggregate accuracy misses the gate in tolerances.yaml")
    from pytest_llmsizer import plugin_loop  # cheap: its calculator and report imports wait until they are used

    plugin_loop.add_options(group, parser)  # --llmsizer-calibration, --llmsizer-baseline (closing the loop)
    parser.addini("llmsizer_tolerances", "tolerances YAML file", type="string", default="")
    parser.addini("llmsizer_calculator", "calculator spec: builtin, a registered name, or module:attribute",
                  type="string", default="builtin")
    parser.addini("llmsizer_calculator_cmd", "external calculator command (protocol llmsizer-calculator/1)",
                  type="string", default="")
    parser.addini("llmsizer_calculator_timeout", "seconds an external calculator may take per profile",
                  type="float", default=DEFAULT_CALCULATOR_TIMEOUT_S)
    parser.addini("llmsizer_profile_paths", "directories holding profile JSON files", type="paths", default=[])
    parser.addini("llmsizer_profile_glob", "file-name glob of profile files", type="string", default="*.json")
    parser.addini("llmsizer_csv", "CSV record path", type="string", default="")
    parser.addini("llmsizer_json", "JSON report path", type="string", default="")
    parser.addini("llmsizer_gate", "evaluate the accuracy gate", type="bool", default=True)


class _Config(Protocol):
    """The part of ``pytest.Config`` the resolution reads."""

    @property
    def args(self) -> list[str]: ...

    @property
    def rootpath(self) -> Path: ...

    @property
    def inipath(self) -> Path | None: ...

    @property
    def invocation_params(self) -> Any: ...

    def getoption(self, name: str) -> Any: ...

    def getini(self, name: str) -> Any: ...


@dataclass(frozen=True)
class Settings:
    """Everything the run's options and ini keys say, resolved once. Frozen: results of the run live elsewhere."""

    active: bool
    """Whether this run has anything to do with profiles. False in an unrelated project's run (no llmsizer option,
    no llmsizer ini key, no ``profiles/`` directory, no JSON file named): the plugin then loads nothing."""
    tolerances_path: Path | None = None
    calculator_spec: str = "builtin"
    calculator_cmd: str | None = None
    calculator_timeout_s: float = DEFAULT_CALCULATOR_TIMEOUT_S
    profile_paths: tuple[Path, ...] = ()
    explicit_files: frozenset[Path] = field(default_factory=frozenset)
    profile_glob: str = "*.json"
    csv_path: Path | None = None
    json_path: Path | None = None
    json_force: bool = False
    """``--llmsizer-json-force``: the JSON report may replace a regular file that is not one of our reports."""
    gate: bool = True
    """Neither ``--llmsizer-no-gate`` nor ini ``llmsizer_gate = false`` (tolerances.yaml may still turn it off)."""
    selection: bool = False
    """The run validates a chosen part of the profiles: ``-k``, ``-m``, ``--deselect``, or a path argument inside a
    profile directory (a sub-directory, a file). The gate's ``min_profiles`` is then not judged."""


def _ini_path(config: _Config, name: str) -> Path | None:
    value = config.getini(name)
    if not value:
        return None
    base = config.inipath.parent if config.inipath else config.rootpath
    return base / value


def _timeout(option: str | None, ini: Any) -> float:
    text = ini if option is None or option == "" else option
    if text in (None, ""):
        return DEFAULT_CALCULATOR_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise CalculatorError(f"calculator timeout {text!r} is not a number of seconds") from None
    if not 0 < value <= 1e6:  # a thread's join() overflows on 1e308; no calculator needs more than 11 days
        raise CalculatorError(f"calculator timeout must be a positive number of seconds, not {value!r} "
                              "(at most 1000000)")
    return value


def _explicit_json_files(config: _Config) -> frozenset[Path]:
    found = set()
    for arg in config.args:
        candidate = Path(arg.split("::")[0])
        if not candidate.is_absolute():
            candidate = Path(config.invocation_params.dir) / candidate
        if candidate.suffix == ".json":
            found.add(resolve_path(candidate))
    return frozenset(found)


def resolve_path(path: Path) -> Path:
    """``path.resolve()``, or ``path`` where it cannot be resolved (a symlink loop, named on the command line or met
    while collecting: RuntimeError before Python 3.13, OSError after); pytest then reports it as it does any
    unreadable path."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _narrowed(config: _Config, profile_paths: list[Path]) -> bool:
    """Whether the command line picks part of the profiles rather than all of them."""
    option = config.getoption
    if option("keyword") or option("markexpr") or option("deselect"):
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0])
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
        path = resolve_path(path)
        if "::" in arg or any(path != root and path.is_relative_to(root) for root in profile_paths):
            return True
    return False


def resolve_settings(config: _Config) -> Settings:
    """Command line over ini over defaults. Raises ``CalculatorError`` for contradictory calculator choices."""
    spec_option = config.getoption("llmsizer_calculator")
    cmd_option = config.getoption("llmsizer_calculator_cmd")
    if spec_option and cmd_option:
        raise CalculatorError("give either --llmsizer-calculator or --llmsizer-calculator-cmd, not both")
    spec = (spec_option or config.getini("llmsizer_calculator") or "builtin").strip() or "builtin"
    command = cmd_option or (None if spec_option else (config.getini("llmsizer_calculator_cmd") or "").strip())
    if command and not cmd_option and spec != "builtin":
        raise CalculatorError("ini sets both llmsizer_calculator and llmsizer_calculator_cmd; keep one")

    tolerances_option = config.getoption("llmsizer_tolerances")
    tolerances_ini = _ini_path(config, "llmsizer_tolerances")
    default_tolerances = config.rootpath / "tolerances.yaml"
    csv_option, json_option = config.getoption("llmsizer_csv"), config.getoption("llmsizer_json")
    ini_paths = [Path(p) for p in config.getini("llmsizer_profile_paths")]
    option_paths = [Path(p).resolve() for p in config.getoption("llmsizer_profiles")]
    default_dir = config.rootpath / DEFAULT_PROFILE_DIR
    explicit = _explicit_json_files(config)
    csv_path = Path(csv_option) if csv_option else _ini_path(config, "llmsizer_csv")
    json_path = Path(json_option) if json_option else _ini_path(config, "llmsizer_json")
    active = bool(
        spec_option or cmd_option or command or spec != "builtin" or tolerances_option or tolerances_ini
        or csv_path or json_path or ini_paths or option_paths or explicit or default_dir.is_dir()
        or config.getoption("llmsizer_no_gate") or config.getoption("llmsizer_calculator_timeout")
        or config.getoption("llmsizer_calibration") or config.getoption("llmsizer_baseline")
        or config.getini("llmsizer_calibration") or config.getini("llmsizer_baseline")
    )
    if not active:
        return Settings(active=False)
    if tolerances_option:
        tolerances_path: Path | None = Path(tolerances_option)
    else:
        tolerances_path = tolerances_ini or (default_tolerances if default_tolerances.is_file() else None)
    paths = [p.resolve() for p in (ini_paths or [default_dir]) + option_paths]
    return Settings(
        active=True,
        tolerances_path=tolerances_path,
        calculator_spec=spec,
        calculator_cmd=command or None,
        calculator_timeout_s=_timeout(config.getoption("llmsizer_calculator_timeout"),
                                      config.getini("llmsizer_calculator_timeout")),
        profile_paths=tuple(paths),
        explicit_files=explicit,
        profile_glob=config.getini("llmsizer_profile_glob") or "*.json",
        csv_path=csv_path,
        json_path=json_path,
        json_force=bool(config.getoption("llmsizer_json_force")),
        gate=bool(config.getini("llmsizer_gate")) and not config.getoption("llmsizer_no_gate"),
        selection=_narrowed(config, paths),
    )
