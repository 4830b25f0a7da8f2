"""``benchmarks/accuracy.py``'s CUDA-graph figures: signed GiB error, the percent floor, the noise floor, and the
held-out CUDA < 0.17 figure computed from the calculator's estimates (not written down anywhere)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import accuracy  # noqa: E402
from vllm_records import DEFAULT_DATA, request_for, used_for_fitting, vme_cases  # noqa: E402

from pytest_llmsizer.calculator import estimate  # noqa: E402
from pytest_llmsizer.calculator.versions import parse_vllm_version  # noqa: E402
from pytest_llmsizer.units import GiB  # noqa: E402


def _row(measured: float | None, calculated: float | None, **key: object) -> dict:
    """A SYNTHETIC accuracy row (only the fields the graph statistics read)."""
    return {"cuda_graphs_measured": measured, "cuda_graphs_calculated": calculated, **key}


def test_graph_errors_are_signed_gib_and_percent_only_above_the_floor():
    rows = [_row(-0.8, -0.6), _row(0.1, 0.4), _row(1.0, 0.7), _row(0.5, 0.5), _row(None, 0.3), _row(0.2, None)]
    err = accuracy.graph_errors(rows)
    assert err is not None
    diffs = [-0.2, -0.3, 0.3, 0.0]
    assert err["n"] == 4
    assert err["median_abs_gib"] == pytest.approx(statistics.median(abs(d) for d in diffs))
    assert err["p90_abs_gib"] == pytest.approx(accuracy.percentile([abs(d) for d in diffs], 0.9))
    assert err["bias_gib"] == pytest.approx(statistics.median(diffs))
    # |0.1| is below the 0.25 GiB floor: three percents, 25%, 30% and 0%
    assert err["n_pct"] == 3 and err["median_pct"] == pytest.approx(25.0)
    assert accuracy.graph_errors([_row(None, 1.0)]) is None


def test_noise_floor_is_the_spread_among_identical_settings():
    same = {"model": "m", "gpu": "g", "minor_version": "0.11"}
    rows = [_row(0.4, 0, **same), _row(-0.3, 0, **same), _row(0.5, 0, **same),
            _row(1.0, 0, **{**same, "minor_version": "0.13"}), _row(1.1, 0, **{**same, "minor_version": "0.13"}),
            _row(9.0, 0, **{**same, "model": "alone"})]
    noise = accuracy.noise_floor(rows)
    assert noise is not None and noise["groups"] == 2
    assert noise["max_gib"] == pytest.approx(0.8) and noise["median_gib"] == pytest.approx(0.45)
    assert accuracy.noise_floor([_row(1.0, 0, **same)]) is None


needs_data = pytest.mark.skipif(not (DEFAULT_DATA / "vme-dev.jsonl").is_file(),
                                     reason="../shared/data is not beside the checkout")


def _cuda_pre017_holdout(rows: list[dict]) -> list[dict]:
    return [r for r in rows if not r["skipped"] and r["platform"] == "cuda" and r["version_range"] == "<0.17"
            and r["split"] == "holdout"]


@needs_data
def test_the_printed_heldout_figure_is_computed_from_the_estimates(monkeypatch):
    _, rows, _, _ = accuracy.collect(DEFAULT_DATA)
    part = _cuda_pre017_holdout(rows)
    err = accuracy.graph_errors(part)
    assert err is not None and err["n"] >= 50
    # the same figure, straight from the calculator for each held-out NVIDIA < 0.17 vme-dev record
    diffs = []
    for case in vme_cases(DEFAULT_DATA / "vme-dev.jsonl"):
        if used_for_fitting(case) or "cuda_graphs" not in case.measured or "MI300" in case.settings["gpu"]:
            continue
        version = parse_vllm_version(case.settings["engine_version"])
        if version is None or version >= (0, 17):
            continue
        est = estimate(request_for(case))
        diffs.append(case.measured["cuda_graphs"] - est.per_gpu_bytes["cuda_graphs"] / GiB)
    assert len(diffs) == err["n"]
    assert err["median_abs_gib"] == pytest.approx(statistics.median(abs(d) for d in diffs), abs=1e-9)
    printed = [line for line in accuracy.matrix([r for r in rows if not r["skipped"]])
               if line.startswith("cuda vLLM <0.17") and "holdout" in line]
    figure = f"{err['median_abs_gib']:.3f} / {err['p90_abs_gib']:.3f} (n={err['n']})"
    assert len(printed) == 1 and figure in printed[0]
    # a calculator 1 GiB higher on the graphs moves the figure: nothing in the report is a constant
    real_run_case = accuracy.run_case

    def shifted(case):
        out = real_run_case(case)
        return {**out, "cuda_graphs": out["cuda_graphs"] + 1.0}

    monkeypatch.setattr(accuracy, "run_case", shifted)
    _, moved_rows, _, _ = accuracy.collect(DEFAULT_DATA)
    moved = accuracy.graph_errors(_cuda_pre017_holdout(moved_rows))
    assert moved is not None
    assert moved["median_abs_gib"] == pytest.approx(statistics.median(abs(d - 1.0) for d in diffs), abs=1e-9)
    assert moved["bias_gib"] == pytest.approx(err["bias_gib"] - 1.0, abs=1e-9)
