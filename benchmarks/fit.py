"""Fit the calculator's engine coefficients on the "fit" half of the real vLLM logs.

Run: ``python benchmarks/fit.py [--data DIR] [--split fit|all]``

What is fitted (everything else in the calculator is physics or a vLLM default):

* c_v, the sampler warm-up bytes per (dummy sequence x vocab entry), per vLLM version bucket, from single-GPU CUDA
  records: overhead = c_v x N x V + NT, where overhead = utilization x total - logged weights - logged KV pool (-
  the logged CUDA-graph pool from v0.21): the engine's own identity, memory-physics.md 2.1, computed by
  ``calculator.engines.vllm_kv_pool_bytes``, N = max_num_seqs of the profile run and V = vocab size. The
  single-GPU non-torch NT is held at its measured prior (0.15 GiB: llm-d H100 TP1 0.13, physics 3.4) because the
  models in the data span too few vocabulary sizes to fit slope and intercept together (the free least-squares
  line is printed as a check); c_v is the median of (overhead - NT) / (N x V), floored at 0.
* non-torch memory for every other (platform, TP size) group: the median of overhead - c_v x N x V.
* the CUDA-graph pool per version bucket and platform: the median of the logged "Graph capturing ... took".

Records are split by ``vllm_records.split_of`` (a hash of the record id); only the "fit" half is used unless
``--split all``. The printed tables are what ``pytest_llmsizer/calculator/coefficients.py`` holds (copied by hand,
with the date and this command). ``benchmarks/accuracy.py`` reports accuracy on the other half.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vllm_records import DEFAULT_DATA, request_for, split_of, vme_cases

from pytest_llmsizer.calculator import estimate
from pytest_llmsizer.calculator.coefficients import VERSION_BUCKETS
from pytest_llmsizer.calculator.engines import cuda_graphs_in_budget, vllm_kv_pool_bytes
from pytest_llmsizer.calculator.versions import parse_vllm_version, version_bucket
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.units import GiB

NT_TP1_PRIOR_GIB = 0.15


def least_squares(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Slope and intercept of the ordinary least-squares line."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, my
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", choices=("fit", "all"), default="fit")
    args = parser.parse_args(argv)
    points: dict[tuple[str, str, int], list[tuple[float, float, str]]] = defaultdict(list)
    graphs: dict[tuple[str, str], list[float]] = defaultdict(list)
    used = 0
    for case in vme_cases(args.data / "vme-dev.jsonl"):
        if args.split == "fit" and split_of(case.record_id) != "fit":
            continue
        if "weights" not in case.measured or "kv_cache" not in case.measured:
            continue
        version = parse_vllm_version(case.settings.get("engine_version"))
        if version is None or ".dev" in (case.settings.get("engine_version") or ""):
            continue  # development builds are not a release's behaviour
        try:
            request = request_for(case)
        except LlmsizerError:
            continue
        terms = estimate(request).details["activation_terms"]
        util = case.settings["gpu_memory_utilization"]
        # the engine's budget identity, from the calculator's one home: what utilization x total leaves besides the
        # logged weights, KV pool and (from v0.21, not eager) the logged CUDA-graph pool is activations + non-torch
        charged = cuda_graphs_in_budget(version, case.settings.get("enforce_eager"))
        graphs_bytes = round(case.measured.get("cuda_graphs", 0.0) * GiB) if charged else 0
        left = vllm_kv_pool_bytes(request.gpu_memory_bytes, util, weights=round(case.measured["weights"] * GiB),
                                  activations=0, non_torch=0, cuda_graphs=graphs_bytes)
        overhead = (left - round(case.measured["kv_cache"] * GiB)) / GiB
        nv = terms["profile_seqs"] * request.arch.vocab_size / 1e6
        key = (version_bucket(version), request.platform, request.tensor_parallel_size * request.pipeline_parallel_size)
        points[key].append((nv, overhead, case.model))
        if "cuda_graphs" in case.measured and not case.settings.get("enforce_eager"):
            graphs[(version_bucket(version), request.platform)].append(case.measured["cuda_graphs"])
        used += 1
    print(f"records used: {used} ({args.split} split, release builds with logged weights and KV pool)")
    print()
    print(f"sampler coefficient c_v per version bucket (single-GPU CUDA records, non-torch held at "
          f"{NT_TP1_PRIOR_GIB} GiB)")
    c_by_bucket: dict[str, float] = {}
    for bucket in VERSION_BUCKETS:
        pts = points.get((bucket, "cuda", 1), [])
        models = {m for _, _, m in pts}
        if not pts:
            print(f"  {bucket:<10} no single-GPU CUDA records")
            continue
        c_v = max(0.0, statistics.median((oh - NT_TP1_PRIOR_GIB) * GiB / (nv * 1e6) for nv, oh, _ in pts))
        c_by_bucket[bucket] = c_v
        slope, intercept = least_squares([p[0] for p in pts], [p[1] for p in pts])
        print(f"  {bucket:<10} c_v = {c_v:5.1f} B per seq x vocab  ({len(pts)} records, {len(models)} models; free "
              f"line: c_v {slope * GiB / 1e6:.1f}, non-torch {intercept:+.2f} GiB)")
    print()
    print("non-torch memory (GiB) per version bucket, platform and GPUs per replica: median of overhead - c_v x N x V")
    for key in sorted(points):
        bucket, platform, gpus = key
        if bucket not in c_by_bucket:
            continue
        residuals = [oh - c_by_bucket[bucket] * nv * 1e6 / GiB for nv, oh, _ in points[key]]
        models = sorted({m.split("/")[-1] for _, _, m in points[key]})
        print(f"  {bucket:<10} {platform:<5} x{gpus:<2} {statistics.median(residuals):+.2f}  "
              f"(n={len(residuals)}, range {min(residuals):+.2f}..{max(residuals):+.2f}; {', '.join(models)[:70]})")
    print()
    print("CUDA graph pool (GiB, 'Graph capturing finished ... took'): median per version bucket and platform")
    for (bucket, platform), values in sorted(graphs.items()):
        print(f"  {bucket:<10} {platform:<5} {statistics.median(values):+.2f}  (n={len(values)}, range "
              f"{min(values):+.2f}..{max(values):+.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
