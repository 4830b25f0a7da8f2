"""pytest entry point (``llmsizer`` in ``pytest11``): hooks only.

Which JSON files are profiles: those under ``llmsizer_profile_paths`` (ini, relative to the ini file; default
``profiles/`` under the root directory) or ``--llmsizer-profiles``, and any JSON file named explicitly on the command
line, whose name matches ``llmsizer_profile_glob``. Other JSON files (package.json, test fixtures) are never claimed.

Results travel to the controller on test reports (``report.llmsizer``, plain builtins), so the CSV, the JSON report,
the summary and the gate are the same serially and under xdist; only the controller writes files.
"""

from __future__ import annotations

import fnmatch
import gc
import re
from collections.abc import Generator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_llmsizer import plugin_loop
from pytest_llmsizer.collect import AccuracyItem, ProfileFile, ProfileItem
from pytest_llmsizer.errors import CalculatorError, ConfigError
from pytest_llmsizer.pluggable.loader import load_calculator
from pytest_llmsizer.report.csv_record import append_records, check_appendable
from pytest_llmsizer.report.summary import summary_lines, write_json_report
from pytest_llmsizer.state import STATE_KEY, PluginState
from pytest_llmsizer.validation.metrics import compute_metrics, gate_failure_line
from pytest_llmsizer.validation.tolerances import load_tolerances


def pytest_addoption(parser: pytest.Parser) -> None:
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
                    help="write every outcome and the aggregate metrics as JSON; ini llmsizer_json")
    group.addoption("--llmsizer-no-gate", action="store_true", default=False,
                    help="do not fail the run when aggregate accuracy misses the gate in tolerances.yaml")
    plugin_loop.add_options(group, parser)
    parser.addini("llmsizer_tolerances", "tolerances YAML file", type="string", default="")
    parser.addini("llmsizer_calculator", "calculator spec: builtin, a registered name, or module:attribute",
                  type="string", default="builtin")
    parser.addini("llmsizer_calculator_cmd", "external calculator command (protocol llmsizer-calculator/1)",
                  type="string", default="")
    parser.addini("llmsizer_calculator_timeout", "seconds an external calculator may take per profile",
                  type="string", default="60")
    parser.addini("llmsizer_profile_paths", "directories holding profile JSON files", type="paths", default=[])
    parser.addini("llmsizer_profile_glob", "file-name glob of profile files", type="string", default="*.json")
    parser.addini("llmsizer_csv", "CSV record path", type="string", default="")
    parser.addini("llmsizer_json", "JSON report path", type="string", default="")
    parser.addini("llmsizer_gate", "evaluate the accuracy gate", type="bool", default=True)


def _ini_path(config: pytest.Config, name: str) -> Path | None:
    value = config.getini(name)
    if not value:
        return None
    base = config.inipath.parent if config.inipath else config.rootpath
    return base / value


