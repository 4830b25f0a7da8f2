"""pytest entry point (``llmsizer`` in ``pytest11``): hooks only.

pytest imports this module in every run of an environment where the package is installed, so it imports nothing but
pytest and two small modules (``settings``, ``state``); the profile model, the calculator, the catalog, pydantic,
YAML and matplotlib load only when a run has profiles to deal with (``Settings.active``) or a profile is collected.

Which JSON files are profiles: those under ``llmsizer_profile_paths`` (ini, relative to the ini file; default
``profiles/`` under the root directory) or ``--llmsizer-profiles``, and any JSON file named explicitly on the command
line, whose name matches ``llmsizer_profile_glob``. Other JSON files (package.json, test fixtures) are never claimed.

Roles, as in pytest-cov: every process collects and runs items (``collect.py``), whose one validation record travels
on the test report (``report.llmsizer``); only the controller (or a serial run) registers the ``RunRecorder``, which
gathers those records, evaluates the gate, writes the CSV / JSON records and prints the summary. So the outputs are
the same serially and under xdist, and workers never touch them.
"""

from __future__ import annotations

import fnmatch
import gc
import os
import re
import stat
from collections.abc import Generator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmsizer.collect import AccuracyItem, ProfileFile, ProfileItem
from pytest_llmsizer.errors import CalculatorError, ConfigError
from pytest_llmsizer.sanitize import clean, has_control
from pytest_llmsizer.settings import Settings, add_options, resolve_path, resolve_settings
from pytest_llmsizer.state import RESULTS_KEY, STATE_KEY, PluginState, RunResults

if TYPE_CHECKING:
    from pytest_llmsizer.calculator.result import Calculator


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _load(settings: Settings, config: pytest.Config) -> PluginState:
    """Load the tolerances file, the calculator the settings name, and the calibration and baseline of
    ``plugin_loop`` (the first heavy imports of a run)."""
    from pytest_llmsizer import plugin_loop
    from pytest_llmsizer.pluggable.loader import load_calculator
    from pytest_llmsizer.report.csv_record import check_appendable
    from pytest_llmsizer.validation.tolerances import load_tolerances

    tolerances = load_tolerances(settings.tolerances_path)
    calculator: Calculator
    if settings.calculator_cmd:
        from pytest_llmsizer.pluggable.command import command_calculator

        calculator = command_calculator(settings.calculator_cmd, settings.calculator_timeout_s)
    else:
        from pytest_llmsizer.pluggable.runner import with_timeout

        # a Python calculator runs in a thread, given the timeout (pluggable/runner.py says what that can't kill)
        calculator = with_timeout(load_calculator(settings.calculator_spec), settings.calculator_timeout_s,
                                  settings.calculator_spec)
    calculator, name = plugin_loop.configure(config, settings.calculator_spec, settings.calculator_cmd, calculator,
                                             _is_worker(config))
    if settings.calculator_cmd:
        name = settings.calculator_cmd
    if not _is_worker(config):  # refuse a bad output path early, before any test runs (exit 4)
        if settings.csv_path is not None:
            check_appendable(settings.csv_path)
        if settings.json_path is not None:
            from pytest_llmsizer.report.summary import REPORT_MARKER
            from pytest_llmsizer.safe_io import check_output

            check_output(settings.json_path, what="JSON report", force=settings.json_force,
                         markers=(REPORT_MARKER,), force_option="--llmsizer-json-force")
    return PluginState(settings=settings, tolerances=tolerances, calculator=calculator, calculator_name=name)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llmsizer: a pytest-llmsizer profile item")
    config.addinivalue_line("markers", "accuracy: compares a profile with the calculator")
    config.addinivalue_line("markers", "integrity: checks that a profile's measurement is sound")
    try:
        settings = resolve_settings(config)
        if not settings.active:
            return  # an unrelated project's run: load nothing, claim nothing
        state = _load(settings, config)
    except (ConfigError, CalculatorError) as e:
        raise pytest.UsageError(clean(str(e), 2000)) from None
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(GcFreezer(config), "llmsizer-gc")
    if _is_worker(config):
        return
    results = config.stash[RESULTS_KEY] = RunResults()
    config.pluginmanager.register(RunRecorder(config, state, results), "llmsizer-recorder")
    if config.pluginmanager.hasplugin("html"):
        from pytest_llmsizer.report.html import HtmlHooks

        config.pluginmanager.register(HtmlHooks(lambda: SimpleNamespace(
            records={r["profile_file"]: r for r in results.final_records()}, metrics=results.metrics,
            tolerances=state.tolerances, selection=state.settings.selection)), "llmsizer-html")


def _claimed(settings: Settings, file_path: Path) -> bool:
    if file_path.suffix != ".json" or not fnmatch.fnmatch(file_path.name, settings.profile_glob):
        return False

    def inside(path: Path) -> bool:
        return path in settings.explicit_files or _under(settings, path)

    # pytest hands over absolute paths; resolving symlinks (a filesystem call per file) only when that fails
    return inside(file_path) or inside(resolve_path(file_path))


