"""HTML report builders: component table, extra result columns, summary and plots.

All records here are hand-made and synthetic (round numbers, made-up model ids); they only have the record shape.
"""

from __future__ import annotations

import base64
import html
import json
import re
from types import SimpleNamespace

import pytest

from pytest_llmsizer.report import plots
from pytest_llmsizer.report.html import COLUMNS, HtmlHooks, component_table_html, item_extras, summary_html
from pytest_llmsizer.validation.metrics import compute_metrics
from pytest_llmsizer.validation.tolerances import DEFAULT_TOLERANCES, GateConfig, Tolerance

GiB = 2**30
EVIL = "<script>alert(1)</script>"


def _row(quantity: str, profiled: float, calculated: float | None, *, tol: Tolerance | None = None,
         gating: bool = True, provenance: str = "engine") -> dict:
    tol = tol or DEFAULT_TOLERANCES.defaults.get(quantity, Tolerance())
    allowed = tol.allowed(quantity, profiled)
    diff = None if calculated is None else profiled - calculated
    pct = None if diff is None else diff / profiled * 100
    return {"quantity": quantity, "profiled": profiled, "calculated": calculated, "difference": diff, "percent": pct,
            "band": None if pct is None else "Good", "allowed": allowed,
            "passed": diff is None or abs(diff) <= allowed, "gating": gating and calculated is not None,
            "provenance": provenance, "rank": None}


def _record(i: int = 0, *, model_id: str = "synthetic/model-a", params: float | None = 8e9, gpus: int | None = 1,
            weights_calc: float = 15.0, pct: float | None = -1.5) -> dict:
    """A synthetic record: weights 16 GiB profiled, KV 20 GiB, 100k tokens."""
    return {
        "profile_file": f"profiles/synthetic-{i}.json", "model_id": model_id, "model_params": params,
        "gpu_type": "H100-80GB", "gpu_count": gpus, "tp_size": gpus, "calculator": "builtin",
        "rows": [
            _row("weights", 16 * GiB, weights_calc * GiB),
            _row("kv_cache", 20 * GiB, (19.5 + 0.1 * i) * GiB),
            _row("activations", 1 * GiB, None),
            _row("cuda_graphs", 0.5 * GiB, 0.4 * GiB, gating=False, provenance="derived"),
            _row("kv_cache_tokens", 100_000, 98_000 + 100 * i),
        ],
        "assumptions": ["block size 16"], "recommendations": ["use fp8 KV cache"],
        "primary_quantity": "weights", "primary_error_pct": pct, "match_quality": "Good", "error": None,
        "accuracy_verdict": "passed",
    }


def _records() -> list[dict]:
    return [
        _record(0, params=8e9, gpus=1, weights_calc=15.9, pct=0.6),
        _record(1, params=14e9, gpus=2, weights_calc=14.0, pct=12.5),  # outside the 3% weights band
        _record(2, params=70e9, gpus=4, weights_calc=16.2, pct=-1.25),
        _record(3, params=None, gpus=None, weights_calc=16.0, pct=0.0),
    ]


# --- component table / extras ----------------------------------------------------------------------------------------


def test_component_table_escapes_record_strings():
    record = _record(model_id=EVIL)
    record["profile_file"] = "profiles/<b>x</b>.json"
    record["assumptions"] = ["<img src=x onerror=alert(2)>"]
    record["recommendations"] = ["a & b"]
    record["rows"][0]["quantity"] = "<i>weights</i>"
    out = component_table_html(record)
    assert "<script>" not in out and "<img" not in out and "<b>x" not in out and "<i>" not in out
    assert html.escape(EVIL) in out
    assert "&lt;img src=x onerror=alert(2)&gt;" in out
    assert "a &amp; b" in out


def test_component_table_units_and_status():
    out = component_table_html(_record(weights_calc=15.0))
    assert "16.000 GiB" in out and "15.000 GiB" in out and "+1.000 GiB" in out and "+6.25%" in out
    assert "100,000 tokens" in out
    assert "FAIL" in out  # weights 6.25% off against a 3% tolerance
    assert "shown only (derived)" in out and "shown only (not calculated)" in out
    assert "use fp8 KV cache" in out and "block size 16" in out
    assert out.count("<tr>") == 1 + 5  # header + one row per comparison
    for header in ("component", "profiled", "calculated", "difference", "percent", "band", "tolerance", "status"):
        assert f"<th>{header}</th>" in out