def _tolerances_path(config: pytest.Config) -> Path | None:
    option = config.getoption("llmsizer_tolerances")
    if option:
        return Path(option)
    ini = _ini_path(config, "llmsizer_tolerances")
    if ini:
        return ini
    default = config.rootpath / "tolerances.yaml"
    return default if default.is_file() else None


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llmsizer: a pytest-llmsizer profile item")
    config.addinivalue_line("markers", "accuracy: compares a profile with the calculator")
    config.addinivalue_line("markers", "integrity: checks that a profile's measurement is sound")
    tolerances_path = _tolerances_path(config)
    csv_option = config.getoption("llmsizer_csv")
    json_option = config.getoption("llmsizer_json")
    csv_path = Path(csv_option) if csv_option else _ini_path(config, "llmsizer_csv")
    json_path = Path(json_option) if json_option else _ini_path(config, "llmsizer_json")
    try:
        tolerances = load_tolerances(tolerances_path)
        spec_option = config.getoption("llmsizer_calculator")
        cmd_option = config.getoption("llmsizer_calculator_cmd")
        if spec_option and cmd_option:
            raise CalculatorError("give either --llmsizer-calculator or --llmsizer-calculator-cmd, not both")
        spec = spec_option or config.getini("llmsizer_calculator") or "builtin"
        command = cmd_option or (None if spec_option else config.getini("llmsizer_calculator_cmd").strip())
        if command and not cmd_option and spec.strip() not in ("", "builtin"):
            raise CalculatorError("ini sets both llmsizer_calculator and llmsizer_calculator_cmd; keep one")
        if command:
            from pytest_llmsizer.pluggable.command import command_calculator

            timeout_text = config.getoption("llmsizer_calculator_timeout") or \
                config.getini("llmsizer_calculator_timeout") or "60"
            try:
                timeout_s = float(timeout_text)
            except ValueError:
                raise CalculatorError(f"calculator timeout {timeout_text!r} is not a number of seconds") from None
            calculator = command_calculator(command, timeout_s)
            spec = command
        else:
            calculator = load_calculator(spec)
        calculator, spec = plugin_loop.configure(config, spec, command, calculator, _is_worker(config))
        if csv_path is not None and not _is_worker(config):
            check_appendable(csv_path)  # refuse early, before any test runs
    except (ConfigError, CalculatorError) as e:
        raise pytest.UsageError(str(e)) from None
    paths = [Path(p) for p in config.getini("llmsizer_profile_paths")] or [config.rootpath / "profiles"]
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
        tolerances_path=str(tolerances_path) if tolerances_path else None,
        profile_paths=[p.resolve() for p in paths], explicit_files=explicit,
        profile_glob=config.getini("llmsizer_profile_glob") or "*.json",
        csv_path=csv_path, json_path=json_path,
        gate_enabled=tolerances.gate.enabled and config.getini("llmsizer_gate")
        and not config.getoption("llmsizer_no_gate"),
    )
    config.pluginmanager.register(RunRecorder(config, config.stash[STATE_KEY]), "llmsizer-recorder")
    if config.pluginmanager.hasplugin("html"):
        from pytest_llmsizer.report.html import HtmlHooks

        config.pluginmanager.register(HtmlHooks(lambda: config.stash[STATE_KEY]), "llmsizer-html")


