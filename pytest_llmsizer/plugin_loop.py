"""The plugin's side of closing the loop: ``--llmsizer-calibration`` and ``--llmsizer-baseline``.

Kept out of ``plugin.py`` (which only calls these functions from its hooks) so that the hooks stay thin: the
calibration replaces the built-in calculator's coefficients; the baseline compares this run with an earlier CSV
record, adds a "versus baseline" section to the terminal summary, the JSON report and the HTML report, and fails the
gate on a regression (``llmsizer compare``'s definition).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmsizer.errors import CalculatorError

if TYPE_CHECKING:  # plugin.py imports this module in every pytest run: the calculator, the coefficients and the
    # report modules (and matplotlib behind them) load only when a calibration or a baseline is given
    from pytest_llmsizer.calculator.coefficient_set import CoefficientSet
    from pytest_llmsizer.calculator.result import Calculator
    from pytest_llmsizer.report.baseline import Baseline, VersusBaseline

LOOP_KEY = pytest.StashKey["LoopState"]()


@dataclass
class LoopState:
    calibration: CoefficientSet | None = None
    baseline: Baseline | None = None
    versus: VersusBaseline | None = None


def add_options(group: Any, parser: pytest.Parser) -> None:
    group.addoption("--llmsizer-calibration", metavar="FILE", default=None,
                    help="coefficients fitted by `llmsizer calibrate` for the built-in calculator; ini "
                         "llmsizer_calibration")
    group.addoption("--llmsizer-baseline", metavar="CSV|DIR", default=None,
                    help="compare this run with an earlier CSV record (its latest run), or a folder of records "
                         "(the latest run; all of them make the HTML trend); a regression fails the gate; ini "
                         "llmsizer_baseline")
    parser.addini("llmsizer_calibration", "calibration file (llmsizer calibrate) for the built-in calculator",
                  type="string", default="")
    parser.addini("llmsizer_baseline", "baseline CSV record or folder of records", type="string", default="")


def _path(config: pytest.Config, option: str, ini: str) -> Path | None:
    value = config.getoption(option)
    if value:
        return Path(value)
    text = config.getini(ini)
    if not text:
        return None
    return (config.inipath.parent if config.inipath else config.rootpath) / text


def configure(config: pytest.Config, spec: str, command: str | None, calculator: Calculator,
              worker: bool) -> tuple[Calculator, str]:
    """Load the calibration and the baseline (ConfigError / CalculatorError on bad input); the calculator to use."""
    loop = LoopState()
    config.stash[LOOP_KEY] = loop
    calibration = _path(config, "llmsizer_calibration", "llmsizer_calibration")
    if calibration is not None:
        if command or spec.strip() not in ("", "builtin"):
            raise CalculatorError("--llmsizer-calibration applies to the built-in calculator only")
        from pytest_llmsizer.calculator.coefficient_set import load_calibration
        from pytest_llmsizer.pluggable.loader import calibrated, calibration_label

        loop.calibration = load_calibration(calibration)
        calculator, spec = calibrated(loop.calibration), calibration_label(loop.calibration)
    baseline = _path(config, "llmsizer_baseline", "llmsizer_baseline")
    if baseline is not None and not worker:
        from pytest_llmsizer.report.baseline import load_baseline

        loop.baseline = load_baseline(baseline)
    if (loop.calibration or loop.baseline) and not worker and config.pluginmanager.hasplugin("html"):
        from pytest_llmsizer.report.baseline import LoopHtml

        def html_state() -> tuple[str | None, VersusBaseline | None]:
            return (loop.calibration.describe() if loop.calibration else None), loop.versus

        config.pluginmanager.register(LoopHtml(html_state), "llmsizer-loop-html")
    return calculator, spec


def after_metrics(config: pytest.Config, records: Sequence[Mapping[str, Any]], gate: Any, timestamp: str,
                  gate_enabled: bool, session: pytest.Session) -> None:
    """Compare with the baseline once the metrics exist; a regression fails the run like a missed gate. ``records``
    are the run's final records, sorted by profile file (``RunResults.final_records``)."""
    loop = config.stash.get(LOOP_KEY, None)
    if loop is None or loop.baseline is None:
        return
    from pytest_llmsizer.report.baseline import versus_baseline
    from pytest_llmsizer.report.csv_record import csv_row

    rows = [csv_row(r, timestamp) for r in records]
    loop.versus = versus_baseline(loop.baseline, rows, timestamp, gate)
    if gate_enabled and loop.versus.comparison.regressed:
        session.testsfailed += 1


def json_meta(config: pytest.Config) -> dict[str, Any]:
    loop = config.stash.get(LOOP_KEY, None)
    if loop is None:
        return {}
    meta: dict[str, Any] = {}
    if loop.calibration is not None:
        meta["calibration"] = {"name": loop.calibration.name, "file": loop.calibration.source,
                               **{k: loop.calibration.meta.get(k) for k in ("created", "scope", "base")}}
    if loop.versus is not None:
        meta["baseline"] = loop.versus.to_json()
    return meta


def terminal_summary(config: pytest.Config, reporter: Any, gate_enabled: bool) -> None:
    loop = config.stash.get(LOOP_KEY, None)
    if loop is None:
        return
    if loop.calibration is not None:
        reporter.write_line(f"calibration: {loop.calibration.describe()}")
    if loop.versus is None:
        return
    from pytest_llmsizer.report.baseline import regression_line, summary_lines

    reporter.write_sep("-", "versus baseline")
    for line in summary_lines(loop.versus):
        if line == regression_line(loop.versus):
            prefix = "FAIL " if gate_enabled else ""
            reporter.write_line(prefix + line, red=gate_enabled, bold=gate_enabled)
        else:
            reporter.write_line(line)