def test_item_extras_is_one_small_html_extra():
    pytest.importorskip("pytest_html")
    extras = item_extras(_record(model_id=EVIL))
    assert len(extras) == 1 and extras[0]["format_type"] == "html"
    assert "<script>" not in extras[0]["content"]
    assert len(extras[0]["content"]) < 5000
    assert item_extras(None) == []


# --- result table columns --------------------------------------------------------------------------------------------


def _header_and_row(report: object) -> tuple[list[str], list[str]]:
    hooks = HtmlHooks(lambda: None)
    header = ['<th class="sortable result-sort" data-column-type="result">Result</th>',
              '<th class="sortable" data-column-type="testId">Test</th>',
              '<th class="sortable" data-column-type="duration">Duration</th>', "<th>Links</th>"]
    row = ['<td class="col-result">Passed</td>', '<td class="col-testId">t</td>',
           '<td class="col-duration">1 ms</td>', '<td class="col-links"></td>']
    hooks.pytest_html_results_table_header(header)
    hooks.pytest_html_results_table_row(report, row)
    return header, row


@pytest.mark.parametrize("report", [
    SimpleNamespace(when="call", llmsizer=_record(model_id=EVIL, pct=-1.5)),
    SimpleNamespace(when="setup"),
    SimpleNamespace(when="call", llmsizer=None),
    SimpleNamespace(when="call", llmsizer={"profile_file": "p.json"}),
], ids=["record", "no-attribute", "none", "sparse-record"])
def test_one_cell_per_header(report):
    header, row = _header_and_row(report)
    assert len(header) == len(row) == 4 + len(COLUMNS)
    for column, _ in COLUMNS:  # the same position in header and row
        index = next(i for i, h in enumerate(header) if f'data-column-type="{column}"' in h)
        assert f'class="col-{column}"' in row[index]
    assert all("\n" not in cell for cell in row)


def test_row_cells_values_escaped_and_sortable():
    _, row = _header_and_row(SimpleNamespace(llmsizer=_record(model_id=EVIL, gpus=2, pct=-1.5)))
    text = "".join(row)
    assert "<script>" not in text and html.escape(EVIL) in text
    assert "-1.50</td>" in text and "2&times; H100-80GB" in text and ">Good</td>" in text

    def sort_value(pct: float) -> str:
        _, cells = _header_and_row(SimpleNamespace(llmsizer=_record(pct=pct)))
        cell = next(c for c in cells if "col-llmsizer_error" in c)
        return re.search(r"<td.*?>(.*?)</td>", cell).group(1)  # what pytest-html sorts on

    values = [-30.0, -2.5, 0.0, 1.25, 9.0, 10.0, 120.0]
    assert sorted(values, key=sort_value) == values


# --- plots -----------------------------------------------------------------------------------------------------------

PLOTTERS = {
    "calculated_vs_profiled": lambda recs: plots.calculated_vs_profiled(recs, DEFAULT_TOLERANCES.defaults),
    "error_distribution": plots.error_distribution,
    "error_by_model_size": plots.error_by_model_size,
    "error_by_gpu_count": plots.error_by_gpu_count,
}


@pytest.mark.parametrize("name", PLOTTERS)
def test_plot_is_deterministic_svg(name):
    first, second = PLOTTERS[name](_records()), PLOTTERS[name](_records())
    assert first is not None and first.lstrip().startswith("<?xml") and "<svg" in first
    assert first == second
    assert "<dc:date>" not in first
    assert len(first) < 200_000


@pytest.mark.parametrize("name", PLOTTERS)
def test_plot_none_without_data(name):
    no_gating = _record()
    for row in no_gating["rows"]:
        row["gating"] = False
    no_gating["primary_error_pct"] = None
    assert PLOTTERS[name]([]) is None
    assert PLOTTERS[name]([no_gating]) is None


