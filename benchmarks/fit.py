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
* the CUDA-graph pool (``calculator/cuda_graphs.py``) per version bucket and platform: least squares of the logged
  "Graph capturing ... took" (scaled to the reference capture count) on [1, layers per rank, MLA, hybrid], keeping
  only the columns that vary in that group (a backend absent from a group gets no offset).
* the ROCm load figure (``calculator/platform.py``): on MI300X "Model loading took" is device-level used memory. With
  the exact terms (MoE row padding, the fp8 fnuz mask) subtracted, the rest of (logged - calculated weights) gives, in
  this order: the load growth per GPUs per replica (16-bit dense records), the reserve fraction of 16-bit expert
  bytes (16-bit MoE records), the reserve fraction of one FP8 MoE layer's expert bytes (FP8 MoE records); each the
  median over the records of its kind.

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

from vllm_records import DEFAULT_DATA, request_for, used_for_fitting, vme_cases

from pytest_llmsizer.calculator import estimate
from pytest_llmsizer.calculator.coefficients import CUDA_GRAPH_REFERENCE_SIZES, VERSION_BUCKETS
from pytest_llmsizer.calculator.engines import cuda_graphs_in_budget, vllm_kv_pool_bytes
from pytest_llmsizer.calculator.params import Sharding, pipeline_stages, stage_inventory
from pytest_llmsizer.calculator.platform import rocm_load_features
from pytest_llmsizer.calculator.versions import parse_vllm_version, version_bucket
from pytest_llmsizer.calculator.weights import dtype_bytes, quantized_kinds, serving_dtype
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
    rocm: list[tuple[str, int, float, object]] = []  # model, GPUs, logged - calculated tensor bytes (GiB), features
    graphs: dict[tuple[str, str], list[tuple[float, int, str]]] = defaultdict(list)
    used = 0
    for case in vme_cases(args.data / "vme-dev.jsonl"):
        if args.split == "fit" and not used_for_fitting(case):
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
        if request.platform == "rocm":
            result = estimate(request)
            tensors = (result.per_gpu_bytes["weights"] - sum(result.details["load_figure_terms_bytes"].values()))
            sh = Sharding(tp=request.tensor_parallel_size, pp=request.pipeline_parallel_size,
                          dp=request.data_parallel_size, expert_parallel=request.enable_expert_parallel)
            layers = pipeline_stages(request.arch.num_layers, sh.pp)[0]
            b = dtype_bytes(serving_dtype(request.arch, request.dtype))
            inventory = stage_inventory(request.arch, layers, first=True, last=sh.pp == 1, sh=sh)
            quantized = sum(inventory.get(kind, 0) for kind in quantized_kinds(request.arch.quantization))
            features = rocm_load_features(request.arch, layers, sh, b, request.gpu_name, quantized)
            rocm.append((case.model, sh.tp * sh.pp, case.measured["weights"] - tensors / GiB, features))
        if "cuda_graphs" in case.measured and not case.settings.get("enforce_eager"):
            terms = estimate(request).details["cuda_graph_terms"]
            scaled = case.measured["cuda_graphs"] * CUDA_GRAPH_REFERENCE_SIZES / terms["capture_sizes"]
            graphs[(version_bucket(version), request.platform)].append(
                (scaled, terms["layers"], terms["attention_backend"]))
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
    fit_rocm_load(rocm)
    print()
    fit_graph_pool(graphs)
    return 0


MIN_GRAPH_RECORDS = 3
"""A version bucket with fewer records (or one layer count) is not fitted a line of its own: it takes the nearest
older bucket's line for that platform, times the median ratio logged / that line. A bucket whose median logged
pool is <= 0 gets the zero line (what the log shows there is the allocator releasing cached blocks)."""


