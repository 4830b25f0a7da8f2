"""Accuracy of the built-in calculator on real vLLM startup logs.

Run: ``python benchmarks/accuracy.py [--data DIR] [--csv OUT] [--split all|fit|holdout]``

Reads ``../shared/data/vllm-startup-logs/vme-dev.jsonl`` and ``issue-threads.jsonl`` at run time (they are not copied
into the project) plus the committed profiles, estimates every record through the same code path as
``llmsizer estimate`` with the engine settings the record gives, and prints, per component, the records compared,
median and p90 absolute percent error, median absolute error (GiB), and signed bias (the median of
(profiled - calculated) / profiled: positive = the calculator is low), plus
how many records were skipped and why. It writes the per-record table as CSV. It exits 0 whatever the numbers: it
measures, it does not judge.

The fit/holdout split is by record id (``split_of``): coefficients fitted by ``benchmarks/fit.py`` use only the
"fit" half, and this script reports the "holdout" half separately.

The CUDA-graph figure ("Graph capturing finished ... took X GiB") is compared as vLLM logs it: pool - cache the first
capture releases (calculator/cuda_graphs.py), which before vLLM 0.17 on NVIDIA is centred on zero and often
negative. Its error is therefore reported in GiB (median and p90 of |logged - calculated|, and the median signed
difference), and in percent only over records whose |logged| >= ``GRAPH_PERCENT_FLOOR_GIB``. Next to it the noise
floor: the spread (max - min) of the logged figure among records with identical settings (``same_settings``), which
no predictor can beat.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vllm_records import (
    DEFAULT_DATA,
    REPO,
    issue_thread_cases,
    run_case,
    used_for_fitting,
    vme_cases,
)

from pytest_llmsizer.calculator.coefficients import VERSION_BUCKETS
from pytest_llmsizer.calculator.versions import parse_vllm_version, version_bucket
from pytest_llmsizer.errors import LlmsizerError

COMPONENTS = ("weights", "kv_cache", "kv_cache_tokens", "max_concurrency", "activations", "non_torch", "cuda_graphs")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


GRAPH_PERCENT_FLOOR_GIB = 0.25
"""A percent of a logged CUDA-graph figure is shown only where |logged| >= this (GiB): below it the spread among
identical runs (p90 ~0.3 GiB, ``noise_floor``) is as large as the figure, and a figure near zero (CUDA < 0.17, where
the capture releases cached blocks) makes any percent explode."""


def _number(value: Any) -> bool:
    return value not in (None, "")


def _percent_ok(comp: str, measured: float) -> bool:
    """Whether a percent of this logged value is meaningful: nonzero, and for cuda_graphs above the floor."""
    return bool(measured) and (comp != "cuda_graphs" or abs(measured) >= GRAPH_PERCENT_FLOOR_GIB)


def graph_errors(rows: list[dict[str, Any]]) -> dict[str, float | int] | None:
    """The CUDA-graph error over rows with a logged and a calculated figure: n, median and p90 of |logged -
    calculated| (GiB), the median signed difference (GiB; positive = the calculator is low), and the median / p90
    |%| over the ``n_pct`` rows at or above ``GRAPH_PERCENT_FLOOR_GIB``. None without such rows."""
    pairs = [(float(r["cuda_graphs_measured"]), float(r["cuda_graphs_calculated"])) for r in rows
             if _number(r.get("cuda_graphs_measured")) and _number(r.get("cuda_graphs_calculated"))]
    if not pairs:
        return None
    diffs = [m - c for m, c in pairs]
    pct = [abs(m - c) / abs(m) * 100 for m, c in pairs if _percent_ok("cuda_graphs", m)]
    return {"n": len(pairs), "median_abs_gib": statistics.median(abs(d) for d in diffs),
            "p90_abs_gib": percentile([abs(d) for d in diffs], 0.9), "bias_gib": statistics.median(diffs),
            "n_pct": len(pct), "median_pct": statistics.median(pct) if pct else float("nan"),
            "p90_pct": percentile(pct, 0.9) if pct else float("nan")}


def same_settings(row: dict[str, Any]) -> tuple[Any, ...]:
    """What sets the logged CUDA-graph figure, as a key: records sharing it differ only by run-to-run noise."""
    return tuple(row.get(k) for k in ("model", "gpu", "tensor_parallel_size", "pipeline_parallel_size",
                                      "data_parallel_size", "enable_expert_parallel", "minor_version",
                                      "max_num_seqs", "max_num_batched_tokens", "kv_cache_dtype",
                                      "language_model_only", "enforce_eager"))


def noise_floor(rows: list[dict[str, Any]]) -> dict[str, float | int] | None:
    """Spread (max - min, GiB) of the logged CUDA-graph figure within each group of records with the same settings
    (``same_settings``; groups of >= 2): groups, median, p90, max. None without such a group. The version in the key
    is major.minor, what the calculator distinguishes: a development build and the release of one minor version
    fall into one group (on MI300X they differ by up to 3.8 GiB)."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for r in rows:
        if _number(r.get("cuda_graphs_measured")):
            groups.setdefault(same_settings(r), []).append(float(r["cuda_graphs_measured"]))
    spreads = [max(v) - min(v) for v in groups.values() if len(v) >= 2]
    if not spreads:
        return None
    return {"groups": len(spreads), "median_gib": statistics.median(spreads), "p90_gib": percentile(spreads, 0.9),
            "max_gib": max(spreads)}