def test_calculated_vs_profiled_draws_band_and_marks_outliers():
    svg = plots.calculated_vs_profiled(_records(), DEFAULT_TOLERANCES.defaults)
    for quantity in ("weights", "kv_cache"):  # memory components with gating data
        assert f'id="band-{quantity}"' in svg  # filled band polygon
        assert f'id="band-upper-{quantity}"' in svg and f'id="band-lower-{quantity}"' in svg
        assert f'id="identity-{quantity}"' in svg
    assert 'id="outside-weights"' in svg  # 14 vs 16 GiB is outside the 3% band
    assert 'id="outside-kv_cache"' not in svg  # 19.5-19.8 vs 20 GiB is inside 5%
    # derived (non-gating), not calculated, and capacity quantities get no panel
    for quantity in ("cuda_graphs", "activations", "kv_cache_tokens"):
        assert f'id="band-{quantity}"' not in svg
    assert "GiB" in svg


def test_band_edges_follow_max_of_abs_and_rel():
    xs, lower, upper = plots._band_edges(Tolerance(rel=0.25, abs_gib=0.5), 4.0)
    assert xs == [0.0, 2.0, 4.0]  # the corner where 25% of x overtakes 0.5 GiB
    assert upper == [0.5, 2.5, 5.0] and lower == [-0.5, 1.5, 3.0]


def test_model_size_groups():
    assert [plots.size_group(p) for p in (7e9, 10e9, 40e9, 40.1e9, None)] == [
        "small (< 10B)", "medium (10-40B)", "medium (10-40B)", "large (> 40B)", "unknown size"]
    svg = plots.error_by_model_size(_records())
    for label in ("small (&lt; 10B)", "medium (10-40B)", "large (&gt; 40B)", "unknown size"):
        assert label in svg


# --- summary ---------------------------------------------------------------------------------------------------------


def _svg_images(text: str) -> list[str]:
    return [base64.b64decode(m).decode() for m in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', text)]


def test_summary_section_with_metrics_worst_and_plots():
    records = _records()
    records[1]["profile_file"] = "profiles/<script>.json"
    state = SimpleNamespace(records={r["profile_file"]: r for r in records}, metrics=None,
                            tolerances=DEFAULT_TOLERANCES)
    prefix: list[str] = []
    HtmlHooks(lambda: state).pytest_html_results_summary(prefix, [], [], session=None)
    (section,) = prefix
    assert "LLM sizer accuracy" in section and "<script>" not in section
    assert "profiles/&lt;script&gt;.json" in section  # a worst profile
    assert "mean |total error|" in section and "Good: 4" in section
    assert len(_svg_images(section)) == 4


def test_summary_without_records_or_metrics():
    assert "no accuracy metrics" in summary_html([], None, None)
    metrics = compute_metrics(_records(), GateConfig())
    out = summary_html(_records(), metrics, DEFAULT_TOLERANCES.defaults, plots=False)
    assert "<img" not in out and "weights accuracy" in out


# --- end to end through pytest-html ----------------------------------------------------------------------------------

CONFTEST = f"""
import pytest
from types import SimpleNamespace
from pytest_llmsizer.report.html import HtmlHooks, item_extras
from pytest_llmsizer.validation.tolerances import DEFAULT_TOLERANCES

RECORD = {_record(model_id=EVIL, pct=-1.5)!r}
STATE = SimpleNamespace(records={{RECORD["profile_file"]: RECORD}}, metrics=None, tolerances=DEFAULT_TOLERANCES)

def pytest_configure(config):
    config.pluginmanager.register(HtmlHooks(lambda: STATE), "llmsizer-html-test")

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if item.name == "test_with_record" and report.when == "call":
        report.llmsizer = RECORD
        report.extras = getattr(report, "extras", []) + item_extras(RECORD)
"""


def test_pytest_html_report(pytester: pytest.Pytester):
    pytest.importorskip("pytest_html")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("def test_with_record(): pass\ndef test_plain(): pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:llmsizer", "--html=report.html",
                                "--self-contained-html")
    result.assert_outcomes(passed=2)
    page = (pytester.path / "report.html").read_text(encoding="utf-8")
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))
    tests = [t for runs in blob["tests"].values() for t in runs]
    with_record = next(t for t in tests if t["testId"].endswith("test_with_record"))
    assert with_record["llmsizer_error"].endswith("-1.50")
    assert with_record["llmsizer_model"] == html.escape(EVIL)
    assert "<script>alert" not in json.dumps(blob)
    for t in tests:
        assert len(t["resultsTableRow"]) == 4 + len(COLUMNS)
    assert "LLM sizer accuracy" in page