def fit_graph_pool(graphs: dict[tuple[str, str], list[tuple[float, int, str]]]) -> None:
    """``coefficients.CUDA_GRAPH_POOL``: least squares per version bucket and platform, printed."""
    import numpy as np  # fitting only; the calculator itself never needs numpy

    print("CUDA graph pool (GiB at the reference capture count): least squares on [1, layers, mla, hybrid]")
    lines: dict[tuple[str, str], dict[str, float]] = {}

    def predict(line: dict[str, float], layers: int, backend: str) -> float:
        return line["base"] + line["per_layer"] * layers + line.get(backend, 0.0)

    for bucket in VERSION_BUCKETS:
        for platform in ("cuda", "rocm"):
            rows = graphs.get((bucket, platform), [])
            if not rows:
                continue
            y = np.array([r[0] for r in rows])
            if float(np.median(y)) <= 0:
                # capturing released more cached memory than the graphs took: the log does not measure the pool
                line = {"base": 0.0, "per_layer": 0.0}
                how = "median logged <= 0: zero line"
            elif len(rows) >= MIN_GRAPH_RECORDS and len({r[1] for r in rows}) > 1:
                columns = {"base": np.ones(len(rows)), "per_layer": np.array([float(r[1]) for r in rows]),
                           "mla": np.array([float(r[2] == "mla") for r in rows]),
                           "hybrid": np.array([float(r[2] == "hybrid") for r in rows])}
                used = ["base"] + [n for n in ("per_layer", "mla", "hybrid") if np.ptp(columns[n]) > 0]
                x = np.column_stack([columns[n] for n in used])
                solution, *_ = np.linalg.lstsq(x, y, rcond=None)
                line = {n: round(float(v), 4) for n, v in zip(used, solution, strict=True)}
                line.setdefault("per_layer", 0.0)
                how = "least squares"
            else:
                order = list(VERSION_BUCKETS)
                older = [b for b in order[: order.index(bucket)] if (b, platform) in lines]
                if not older:
                    print(f"  {bucket:<10} {platform:<5} too few records and no older bucket (n={len(rows)})")
                    continue
                base_line = lines[(older[-1], platform)]
                scale = statistics.median(r[0] / predict(base_line, r[1], r[2]) for r in rows)
                line = {n: round(v * scale, 4) for n, v in base_line.items()}
                how = f"{older[-1]} line x {scale:.3f}"
            lines[(bucket, platform)] = line
            residual = [abs(r[0] - predict(line, r[1], r[2])) for r in rows]
            print(f"  {bucket:<10} {platform:<5} {line}  ({how}; n={len(rows)}, residual |GiB| median "
                  f"{statistics.median(residual):.2f}, max {max(residual):.2f})")


def fit_rocm_load(records: list[tuple[str, int, float, object]]) -> None:
    """The ROCm load-figure coefficients (``coefficients.ROCM_LOAD``), printed."""
    print(f"ROCm load figure ({len(records)} MI300X records): logged weights - calculated tensor bytes")
    if not records:
        return
    rest = []
    for model, gpus, diff, f in records:
        exact = (f.moe_padding + f.fp8_largest_weight_elements) / GiB
        rest.append((model, gpus, diff - exact, f))
    growth: dict[int, list[float]] = defaultdict(list)
    for _, gpus, r, f in rest:
        if not f.moe16_expert_bytes and not f.fp8_moe_layer_bytes and not f.fp8_largest_weight_elements:
            growth[gpus].append(r)
    table = {g: round(statistics.median(v), 2) for g, v in sorted(growth.items())}

    def growth_at(gpus: int) -> float:
        sizes = sorted(table) or [1]
        return table.get(max((s for s in sizes if s <= gpus), default=sizes[0]), 0.0)

    print(f"  load_growth_gib (16-bit dense records, median per GPUs): {table} "
          f"(n={ {g: len(v) for g, v in growth.items()} })")
    moe16 = [(r - growth_at(g)) * GiB / f.moe16_expert_bytes for _, g, r, f in rest if f.moe16_expert_bytes]
    fp8 = [(r - growth_at(g)) * GiB / f.fp8_moe_layer_bytes for _, g, r, f in rest if f.fp8_moe_layer_bytes]
    online = [(r - growth_at(g)) * GiB / f.online_quantized16_bytes for _, g, r, f in rest
              if f.online_quantized16_bytes and not f.fp8_moe_layer_bytes and not f.moe16_expert_bytes]
    for name, values in (("moe16_reserve_fraction", moe16), ("fp8_moe_layer_fraction", fp8),
                         ("online_quant16_fraction", online)):
        if values:
            print(f"  {name} = {statistics.median(values):.3f}  (n={len(values)}, range {min(values):.3f}.."
                  f"{max(values):.3f})")
        else:
            print(f"  {name}: no records of this kind")
    others = [(m.split("/")[-1], round(r - growth_at(g), 2)) for m, g, r, f in rest
              if f.fp8_largest_weight_elements and not f.fp8_moe_layer_bytes and not f.online_quantized16_bytes]
    print(f"  not fitted (dense FP8 checkpoints: the fnuz mask only), residual GiB: {others}")


if __name__ == "__main__":
    sys.exit(main())
