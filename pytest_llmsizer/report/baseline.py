"""The plugin's "versus baseline" section: this run compared with an earlier CSV record (``--llmsizer-baseline``).

The baseline is a CSV record (its latest run is the base) or a folder of them (the latest run of all is the base,
and every run, plus this one, makes the trend embedded in the HTML report). This run's records become CSV rows the
same way ``--llmsizer-csv`` writes them, so ``llmsizer compare BASE.csv NEW.csv`` on the written record says the
same thing. Pure apart from :func:`load_baseline`, which reads the files.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmsizer.errors import ConfigError, LlmsizerError
from pytest_llmsizer.report.compare import DEFAULT_MAX_REGRESSION, Comparison, compare_runs, metric_table
from pytest_llmsizer.report.runs import Run, load_runs
from pytest_llmsizer.validation.tolerances import GateConfig

if TYPE_CHECKING:  # matplotlib loads only when a trend is drawn
    from pytest_llmsizer.report.trend import TrendPoint


@dataclass(frozen=True)
class Baseline:
    path: str
    base: Run
    runs: list[Run]
    """Every earlier run found (for the trend); only when the baseline is a folder."""
    skipped: list[str] = field(default_factory=list)
    """CSV files in the folder that are not records (named in the summary)."""


@dataclass
class VersusBaseline:
    baseline: Baseline
    comparison: Comparison
    trend: list[TrendPoint]

    def to_json(self) -> dict[str, Any]:
        return {"path": self.baseline.path, **self.comparison.to_json()}


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline CSV record or folder; ConfigError naming the path when there is no usable run."""
    p = Path(path)
    try:
        if p.is_dir():
            files = sorted(f for f in p.rglob("*.csv") if f.is_file())
            if not files:
                raise ConfigError(f"--llmsizer-baseline {p}: the folder holds no *.csv record")
            found, skipped = [], []
            for f in files:
                try:
                    found += load_runs(f)
                except LlmsizerError as e:
                    skipped.append(f"{f}: {str(e).split(': ', 2)[1]}")
            if not found:
                raise ConfigError(f"--llmsizer-baseline {p}: no CSV record in the folder ({'; '.join(skipped)})")
            floor = datetime.min.replace(tzinfo=timezone.utc)
            runs = sorted(found, key=lambda r: r.when or floor)
            return Baseline(str(p), runs[-1], runs, skipped)
        return Baseline(str(p), load_runs(p)[-1], [])
    except ConfigError:
        raise
    except LlmsizerError as e:
        raise ConfigError(f"--llmsizer-baseline: {e}") from None


def versus_baseline(baseline: Baseline, rows: list[dict[str, Any]], timestamp: str, gate: GateConfig,
                    max_regression: float = DEFAULT_MAX_REGRESSION) -> VersusBaseline:
    """Compare this run (CSV rows of its records) with the baseline."""
    from pytest_llmsizer.report.trend import trend

    current = Run("this run", timestamp, rows)
    comparison = compare_runs(baseline.base, current, gate, max_regression=max_regression)
    points = trend([*baseline.runs, current], gate) if baseline.runs else []
    return VersusBaseline(baseline, comparison, points)


def summary_lines(v: VersusBaseline) -> list[str]:
    """The terminal section: metric deltas, band changes, new / missing profiles, and the verdict."""
    c = v.comparison
    lines = [f"base: {c.base}", *(f"skipped (not a record): {s}" for s in v.baseline.skipped), *metric_table(c)]
    if c.worse:
        lines.append(f"band worse: {len(c.worse)} ({sum(w.gated for w in c.worse)} gated)")
        lines += [f"  {w.profile}: {w.base_band} -> {w.new_band or 'not compared'}"
                  + ("" if w.gated else " (known failure)") for w in c.worse]
    if c.better:
        lines.append(f"band better: {len(c.better)}")
        lines += [f"  {b.profile}: {b.base_band or 'not compared'} -> {b.new_band}" for b in c.better]
    if c.new_profiles or c.missing_profiles:
        lines.append(f"new profiles: {len(c.new_profiles)}, missing profiles: {len(c.missing_profiles)}")
    if c.regressed:
        lines.append(regression_line(v))
    else:
        lines.append("versus baseline: no regression")
    return lines


def regression_line(v: VersusBaseline) -> str:
    return f"llmsizer baseline regression ({len(v.comparison.regressions)}): " + "; ".join(v.comparison.regressions)


def _e(value: Any) -> str:
    return html.escape(str(value))


def html_section(v: VersusBaseline) -> str:
    """The HTML report's "Versus baseline" section, with the trend plot when the baseline is a folder."""
    c = v.comparison
    rows = "".join(
        f"<tr><td>{_e(d.name)}</td><td>{_e(d.target)}</td><td>{_e('-' if d.base is None else f'{d.base:.2f}')}</td>"
        f"<td>{_e('-' if d.new is None else f'{d.new:.2f}')}</td>"
        f"<td>{_e('-' if d.delta is None else f'{d.delta:+.2f}')}</td>"
        f"<td>{'REGRESSION' if d.regressed else _e(d.change)}</td></tr>" for d in c.metrics)
    parts = ['<div class="llmsizer-baseline"><h2>Versus baseline</h2>', f"<p>base: {_e(c.base)}</p>",
             "<table><thead><tr><th>metric</th><th>target</th><th>base</th><th>this run</th><th>delta</th>"
             f"<th>change</th></tr></thead><tbody>{rows}</tbody></table>"]
    for title, changes in (("Band worse", c.worse), ("Band better", c.better)):
        if changes:
            items = "".join(f"<li>{_e(ch.profile)}: {_e(ch.base_band)} &rarr; {_e(ch.new_band)}"
                            f"{'' if ch.gated else ' (known failure)'}</li>" for ch in changes)
            parts.append(f"<p><strong>{title} ({len(changes)})</strong></p><ul>{items}</ul>")
    for title, names in (("New profiles", c.new_profiles), ("Missing profiles", c.missing_profiles)):
        if names:
            parts.append(f"<p><strong>{title} ({len(names)})</strong></p><ul>"
                         + "".join(f"<li>{_e(n)}</li>" for n in names) + "</ul>")
    verdict = ("<p><strong>REGRESSION:</strong> " + "; ".join(_e(r) for r in c.regressions) + "</p>"
               if c.regressed else "<p>No regression.</p>")
    parts.append(verdict)
    if v.trend:
        from pytest_llmsizer.report.trend import trend_svg

        svg = trend_svg(v.trend)
        if svg:
            data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
            parts.append(f'<h3>Trend ({len(v.trend)} runs)</h3><div class="llmsizer-plot"><img alt="success metrics '
                         f'over runs" style="max-width:100%" src="data:image/svg+xml;base64,{data}"></div>')
    parts.append("</div>")
    return "".join(parts)


class LoopHtml:
    """pytest-html hook: names the calibration in use and appends the "Versus baseline" section.

    Registered only with --html and a calibration or a baseline; ``get()`` returns ``(calibration description or
    None, VersusBaseline or None)`` when the summary is built."""

    def __init__(self, get: Any) -> None:
        self._get = get

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: Any) -> None:
        calibration, versus = self._get()
        if calibration:
            prefix.append(f'<p class="llmsizer-calibration"><strong>Calibration:</strong> {_e(calibration)}</p>')
        if versus is not None:
            prefix.append(html_section(versus))