def graph_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The CUDA-graph figure in GiB (signed error) and the noise floor of the same records."""
    err = graph_errors(rows)
    if err is None:
        return []
    lines = [f"cuda_graphs (GiB, signed figure as logged): n={err['n']} median |abs| {err['median_abs_gib']:.3f}, "
             f"p90 |abs| {err['p90_abs_gib']:.3f}, bias (median logged - calculated) {err['bias_gib']:+.3f}"]
    noise = noise_floor(rows)
    if noise is not None:
        lines.append(f"  noise floor, spread of the logged figure among identical settings (same_settings): "
                     f"{noise['groups']} groups, "
                     f"median {noise['median_gib']:.3f}, p90 {noise['p90_gib']:.3f}, max {noise['max_gib']:.3f} GiB")
    return lines


def summarise(rows: list[dict[str, Any]], title: str) -> list[str]:
    lines = [title, f"{'component':<16}{'n':>5}{'median |%|':>12}{'p90 |%|':>10}{'median |abs|':>16}"
                    f"{'bias (median signed %)':>24}"]
    for comp in COMPONENTS:
        pairs = [(r[f"{comp}_measured"], r[f"{comp}_calculated"]) for r in rows
                 if _number(r.get(f"{comp}_measured")) and _number(r.get(f"{comp}_calculated"))]
        pairs = [(m, c) for m, c in pairs if _percent_ok(comp, m)]
        if not pairs:
            continue
        pct = [(m - c) / abs(m) * 100 for m, c in pairs]
        absolute = [abs(m - c) for m, c in pairs]
        unit = "GiB" if comp not in ("kv_cache_tokens", "max_concurrency") else ("tok" if comp[0] == "k" else "x")
        name = comp if comp != "cuda_graphs" else "cuda_graphs*"
        lines.append(f"{name:<16}{len(pairs):>5}{statistics.median(map(abs, pct)):>11.2f}%"
                     f"{percentile([abs(p) for p in pct], 0.9):>9.2f}%"
                     f"{statistics.median(absolute):>12.3f} {unit:<3}{statistics.median(pct):>+23.2f}%")
    graphs = graph_lines(rows)
    if graphs:
        lines.append(f"* cuda_graphs percent over |logged| >= {GRAPH_PERCENT_FLOOR_GIB} GiB only; every record:")
        lines += graphs
    return lines


MATRIX_COMPONENTS = ("weights", "kv_cache", "kv_cache_tokens", "cuda_graphs")


def _stats(rows: list[dict[str, Any]], comp: str) -> tuple[int, float, float, float] | None:
    pairs = [(r[f"{comp}_measured"], r[f"{comp}_calculated"]) for r in rows
             if _number(r.get(f"{comp}_measured")) and _number(r.get(f"{comp}_calculated"))
             and _percent_ok(comp, r[f"{comp}_measured"])]
    if not pairs:
        return None
    pct = [abs(m - c) / abs(m) * 100 for m, c in pairs]
    return len(pairs), statistics.median(pct), percentile(pct, 0.9), statistics.median(abs(m - c) for m, c in pairs)


def matrix(rows: list[dict[str, Any]]) -> list[str]:
    """One line per group (overall, platform, vLLM version range, each on the fit split and the rest): median and
    p90 |%| per component (cuda_graphs over the records with |logged| >= ``GRAPH_PERCENT_FLOOR_GIB``), and the
    CUDA-graph figure's median / p90 |logged - calculated| in GiB over every record that logged one, beside the
    noise floor of those records (``noise_floor``: median / p90 spread among identical settings, g = groups)."""
    head = f"{'group':<24}{'split':<9}{'n':>4}" + "".join(f"{c + ' med/p90 %':>26}" for c in MATRIX_COMPONENTS) + \
        f"{'graphs |GiB| med/p90':>28}{'noise GiB med/p90':>24}"
    lines = [head]
    groups: list[tuple[str, list[dict[str, Any]]]] = [("all", rows)]
    groups += [(f"platform {p}", [r for r in rows if r["platform"] == p]) for p in ("cuda", "rocm")]
    groups += [(f"vLLM {b}", [r for r in rows if r["version_range"] == b]) for b in [*VERSION_BUCKETS, "unknown"]]
    groups += [(f"{p} vLLM {b}", [r for r in rows if r["platform"] == p and r["version_range"] == b])
               for p in ("cuda", "rocm") for b in VERSION_BUCKETS]
    for name, subset in groups:
        for split in ("fit", "holdout"):
            part = [r for r in subset if r["split"] == split]
            if not part:
                continue
            cells = []
            for comp in MATRIX_COMPONENTS:
                st = _stats(part, comp)
                cells.append(f"{'-':>26}" if st is None else f"{f'{st[1]:.2f} / {st[2]:.2f} (n={st[0]})':>26}")
            err = graph_errors(part)
            graphs = "-" if err is None else \
                f"{err['median_abs_gib']:.3f} / {err['p90_abs_gib']:.3f} (n={err['n']})"
            noise = noise_floor(part)
            spread = "-" if noise is None else \
                f"{noise['median_gib']:.3f} / {noise['p90_gib']:.3f} (g={noise['groups']})"
            lines.append(f"{name:<24}{split:<9}{len(part):>4}" + "".join(cells) + f"{graphs:>28}{spread:>24}")
    return lines


def collect(data: Path) -> tuple[list[Any], list[dict[str, Any]], Counter, list[tuple[str, str]]]:
    """(cases, one row per case, skip reasons, incomplete issue-thread records): every record estimated."""
    cases = vme_cases(data / "vme-dev.jsonl")
    thread_cases, incomplete = issue_thread_cases(data / "issue-threads.jsonl")
    cases += thread_cases
    rows, skipped = [], Counter()
    for case in cases:
        version = parse_vllm_version(case.settings.get("engine_version"))
        row: dict[str, Any] = {"source": case.source, "id": case.record_id, "model": case.model,
                               "split": "fit" if used_for_fitting(case) else "holdout", "skipped": "",
                               "platform": "rocm" if "MI300" in str(case.settings.get("gpu")) else "cuda",
                               "version_range": version_bucket(version) if version else "unknown",
                               "minor_version": f"{version[0]}.{version[1]}" if version else None,
                               **{k: case.settings.get(k) for k in SETTINGS}}
        try:
            calc = run_case(case)
        except LlmsizerError as e:
            reason = str(e).split(";")[0].split(": ", 1)[-1][:90]
            skipped[(case.source, reason)] += 1
            row["skipped"] = str(e)[:300]
            rows.append(row)
            continue
        for comp in COMPONENTS:
            row[f"{comp}_measured"] = case.measured.get(comp)
            row[f"{comp}_calculated"] = calc[comp] if comp in case.measured else None
        rows.append(row)
    return cases, rows, skipped, incomplete


SETTINGS = ("gpu", "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "enable_expert_parallel",
            "max_num_seqs", "max_num_batched_tokens", "kv_cache_dtype", "language_model_only", "enforce_eager")
"""Engine settings copied into each row (``same_settings`` groups by them)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--csv", type=Path, default=REPO / "results" / "accuracy-records.csv")
    args = parser.parse_args(argv)
    cases, rows, skipped, incomplete = collect(args.data)
    estimated = [r for r in rows if not r["skipped"]]
    by_source = Counter(c.source for c in cases)
    est_source = Counter(r["source"] for r in estimated)
    coverage = ", ".join(f"{s} {est_source[s]}/{n} ({100 * est_source[s] / n:.1f}%)" for s, n in by_source.items())
    print(f"records: {len(cases)} ({', '.join(f'{s} {n}' for s, n in by_source.items())}); estimated: {coverage}; "
          f"issue-threads records incomplete (not counted): {len(incomplete)}")
    print()
    print("accuracy matrix: median / p90 of |logged - calculated| / logged, %, per group and split "
          "(fit = the records benchmarks/fit.py uses); cuda_graphs % over |logged| >= "
          f"{GRAPH_PERCENT_FLOOR_GIB} GiB, its GiB error over every record, beside the noise among identical settings")
    print("\n".join(matrix(estimated)))
    for title, subset in (("all estimated records", estimated),
                          ("holdout (every record benchmarks/fit.py does not use)", [r for r in estimated
                                                                            if r["split"] == "holdout"]),
                          ("vme-dev only", [r for r in estimated if r["source"] == "vme-dev"]),
                          ("vme-dev, NVIDIA GPUs (H200, B200)", [r for r in estimated if r["source"] == "vme-dev"
                                                                  and r["platform"] == "cuda"]),
                          ("vme-dev, AMD MI300X", [r for r in estimated if r["source"] == "vme-dev"
                                                   and r["platform"] == "rocm"])):
        print()
        print("\n".join(summarise(subset, f"{title}: {len(subset)} records")))
    if skipped:
        print()
        print("skipped:")
        for (source, reason), n in skipped.most_common():
            print(f"  {n:>3}  {source}: {reason}")
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    fields = ["source", "id", "model", "split", "platform", "version_range", "skipped"]
    fields += [f"{c}_{k}" for c in COMPONENTS for k in ("measured", "calculated")]
    with args.csv.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nper-record table: {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
