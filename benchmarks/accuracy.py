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


def summarise(rows: list[dict[str, Any]], title: str) -> list[str]:
    lines = [title, f"{'component':<16}{'n':>5}{'median |%|':>12}{'p90 |%|':>10}{'median |abs|':>16}"
                    f"{'bias (median signed %)':>24}"]
    for comp in COMPONENTS:
        pairs = [(r[f"{comp}_measured"], r[f"{comp}_calculated"]) for r in _percent_rows(rows, comp)
                 if r.get(f"{comp}_measured") not in (None, "") and r.get(f"{comp}_calculated") not in (None, "")]
        pairs = [(m, c) for m, c in pairs if m]
        if not pairs:
            continue
        pct = [(m - c) / abs(m) * 100 for m, c in pairs]
        absolute = [abs(m - c) for m, c in pairs]
        unit = "GiB" if comp not in ("kv_cache_tokens", "max_concurrency") else ("tok" if comp[0] == "k" else "x")
        lines.append(f"{comp:<16}{len(pairs):>5}{statistics.median(map(abs, pct)):>11.2f}%"
                     f"{percentile([abs(p) for p in pct], 0.9):>9.2f}%"
                     f"{statistics.median(absolute):>12.3f} {unit:<3}{statistics.median(pct):>+23.2f}%")
    zero = [abs(r["cuda_graphs_measured"]) for r in rows if zero_pool(r) and r.get("cuda_graphs_measured") is not None]
    if zero:
        lines.append(f"{'cuda_graphs, no pool predicted (NVIDIA < 0.17; GiB only)':<52} n={len(zero)} "
                     f"median |abs| {statistics.median(zero):.3f} GiB, p90 {percentile(zero, 0.9):.3f} GiB")
    return lines


MATRIX_COMPONENTS = ("weights", "kv_cache", "kv_cache_tokens", "cuda_graphs")


def zero_pool(row: dict[str, Any]) -> bool:
    """The calculator predicts no CUDA-graph pool for this record (NVIDIA before vLLM 0.17: the logged "took X GiB"
    is a free-memory difference that capturing perturbs, centred on zero and often negative; coefficients.py
    CUDA_GRAPH_POOL). A percent of such a figure means nothing: these records are reported in GiB only."""
    return row.get("cuda_graphs_calculated") in (0, 0.0)


def _percent_rows(rows: list[dict[str, Any]], comp: str) -> list[dict[str, Any]]:
    return [r for r in rows if not zero_pool(r)] if comp == "cuda_graphs" else rows


def _stats(rows: list[dict[str, Any]], comp: str) -> tuple[int, float, float, float] | None:
    pairs = [(r[f"{comp}_measured"], r[f"{comp}_calculated"]) for r in _percent_rows(rows, comp)
             if r.get(f"{comp}_measured") not in (None, "", 0) and r.get(f"{comp}_calculated") not in (None, "")]
    if not pairs:
        return None
    pct = [abs(m - c) / abs(m) * 100 for m, c in pairs]
    return len(pairs), statistics.median(pct), percentile(pct, 0.9), statistics.median(abs(m - c) for m, c in pairs)


def matrix(rows: list[dict[str, Any]]) -> list[str]:
    """One line per group (overall, platform, vLLM version range, each on the fit split and the rest): median and
    p90 |%| per component (cuda_graphs over the records with a predicted pool, ``zero_pool``), and the median |GiB|
    of the CUDA-graph pool over every record."""
    head = f"{'group':<24}{'split':<9}{'n':>4}" + "".join(f"{c + ' med/p90 %':>26}" for c in MATRIX_COMPONENTS) + \
        f"{'graphs |GiB|':>14}"
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
            graphs = [abs(r["cuda_graphs_measured"] - r["cuda_graphs_calculated"]) for r in part
                      if r.get("cuda_graphs_measured") not in (None, "", 0)
                      and r.get("cuda_graphs_calculated") not in (None, "")]
            lines.append(f"{name:<24}{split:<9}{len(part):>4}" + "".join(cells)
                         + (f"{statistics.median(graphs):>14.3f}" if graphs else f"{'-':>14}"))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--csv", type=Path, default=REPO / "results" / "accuracy-records.csv")
    args = parser.parse_args(argv)
    cases = vme_cases(args.data / "vme-dev.jsonl")
    thread_cases, incomplete = issue_thread_cases(args.data / "issue-threads.jsonl")
    cases += thread_cases
    rows, skipped = [], Counter()
    for case in cases:
        version = parse_vllm_version(case.settings.get("engine_version"))
        row: dict[str, Any] = {"source": case.source, "id": case.record_id, "model": case.model,
                               "split": "fit" if used_for_fitting(case) else "holdout", "skipped": "",
                               "platform": "rocm" if "MI300" in str(case.settings.get("gpu")) else "cuda",
                               "version_range": version_bucket(version) if version else "unknown"}
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
    estimated = [r for r in rows if not r["skipped"]]
    by_source = Counter(c.source for c in cases)
    est_source = Counter(r["source"] for r in estimated)
    coverage = ", ".join(f"{s} {est_source[s]}/{n} ({100 * est_source[s] / n:.1f}%)" for s, n in by_source.items())
    print(f"records: {len(cases)} ({', '.join(f'{s} {n}' for s, n in by_source.items())}); estimated: {coverage}; "
          f"issue-threads records incomplete (not counted): {len(incomplete)}")
    print()
    print("accuracy matrix: median / p90 of |logged - calculated| / logged, %, per group and split "
          "(fit = the records benchmarks/fit.py uses)")
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