def _claimed(state: PluginState, file_path: Path) -> bool:
    if file_path.suffix != ".json" or not fnmatch.fnmatch(file_path.name, state.profile_glob):
        return False
    def inside(path: Path) -> bool:
        return path in state.explicit_files or any(path == p or path.is_relative_to(p) for p in state.profile_paths)

    # pytest hands over absolute paths; resolving symlinks (a filesystem call per file) only when that fails
    return inside(file_path) or inside(file_path.resolve())


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    state = parent.config.stash.get(STATE_KEY, None)
    if state is None or not _claimed(state, file_path):
        return None
    return ProfileFile.from_parent(parent, path=file_path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if isinstance(item, ProfileItem) and report.when == "call" and item.record is not None:
        record = dict(item.record)
        record["known_failure"] = item.known_failure
        key = "llmsizer" if isinstance(item, AccuracyItem) else "llmsizer_integrity"
        setattr(report, key, record)
        # extras only when pytest-html writes a report (--html): installed but unused, it would still ship every
        # item's component table to the xdist controller for nothing
        if isinstance(item, AccuracyItem) and item.config.getoption("htmlpath", None):
            from pytest_llmsizer.report.html import item_extras

            report.extras = [*getattr(report, "extras", []), *item_extras(record)]
    return report


def _run_timestamp(state: PluginState) -> str:
    """One timestamp per run (the CSV rows and the baseline comparison share it)."""
    if state.run_timestamp is None:
        state.run_timestamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return state.run_timestamp


def _verdict(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


class RunRecorder:
    """Controller-side hooks: gather records from reports, evaluate the gate, write records, print the summary.

    Registered once per process in ``pytest_configure``; on xdist workers it stays idle (workers only attach
    records to their reports, which xdist forwards to the controller's ``pytest_runtest_logreport``).
    """

    PROFILE_NODE_ID = re.compile(r"\.json::(accuracy|integrity)$")
    """Node id of a profile item (``<path>.json::accuracy``), as an xdist controller sees it on reports."""

    def __init__(self, config: pytest.Config, state: PluginState) -> None:
        self.config = config
        self.state = state
        self.active = not _is_worker(config)
        self.froze_gc = False
        self.profile_reports_only = True  # every report this process logged came from a profile item
        # Registered while the plugins configure, before pytest's own unraisable-exception plugin registers its
        # cleanup (which runs gc.collect() five times); cleanups run last-in first-out, so this one runs after it.
        config.add_cleanup(self._thaw_gc)

    # Garbage collection. With thousands of profiles a session holds hundreds of thousands of long-lived objects
    # (collected nodes, profiles, marks; on an xdist controller, every test report), which every full collection
    # walks again: during the run, and five times over in pytest's final unraisable-exception sweep. gc.freeze()
    # takes them out of the collector's sight, the standard remedy for a large long-lived heap; it changes no
    # result and frees nothing less (reference counting still frees). Only in sessions where no test code of the
    # user runs (every item, or every report, is a profile's), never over a freeze made by someone else, and
    # thawed in the session's cleanup, after pytest's sweep.

    def _freeze_gc(self) -> None:
        if not self.froze_gc and not gc.get_freeze_count():
            gc.freeze()
            self.froze_gc = True

    def _thaw_gc(self) -> None:
        if self.froze_gc:
            self.froze_gc = False
            gc.unfreeze()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # serial runs and xdist workers: freeze the collected tree (the objects the run creates are still swept)
        if session.items and all(isinstance(item, ProfileItem) for item in session.items):
            self._freeze_gc()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.profile_reports_only and not self.PROFILE_NODE_ID.search(report.nodeid):
            self.profile_reports_only = False
        if not self.active or report.when != "call":
            return
        for key in ("llmsizer", "llmsizer_integrity"):
            data = getattr(report, key, None)
            if data is None:
                continue
            record = self.state.records.setdefault(data["profile_file"], {"profile_file": data["profile_file"]})
            if key == "llmsizer":
                record.update(data)
                record["node_id"] = report.nodeid
                record["accuracy_verdict"] = _verdict(report)
            else:
                record.update({k: v for k, v in data.items() if k.startswith("integrity_")})
                record["integrity_verdict"] = _verdict(report)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        # the gate is decided here, as pytest-cov does: by sessionfinish it is too late to count a failure
        result = yield
        state = self.state
        xdist_controller = self.active and getattr(self.config.option, "dist", "no") != "no"
        if xdist_controller and state.records and self.profile_reports_only and not self.config.option.collectonly:
            # an xdist controller runs no test code: freeze the reports it gathered before the summary and the sweep
            self._freeze_gc()
        if not self.active or self.config.option.collectonly or not state.records:
            return result
        state.metrics = compute_metrics(list(state.records.values()), state.tolerances.gate)
        if state.gate_enabled:
            state.gate_line = gate_failure_line(state.metrics)
            if state.gate_line:
                session.testsfailed += 1
        plugin_loop.after_metrics(self.config, list(state.records.values()), state.tolerances.gate,
                                  _run_timestamp(state), state.gate_enabled, session)
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = self.state
        if not self.active or self.config.option.collectonly or not state.records:
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return  # a partial run must not be appended to the record; the previous file stays as it was
        if state.metrics is None:
            state.metrics = compute_metrics(list(state.records.values()), state.tolerances.gate)
        timestamp = _run_timestamp(state)
        try:
            if state.csv_path is not None:
                append_records(state.csv_path, list(state.records.values()), timestamp)
            if state.json_path is not None:
                write_json_report(state.json_path, state.records, state.metrics, gate_enabled=state.gate_enabled,
                                  gate_line=state.gate_line,
                                  meta={"generated": timestamp, "calculator": state.calculator_name,
                                        "tolerances": state.tolerances_path, **plugin_loop.json_meta(self.config)})
        except (ConfigError, OSError) as e:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"ERROR: llmsizer could not write its record: {e}", red=True, bold=True)
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        state = self.state
        if not self.active or not state.records or state.metrics is None:
            return
        terminalreporter.write_sep("=", "llmsizer accuracy")
        gate_line = state.gate_line if state.gate_enabled else None
        for line in summary_lines(state.records, state.metrics, gate_line, state.gate_enabled):
            if line.startswith("llmsizer accuracy gate failed"):
                terminalreporter.write_line("FAIL " + line, red=True, bold=True)
            else:
                terminalreporter.write_line(line)
        plugin_loop.terminal_summary(self.config, terminalreporter, state.gate_enabled)
        if state.csv_path is not None:
            terminalreporter.write_line(f"CSV record: {state.csv_path}")
        if state.json_path is not None:
            terminalreporter.write_line(f"JSON report: {state.json_path}")