_SEEN_DIRS_KEY = pytest.StashKey[dict[Path, Path]]()
"""Real path of each linked folder walked under the profile paths -> the path it was walked under."""
_SEEN_FILES_KEY = pytest.StashKey[dict[Any, Path]]()
"""(device, inode) of each profile file collected -> the path it was collected under."""


def _seen(config: pytest.Config, key: pytest.StashKey[dict[Any, Path]]) -> dict[Any, Path]:
    seen = config.stash.get(key, None)
    if seen is None:
        seen = config.stash[key] = {}
    return seen


def _under(settings: Settings, path: Path) -> bool:
    return any(path == p or path.is_relative_to(p) for p in settings.profile_paths)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Directory symlinks under the profile paths are walked once: one whose target is itself under a profile path
    (``profiles/self -> .``, ``profiles/a -> b``) is skipped, since the target is walked under its real name; one
    pointing elsewhere is walked the first time only (so a loop out there ends at once, not 40 levels down)."""
    state = config.stash.get(STATE_KEY, None)
    if state is None or not collection_path.is_symlink() or not _under(state.settings, collection_path) \
            or not collection_path.is_dir():
        return None  # not a linked folder of ours: pytest's own rules apply
    real = resolve_path(collection_path)
    if _under(state.settings, real):
        return True
    if _seen(config, _SEEN_DIRS_KEY).setdefault(real, collection_path) != collection_path:
        return True
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    state = parent.config.stash.get(STATE_KEY, None)
    if state is None or not _claimed(state.settings, file_path):
        return None
    try:
        st: os.stat_result | None = file_path.lstat()  # one system call for the common case, a plain file
    except OSError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        real = resolve_path(file_path)
        if _under(state.settings, real) and real.is_file() and real not in state.settings.explicit_files:
            return None  # a link to a profile that is collected under its own name
        try:
            st = file_path.stat()
        except OSError:
            st = None
    # the file itself, whatever path reached it (cheaper than resolving)
    key: Any = (st.st_dev, st.st_ino) if st is not None else file_path
    if _seen(parent.config, _SEEN_FILES_KEY).setdefault(key, file_path) != file_path:
        return None  # the same profile reached a second time (through a linked folder, given twice): once only
    if not has_control(str(file_path)):
        return ProfileFile.from_parent(parent, path=file_path)
    rel = file_path.relative_to(parent.config.rootpath) if file_path.is_relative_to(parent.config.rootpath) else None
    if rel is not None:
        # a file name holding escape or control characters: the node id pytest prints shows them escaped
        return ProfileFile.from_parent(parent, path=file_path, nodeid=clean(rel.as_posix(), None),
                                       name=clean(file_path.name, None))
    return ProfileFile.from_parent(parent, path=file_path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if isinstance(item, ProfileItem) and report.when == "call" and item.record is not None:
        report.llmsizer = item.record
        report.llmsizer_check = item.name
        # extras only when pytest-html writes a report (--html): installed but unused, it would still ship every
        # item's component table to the xdist controller for nothing; one table per profile, on its accuracy item
        if isinstance(item, AccuracyItem) and item.config.getoption("htmlpath", None):
            from pytest_llmsizer.report.html import item_extras

            # the failure log of a failed (or xfailed) item prints the component table: show it once
            report.extras = [*getattr(report, "extras", []), *item_extras(item.record, table=report.passed)]
    return report


PROFILE_NODE_ID = re.compile(r"\.json::(accuracy|integrity)$")
"""Node id of a profile item (``<path>.json::accuracy``), as an xdist controller sees it on reports."""


class GcFreezer:
    """Garbage collection in profile-only sessions (every process of the run).

    With thousands of profiles a session holds hundreds of thousands of long-lived objects (collected nodes,
    profiles, marks; on an xdist controller, every test report), which every full collection walks again: during the
    run, and five times over in pytest's final unraisable-exception sweep. ``gc.freeze()`` takes them out of the
    collector's sight, the standard remedy for a large long-lived heap; it changes no result and frees nothing less
    (reference counting still frees). Only in sessions where no test code of the user runs (every item, or every
    report, is a profile's), never over a freeze made by someone else, and thawed in the session's cleanup, after
    pytest's sweep.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.froze = False
        self.profile_reports_only = True  # every report this process logged came from a profile item
        # Registered while the plugins configure, before pytest's own unraisable-exception plugin registers its
        # cleanup (which runs gc.collect() five times); cleanups run last-in first-out, so this one runs after it.
        config.add_cleanup(self._thaw)

    def _freeze(self) -> None:
        if not self.froze and not gc.get_freeze_count():
            gc.freeze()
            self.froze = True

    def _thaw(self) -> None:
        if self.froze:
            self.froze = False
            gc.unfreeze()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # serial runs and xdist workers: freeze the collected tree (the objects the run creates are still swept)
        if session.items and all(isinstance(item, ProfileItem) for item in session.items):
            self._freeze()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.profile_reports_only and not PROFILE_NODE_ID.search(report.nodeid):
            self.profile_reports_only = False

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        result = yield
        results = self.config.stash.get(RESULTS_KEY, None)
        xdist_controller = results is not None and getattr(self.config.option, "dist", "no") != "no"
        if xdist_controller and results is not None and results.records and self.profile_reports_only \
                and not self.config.option.collectonly:
            # an xdist controller runs no test code: freeze the reports it gathered before the summary and the sweep
            self._freeze()
        return result


class RunRecorder:
    """Controller-side hooks (registered on the controller or a serial run only): gather the records from the
    reports, evaluate the gate, write the records, print the summary."""

    def __init__(self, config: pytest.Config, state: PluginState, results: RunResults) -> None:
        self.config = config
        self.state = state
        self.results = results

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            record = getattr(report, "llmsizer", None)
            if record is not None:
                self.results.add(getattr(report, "llmsizer_check", "accuracy"), record)
        elif report.failed and report.when in ("setup", "???") and PROFILE_NODE_ID.search(report.nodeid):
            # "???": xdist's report of a worker that crashed while running the item. Its row says "error".
            from pytest_llmsizer.validation.record import empty_record

            path, _, check = report.nodeid.rpartition("::")
            reason = clean(getattr(report, "longreprtext", "") or str(report.longrepr), 500)
            self.results.errors.setdefault(path, {})[check] = reason
            self.results.placeholders.setdefault(path, empty_record(path, self.state.calculator_name))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        # the gate is decided here, as pytest-cov does: by sessionfinish it is too late to count a failure
        result = yield
        from pytest_llmsizer.validation.metrics import compute_metrics, gate_failure_line, gate_skipped_line

        results, state = self.results, self.state
        if self.config.option.collectonly:
            if any(isinstance(item, ProfileItem) for item in session.items):
                results.gate_note = "llmsizer gate: not evaluated (--collect-only: no profile was validated)"
            return result
        if not results.records:
            return result
        records = results.final_records()
        results.metrics = compute_metrics(records, state.tolerances.gate, selection=state.settings.selection)
        if not state.gate_enabled:
            why = "--llmsizer-no-gate" if not state.settings.gate else "gate.enabled: false in tolerances.yaml"
            results.gate_note = f"gate: off ({why})"
        elif (skipped := gate_skipped_line(results.metrics)) is not None:
            results.gate_note = skipped
        else:
            results.gate_line = gate_failure_line(results.metrics)
            if results.gate_line:
                session.testsfailed += 1
        from pytest_llmsizer import plugin_loop

        plugin_loop.after_metrics(self.config, records, state.tolerances.gate, self._timestamp(), state.gate_enabled,
                                  session)
        return result

    def _timestamp(self) -> str:
        if self.results.timestamp is None:
            self.results.timestamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return self.results.timestamp

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        results, settings = self.results, self.state.settings
        if self.config.option.collectonly or not results.records:
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return  # a partial run must not be appended to the record; the previous file stays as it was
        from pytest_llmsizer.report.csv_record import append_records
        from pytest_llmsizer.report.summary import write_json_report
        from pytest_llmsizer.validation.metrics import compute_metrics

        records = results.final_records()
        if results.metrics is None:
            results.metrics = compute_metrics(records, self.state.tolerances.gate,
                                              selection=self.state.settings.selection)
        timestamp = self._timestamp()
        from pytest_llmsizer import plugin_loop

        try:
            if settings.csv_path is not None:
                append_records(settings.csv_path, records, timestamp)
            if settings.json_path is not None:
                write_json_report(settings.json_path, records, results.metrics, force=settings.json_force,
                                  gate_enabled=self.state.gate_enabled, gate_line=results.gate_line,
                                  gate_note=results.gate_note,
                                  meta={"generated": timestamp, "calculator": self.state.calculator_name,
                                        "tolerances": str(settings.tolerances_path)
                                        if settings.tolerances_path else None,
                                        **plugin_loop.json_meta(self.config)})
        except (ConfigError, OSError) as e:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"ERROR: llmsizer could not write its record: {clean(str(e), 2000)}", red=True,
                                    bold=True)
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        results, settings = self.results, self.state.settings
        if not results.records or results.metrics is None:
            if results.gate_note:
                terminalreporter.write_line(results.gate_note)
            return
        from pytest_llmsizer.report.summary import summary_lines

        terminalreporter.write_sep("=", "llmsizer accuracy")
        for line in summary_lines(results.final_records(), results.metrics, results.gate_line, results.gate_note):
            line = clean(line, 1000)  # profile paths, model ids: whatever the files hold
            if line.startswith("llmsizer accuracy gate failed"):
                terminalreporter.write_line("FAIL " + line, red=True, bold=True)
            else:
                terminalreporter.write_line(line)
        from pytest_llmsizer import plugin_loop

        plugin_loop.terminal_summary(self.config, terminalreporter, self.state.gate_enabled)
        if settings.csv_path is not None:
            terminalreporter.write_line(f"CSV record: {clean(str(settings.csv_path))}")
        if settings.json_path is not None:
            terminalreporter.write_line(f"JSON report: {clean(str(settings.json_path))}")
