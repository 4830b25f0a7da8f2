"""Fit the calculator's coefficient families to observations, cross-validate grouped by model, and decide.

Families (``calculator/coefficient_set.py``) and how each is fitted, all by medians (robust to the odd log):

* ``sampler_bytes_per_seq_vocab/<bucket>`` (c_v): single-GPU CUDA profiles, c_v = median((O - NT1) / (N V)), with
  the single-GPU CUDA non-torch NT1 held at its measured prior (0.15 GiB, memory-physics.md 3.4), because the models
  in real data span too few vocabulary sizes to fit slope and intercept together. The hidden states held while
  sampling (2Th) are folded into c_v; subtracting them, or keeping only profiles whose overhead exceeds the forward
  term, was tried and made the held-out KV error worse (vme-dev holdout median 0.62% -> 0.72%, NVIDIA 0.16% ->
  0.37%), so the fit keeps the form that predicts best.
* ``non_torch_gib/<bucket>/<platform>/<gpus>``: the logged non-torch figure where the profile has one, else
  O - c_v N V with the c_v just fitted (or the base one).
* ``cuda_graph_pool_gib/<bucket>/<platform>/<term>`` and ``cuda_graph_release/<bucket>/<platform>``: the CUDA-graph
  pool line and the cache the capture releases (rho), least squares of the logged "Graph capturing finished ...
  took" (``_fit_graph_pool``).
* ``rocm_load/<term>``, ``rocm_load_growth_gib/<gpus>``: the ROCm load-figure reserves (``_fit_rocm_load``).
* ``cuda_context_gib/<platform>``: the logged non-torch memory of plain-transformers profiles.

Each value is clamped to the family's physical bounds (reported). A coefficient no observation informs keeps its
base value (reported as unchanged). Cross-validation: models are dealt into k folds (a model never sits on both
sides); each fold is predicted with the base set and with a set fitted on the other folds; the per-component error on
held-out profiles decides whether the calibration helps.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator import estimate
from pytest_llmsizer.calculator.coefficient_set import BOUNDS, DIGITS, GRAPH_POOL_TERMS, UNITS, CoefficientSet, Entry
from pytest_llmsizer.calculator.cuda_graphs import line_gib
from pytest_llmsizer.calibration.observe import EVALUATED, Observation
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.units import GiB

NT_SINGLE_GPU_PRIOR_GIB = 0.15
"""Single-GPU CUDA non-torch memory held fixed while c_v is fitted (llm-d H100 TP1 0.13 GiB, physics 3.4)."""

DEFAULT_FOLDS = 5
PCT_COMPONENTS = ("weights", "kv_cache", "kv_cache_tokens")
"""Judged by mean |percent| (large quantities); the small components by mean |difference| in GiB, because a percent
of a 0.2 GiB graph pool that a log may even print as negative says little."""
WORSE_TOLERANCE = 0.005
"""A held-out score may rise by this much (percentage points, or GiB) before it counts as worse (float noise)."""


@dataclass(frozen=True)
class Fitted:
    entry_id: str
    value: float
    raw: float
    n: int
    models: tuple[str, ...]
    uncertainty: float | None
    """95% half-width of the median with models as the independent units (see ``_median_fit``); None below 3 models."""
    method: str

    @property
    def clamped(self) -> bool:
        return self.value != self.raw


_T95 = {2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 12: 2.179,
        15: 2.131, 20: 2.086, 30: 2.042}


def _t95(dof: int) -> float:
    """Two-sided 95% Student's t quantile (the largest tabulated dof not above ``dof``; 1.96 beyond 30)."""
    if dof > 30:
        return 1.96
    return _T95[max(d for d in _T95 if d <= dof)]


def _median_fit(entry_id: str, values: list[tuple[float, str]], method: str) -> Fitted | None:
    """The median of the values, and its uncertainty from the spread between models.

    Profiles of one model are not independent (same weights, same vocabulary, often the same person's setup), so the
    uncertainty treats each model as one observation (the median of its values): a 95% half-width of the median,
    Student's t for the few models real data has x 1.2533 (the median's efficiency) x the standard deviation of the
    per-model medians / sqrt(models). With fewer than 3 models it is not stated (None) rather than guessed.
    """
    if not values:
        return None
    xs = [v for v, _ in values]
    med = statistics.median(xs)
    by_model: dict[str, list[float]] = defaultdict(list)
    for v, m in values:
        by_model[m].append(v)
    per_model = [statistics.median(v) for v in by_model.values()]
    unc = None
    if len(per_model) >= 3:
        n_models = len(per_model)
        unc = _t95(n_models - 1) * 1.2533 * statistics.stdev(per_model) / math.sqrt(n_models)
    low, high = BOUNDS[entry_id.split("/")[0]]
    return Fitted(entry_id, min(max(med, low), high), med, len(xs), tuple(sorted(by_model)), unc, method)


def fit_observations(observations: list[Observation], base: CoefficientSet) -> dict[str, Fitted]:
    """Every coefficient the observations inform, fitted (ids absent from the result have no information)."""
    out: dict[str, Fitted] = {}
    cv_points: dict[str, list[tuple[float, str]]] = defaultdict(list)
    prior = NT_SINGLE_GPU_PRIOR_GIB * GiB
    for o in observations:
        if o.bucket and o.platform == "cuda" and o.gpus == 1 and o.overhead is not None and o.nv > 0:
            cv_points[o.bucket].append(((o.overhead - prior) / o.nv, o.model))
    for bucket, pts in cv_points.items():
        f = _median_fit(f"sampler_bytes_per_seq_vocab/{bucket}", pts,
                        f"median of (O - {NT_SINGLE_GPU_PRIOR_GIB} GiB) / (N V) over single-GPU CUDA profiles")
        if f:
            out[f.entry_id] = f

    def c_v(bucket: str) -> float:
        fitted = out.get(f"sampler_bytes_per_seq_vocab/{bucket}")
        if fitted is not None:
            return fitted.value
        value = base.value(f"sampler_bytes_per_seq_vocab/{bucket}")
        return 0.0 if value is None else value

    groups: dict[str, list[tuple[float, str]]] = defaultdict(list)
    context: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for o in observations:
        if o.engine == "transformers":
            if o.non_torch is not None:
                context[f"cuda_context_gib/{o.platform}"].append((o.non_torch / GiB, o.model))
            continue
        key = f"non_torch_gib/{o.bucket}/{o.platform}/{o.gpus}"
        if o.non_torch is not None:
            groups[key].append((o.non_torch / GiB, o.model))
        elif o.overhead is not None:
            groups[key].append(((o.overhead - c_v(o.bucket or "") * o.nv) / GiB, o.model))
    for table, method in (
        (groups, "median of the logged non-torch memory, else O - c_v N V"),
        (context, "median of the logged non-torch memory of plain-transformers profiles"),
    ):
        for entry_id, pts in table.items():
            f = _median_fit(entry_id, pts, method)
            if f:
                out[entry_id] = f
    out.update(_fit_graph_pool(observations, base))
    out.update(_fit_rocm_load(observations))
    return out


MIN_GRAPH_RECORDS = 3
"""A version bucket with fewer graph observations (or one layer count) gets no line of its own: it takes the nearest
older line of the platform (fitted here, else the base set's) times the median ratio logged / that line."""
GRAPH_RELEASE_FITS: dict[tuple[str, str], str] = {("<0.17", "cuda"): "0.17-0.19"}
"""Where rho (``cuda_graph_release``: logged = pool - released, ``cuda_graphs.released_bytes``) is fitted, and the
newer bucket whose pool line the group takes instead of fitting its own; elsewhere rho stays 0.

Why borrow the pool: vLLM's capture code is the same in 0.16 and 0.17 (``capture_model``, ``CUDAGraphWrapper``,
the capture list; diffed), and on CUDA the logged pool of a model stays put from 0.17 to 0.20 (the same settings:
DeepSeek-R1 TP8 2.27 -> 2.28 GiB, Qwen3-VL-30B 0.80 -> 0.85, Llama-3.3-70B FP8 TP4 0.85 -> 0.90, Ministral-3-14B
0.65 -> 0.67, Nemotron-3-Nano 0.85 -> 0.86); before 0.17 the log shows the pool minus the release, so the records
there pin rho better than a line. Chosen by held-out error (vme-dev, issue 11 item 6, 2026-12-04, ``python
benchmarks/accuracy.py``; CUDA < 0.17 held-out records: |logged - calculated| GiB median / p90 over 62, and |%| over
the 29 with |logged| >= 0.25 GiB): the borrowed line with rho over the warm-up terms of ``moe_kernels`` and the five
backend classes 0.094 / 0.244 GiB, 17.5% / 57.7%; the same with one MLA and one hybrid class 0.088 / 0.488 GiB,
33.6% / 98.8%; the former model (an own line [1] fitted with rho over the whole forward) 0.129 / 0.462 GiB,
67% / 109%. Cross-validated by model on the fit split (``benchmarks/fit.py``, 5 folds): 0.255 GiB mean |error| against
0.309 for the former model. CUDA 0.17-0.19: adding a release there fitted rho 0.12 under the former model and made
the leave-one-model-out error worse (0.620 -> 0.793): not fitted (the logs show no release from 0.17, for a reason
not established). ROCm builds run no FlashInfer autotune and no DeepGEMM: not fitted."""

RHO_GRID_STEP = 0.001
"""rho is fitted by a grid over its bounds (``released_bytes`` is not linear in it where DeepGEMM's reserve binds)."""


def _line(base: CoefficientSet, bucket: str, platform: str) -> dict[str, float]:
    prefix = f"cuda_graph_pool_gib/{bucket}/{platform}/"
    return {e[len(prefix):]: v.value for e, v in base.entries.items() if e.startswith(prefix)}


def _release(base: CoefficientSet, bucket: str, platform: str) -> float:
    value = base.value(f"cuda_graph_release/{bucket}/{platform}")
    return 0.0 if value is None else value


def _fit_graph_pool(observations: list[Observation], base: CoefficientSet) -> dict[str, Fitted]:
    """The CUDA-graph pool line per version bucket and platform (``calculator/cuda_graphs.py``), and rho where the
    log shows the first capture releasing what the pre-capture warm-ups left cached (logged = pool - released).

    Groups not in ``GRAPH_RELEASE_FITS`` hold rho at the base set's value (0 unless fitted) and fit the pool (logged
    + released, scaled to the reference capture count) by least squares on [1, layers per rank, MLA, hybrid],
    keeping the columns that vary in the group; a group whose median pool is <= 0 gets the zero line (the log then
    shows the allocator releasing cached blocks, not the pool); a small group scales the nearest older line. Groups
    in ``GRAPH_RELEASE_FITS`` then take the named newer bucket's line and fit rho alone (``_fit_release``).
    Uncertainty is not stated for least-squares terms."""
    import numpy as np  # fitting only; the calculator never needs numpy

    rows: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    for o in observations:
        if o.graph_scaled_gib is not None and o.bucket:
            rows[(o.bucket, o.platform)].append(o)
    lines: dict[tuple[str, str], dict[str, float]] = {}
    how: dict[tuple[str, str], str] = {}
    releases: dict[tuple[str, str], float] = {}

    order = list(k.VERSION_BUCKETS)
    for bucket in order:
        for platform in ("cuda", "rocm"):
            group = rows.get((bucket, platform), [])
            if not group or (bucket, platform) in GRAPH_RELEASE_FITS:
                continue
            rho = _release(base, bucket, platform)
            held = f"; pool = logged + released (rho {rho:g} held)" if rho else ""
            y = np.array([o.graph_scaled_gib for o in group]) + np.array([o.graph_release.released(rho)
                                                                           for o in group])
            if float(np.median(y)) <= 0:
                line, note = {"base": 0.0, "per_layer": 0.0}, "median logged <= 0: zero line"
            elif len(group) >= MIN_GRAPH_RECORDS and len({o.graph_layers for o in group}) > 1:
                columns = {"base": np.ones(len(group)), "per_layer": np.array([float(o.graph_layers) for o in group]),
                           **{n: np.array([float(o.graph_backend == n) for o in group])
                              for n in GRAPH_POOL_TERMS[2:]}}
                used = ["base"] + [n for n in GRAPH_POOL_TERMS[1:] if np.ptp(columns[n]) > 0]
                solution, *_ = np.linalg.lstsq(np.column_stack([columns[n] for n in used]), y, rcond=None)
                line = {n: float(v) for n, v in zip(used, solution, strict=True)}
                line.setdefault("per_layer", 0.0)
                note = "least squares on [1, layers, mla, mla_sparse, mamba, linear]"
            else:
                older = [b for b in order[: order.index(bucket)] if (b, platform) in lines or _line(base, b, platform)]
                if not older:
                    continue
                ref = lines.get((older[-1], platform)) or _line(base, older[-1], platform)
                ratios = [float(g) / p for o, g in zip(group, y, strict=True)
                          if (p := line_gib(ref, o.graph_layers, o.graph_backend)) > 0]
                if not ratios:
                    continue
                scale = statistics.median(ratios)
                line = {n: v * scale for n, v in ref.items()}
                note = f"the {older[-1]} line x {scale:.3f} (median logged / line)"
            lines[(bucket, platform)] = line
            how[(bucket, platform)] = note + held
    for (bucket, platform), lender in GRAPH_RELEASE_FITS.items():
        group = rows.get((bucket, platform), [])
        line = lines.get((lender, platform)) or _line(base, lender, platform)
        if not group or not line:
            continue
        fitted_rho = _fit_release(group, line)
        if fitted_rho is None:
            continue
        lines[(bucket, platform)] = dict(line)
        releases[(bucket, platform)] = fitted_rho
        how[(bucket, platform)] = (f"the {lender} line (same capture code); rho by least squares on logged = line - "
                                   "max(DeepGEMM reserve, rho x dense forward + MoE per-call buffers)")
    out = {}
    for (bucket, platform), line in lines.items():
        group = rows[(bucket, platform)]
        models = [o.model for o in group]
        for term, value in line.items():
            entry_id = f"cuda_graph_pool_gib/{bucket}/{platform}/{term}"
            low, high = BOUNDS["cuda_graph_pool_gib"]
            out[entry_id] = Fitted(entry_id, min(max(value, low), high), value, len(group),
                                   tuple(sorted(set(models))), None, how[(bucket, platform)])
    for (bucket, platform), rho in releases.items():
        entry_id = f"cuda_graph_release/{bucket}/{platform}"
        group = rows[(bucket, platform)]
        out[entry_id] = Fitted(entry_id, rho, rho, len(group), tuple(sorted({o.model for o in group})), None,
                               how[(bucket, platform)])
    return out


def _fit_release(group: list[Observation], line: dict[str, float]) -> float | None:
    """rho minimizing the squared error of logged = line - ``released_bytes`` over the group (all at the reference
    capture count), searched on a grid over its bounds; None where the records cannot determine it (fewer than
    ``MIN_GRAPH_RECORDS``, or no dense warm-up forward among them)."""
    import numpy as np

    if len(group) < MIN_GRAPH_RECORDS or not any(o.graph_release.dense > 0 for o in group):
        return None
    pool = np.array([line_gib(line, o.graph_layers, o.graph_backend) for o in group])
    logged = np.array([o.graph_scaled_gib for o in group], dtype=float)
    low, high = BOUNDS["cuda_graph_release"]
    grid = np.arange(low, high + RHO_GRID_STEP / 2, RHO_GRID_STEP)
    errors = [float(np.sum((pool - np.array([o.graph_release.released(rho) for o in group]) - logged) ** 2))
              for rho in grid]
    return round(float(grid[int(np.argmin(errors))]), 3)


def _fit_rocm_load(observations: list[Observation]) -> dict[str, Fitted]:
    """The ROCm load-figure reserves (``calculator/platform.py``), from what the logged weights hold beyond the
    tensors and the exact terms, in this order: the load growth per GPUs per replica (16-bit dense profiles), the
    reserve fraction of 16-bit expert bytes (16-bit MoE), of one FP8 MoE layer's expert bytes (FP8 MoE), and of the
    16-bit bytes quantized while loading (online FP8); each a median."""
    rest = [o for o in observations if o.rocm_residual_gib is not None and o.rocm_features is not None]
    out: dict[str, Fitted] = {}
    growth: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for o in rest:
        f = o.rocm_features
        assert f is not None and o.rocm_residual_gib is not None
        if not f.moe16_expert_bytes and not f.fp8_moe_layer_bytes and not f.fp8_largest_weight_elements \
                and not f.online_quantized16_bytes:
            growth[o.gpus].append((o.rocm_residual_gib, o.model))
    for gpus, pts in growth.items():
        fitted = _median_fit(f"rocm_load_growth_gib/{gpus}", pts, "median residual of 16-bit dense profiles")
        if fitted:
            out[fitted.entry_id] = fitted
    table = {int(e.split("/")[1]): f.value for e, f in out.items()}

    def growth_at(gpus: int) -> float:
        sizes = sorted(table)
        return table[max((s for s in sizes if s <= gpus), default=sizes[0])] if sizes else 0.0

    kinds: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for o in rest:
        f, r = o.rocm_features, (o.rocm_residual_gib or 0.0) - growth_at(o.gpus)
        assert f is not None
        if f.moe16_expert_bytes:
            kinds["moe16_reserve_fraction"].append((r * GiB / f.moe16_expert_bytes, o.model))
        if f.fp8_moe_layer_bytes:
            kinds["fp8_moe_layer_fraction"].append((r * GiB / f.fp8_moe_layer_bytes, o.model))
        if f.online_quantized16_bytes and not f.fp8_moe_layer_bytes and not f.moe16_expert_bytes:
            kinds["online_quant16_fraction"].append((r * GiB / f.online_quantized16_bytes, o.model))
    for term, pts in kinds.items():
        fitted = _median_fit(f"rocm_load/{term}", pts, f"median of the residual over the {term} bytes")
        if fitted:
            out[fitted.entry_id] = fitted
    return out


def _with(base: CoefficientSet, fitted: dict[str, Fitted], name: str) -> CoefficientSet:
    entries = dict(base.entries)
    for f in fitted.values():
        entries[f.entry_id] = Entry(f.entry_id, f.value, {})
    return CoefficientSet(name, entries, None, {})


# ------------------------------------------------------------------------------------------------ evaluation

def predict(o: Observation, coefficients: CoefficientSet | None) -> dict[str, float]:
    """The calculator's values of the evaluated quantities for an observation's profile, with a coefficient set."""
    est = estimate(replace(o.request, calibration=coefficients))
    pg = est.per_gpu_bytes
    return {
        "weights": float(pg["weights"]),
        "kv_cache": float(est.details.get("kv_cache_available_bytes", pg["kv_cache"])),
        "kv_cache_tokens": float(est.kv_cache_tokens or 0),
        "activations": float(pg["activations"]),
        "non_torch": float(pg["non_torch"]),
        "cuda_graphs": float(pg["cuda_graphs"]),
    }


@dataclass
class Errors:
    """Held-out errors of one quantity: signed percent (of profiled) and absolute difference (bytes or tokens)."""

    pcts: list[float] = field(default_factory=list)
    diffs: list[float] = field(default_factory=list)

    def add(self, profiled: float, calculated: float) -> None:
        self.diffs.append(profiled - calculated)
        if profiled:
            self.pcts.append((profiled - calculated) / abs(profiled) * 100)

    def score(self, quantity: str) -> float | None:
        """Mean |percent| for the large quantities, mean |difference| in GiB for the small ones."""
        if quantity in PCT_COMPONENTS:
            return statistics.fmean(abs(p) for p in self.pcts) if self.pcts else None
        return statistics.fmean(abs(d) for d in self.diffs) / GiB if self.diffs else None

    def summary(self, quantity: str) -> dict[str, Any]:
        unit = "%" if quantity in PCT_COMPONENTS else "GiB"
        return {"n": len(self.diffs), "score": self.score(quantity), "score_unit": f"mean |error| {unit}",
                "median_abs_pct": statistics.median(abs(p) for p in self.pcts) if self.pcts else None}


@dataclass(frozen=True)
class ComponentResult:
    quantity: str
    n: int
    before: float | None
    after: float | None
    unit: str
    before_median_pct: float | None
    after_median_pct: float | None

    @property
    def worse(self) -> bool:
        return self.before is not None and self.after is not None and self.after > self.before + WORSE_TOLERANCE

    @property
    def better(self) -> bool:
        return self.before is not None and self.after is not None and self.after < self.before - WORSE_TOLERANCE


def model_folds(models: list[str], k: int) -> dict[str, int]:
    """Deal models into k folds by a hash of their id (deterministic; a model is in exactly one fold)."""
    ordered = sorted(set(models), key=lambda m: hashlib.sha256(m.encode()).hexdigest())
    return {m: i % k for i, m in enumerate(ordered)}


def entry_ids_of(o: Observation) -> list[tuple[str, str]]:
    """The coefficient entries an observation's estimate uses, with the quantity that shows each best."""
    if o.engine == "transformers":
        return [(f"cuda_context_gib/{o.platform}", "non_torch")]
    ids = [(f"sampler_bytes_per_seq_vocab/{o.bucket}", "kv_cache"),
           (f"non_torch_gib/{o.bucket}/{o.platform}/{o.gpus}", "kv_cache"),
           *((f"cuda_graph_pool_gib/{o.bucket}/{o.platform}/{t}", "cuda_graphs")
             for t in ("base", "per_layer", o.graph_backend) if t != "standard")]
    if o.graph_release.dense > 0:
        ids.append((f"cuda_graph_release/{o.bucket}/{o.platform}", "cuda_graphs"))
    if o.rocm_features is not None:
        ids += [(f"rocm_load/{t}", "weights") for t in ("moe16_reserve_fraction", "fp8_moe_layer_fraction",
                                                        "online_quant16_fraction")]
        ids += [(f"rocm_load_growth_gib/{o.gpus}", "weights")]
    return ids


@dataclass
class CrossValidation:
    folds: int
    fold_of_model: dict[str, int]
    components: list[ComponentResult]
    per_entry: dict[str, dict[str, Any]]
    note: str | None = None
    """Why cross-validation could not run (fewer than two models)."""

    @property
    def worse(self) -> list[ComponentResult]:
        return [c for c in self.components if c.worse]


def cross_validate(observations: list[Observation], base: CoefficientSet, k: int = DEFAULT_FOLDS) -> CrossValidation:
    models = sorted({o.model for o in observations})
    if len(models) < 2:
        return CrossValidation(0, {}, [], {}, note=f"cross-validation needs profiles of at least 2 models "
                                                 f"(got {len(models)})")
    k = max(2, min(k, len(models)))
    fold_of = model_folds(models, k)
    before: dict[str, Errors] = defaultdict(Errors)
    after: dict[str, Errors] = defaultdict(Errors)
    entry_before: dict[tuple[str, str], Errors] = defaultdict(Errors)
    entry_after: dict[tuple[str, str], Errors] = defaultdict(Errors)
    for fold in range(k):
        train = [o for o in observations if fold_of[o.model] != fold]
        held = [o for o in observations if fold_of[o.model] == fold]
        fitted = _with(base, fit_observations(train, base), f"fold {fold}")
        for o in held:
            p_base, p_fit = predict(o, base), predict(o, fitted)
            for q, profiled in o.measured.items():
                before[q].add(profiled, p_base[q])
                after[q].add(profiled, p_fit[q])
            for entry_id, q in entry_ids_of(o):
                if q in o.measured:
                    entry_before[(entry_id, q)].add(o.measured[q], p_base[q])
                    entry_after[(entry_id, q)].add(o.measured[q], p_fit[q])
    components = []
    for q in EVALUATED:
        if q not in before:
            continue
        b, a = before[q].summary(q), after[q].summary(q)
        components.append(ComponentResult(q, b["n"], b["score"], a["score"], b["score_unit"],
                                          b["median_abs_pct"], a["median_abs_pct"]))
    per_entry = {}
    for (entry_id, q), errs in entry_before.items():
        b, a = errs.summary(q), entry_after[(entry_id, q)].summary(q)
        per_entry[entry_id] = {"quantity": q, "n": b["n"], "unit": b["score_unit"],
                               "before": _round(b["score"]), "after": _round(a["score"])}
    return CrossValidation(k, fold_of, components, per_entry)


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


# ------------------------------------------------------------------------------------------------ the calibration

QUANTITY_FAMILIES: dict[str, tuple[str, ...]] = {
    "weights": ("rocm_load", "rocm_load_growth_gib"),
    "kv_cache": ("sampler_bytes_per_seq_vocab", "non_torch_gib", "rocm_load", "rocm_load_growth_gib"),
    "kv_cache_tokens": ("sampler_bytes_per_seq_vocab", "non_torch_gib", "rocm_load", "rocm_load_growth_gib"),
    "activations": ("sampler_bytes_per_seq_vocab",),
    "non_torch": ("non_torch_gib", "cuda_context_gib"),
    "cuda_graphs": ("cuda_graph_pool_gib", "cuda_graph_release"),
}
"""The coefficient families each compared quantity depends on: a family is refused when any of its quantities got
worse on held-out profiles."""


@dataclass
class Calibration:
    """The outcome of ``llmsizer calibrate``: the new set, what changed, the cross-validation and the verdict."""

    coefficients: CoefficientSet
    base: CoefficientSet
    fitted: dict[str, Fitted]
    """Every coefficient the profiles inform, fitted (applied or not)."""
    refused: dict[str, str]
    """Fitted coefficients NOT written (base value kept), with the reason: held-out error got worse."""
    unchanged: list[str]
    cross_validation: CrossValidation
    used: list[Observation]
    skipped: list[tuple[str, str]]
    forced: bool = False

    @property
    def applied(self) -> list[str]:
        return sorted(e for e in self.fitted if e not in self.refused)

    @property
    def accepted(self) -> bool:
        """True when cross-validation ran and at least one fitted coefficient survived it."""
        return self.cross_validation.folds >= 2 and bool(self.applied)

    @property
    def refusal(self) -> str | None:
        """Why nothing (or not everything) fitted is written; None when everything is."""
        cv = self.cross_validation
        if not self.fitted:
            return "the profiles carry no information about any coefficient"
        if cv.note:
            return cv.note
        if cv.worse:
            return "held-out error got worse for " + ", ".join(
                f"{c.quantity} ({c.before:.3f} -> {c.after:.3f} {c.unit.split()[-1]})" for c in cv.worse)
        return None


def _refused(fitted: dict[str, Fitted], cv: CrossValidation) -> dict[str, str]:
    if cv.note:
        return {e: cv.note for e in fitted}
    out: dict[str, str] = {}
    for comp in cv.worse:
        for e in fitted:
            if e.split("/")[0] in QUANTITY_FAMILIES.get(comp.quantity, ()) and e not in out:
                out[e] = (f"held-out {comp.quantity} error got worse ({comp.before:.3f} -> {comp.after:.3f} "
                          f"{comp.unit.split()[-1]})")
    return out


def calibrate(observations: list[Observation], base: CoefficientSet, *, name: str,
              skipped: list[tuple[str, str]] | None = None, folds: int = DEFAULT_FOLDS,
              produced_by: str | None = None, today: str | None = None, force: bool = False) -> Calibration:
    """Fit on every observation, cross-validate, and build the coefficient set with per-entry provenance.

    A fitted coefficient is written only when no quantity it feeds got worse on held-out profiles (``force``
    writes every fitted one); the others keep the base value and are reported as refused.
    """
    if not observations:
        raise LlmsizerError("no usable profile: nothing to calibrate on" + (
            f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
    today = today or datetime.now(timezone.utc).date().isoformat()
    fitted = fit_observations(observations, base)
    cv = cross_validate(observations, base, folds)
    # Re-fitting a set under its own name (benchmarks/fit.py regenerating the built-in set) compares the set with
    # itself fitted on the same profiles: "before" is in-sample, so it cannot judge; only "after" is held-out.
    refit = base.name == name
    refused = {} if refit else _refused(fitted, cv)
    entries = dict(base.entries)
    for f in fitted.values():
        if f.entry_id in refused and not force:
            old = base.entries.get(f.entry_id)
            if old is not None:
                entries[f.entry_id] = Entry(f.entry_id, old.value, {
                    **old.provenance, "status": f"refused, base value kept: {refused[f.entry_id]}",
                    "refused_value": round(f.value, 4)})
            continue
        provenance: dict[str, Any] = {
            "status": "fitted" + (f" (clamped from {f.raw:.4g} to the physical bound)" if f.clamped else "")
            + (f" (forced: {refused[f.entry_id]})" if f.entry_id in refused else ""),
            "unit": UNITS[f.entry_id.split("/")[0]],
            "fitted": today,
            "profiles": f.n,
            "models": list(f.models),
            "uncertainty": _round(f.uncertainty),
            "method": f.method,
        }
        if f.entry_id in cv.per_entry:
            provenance["cv"] = cv.per_entry[f.entry_id]
        previous = base.value(f.entry_id)
        if previous is not None:
            provenance["previous"] = previous
        entries[f.entry_id] = Entry(f.entry_id, round(f.value, DIGITS[f.entry_id.split("/")[0]]), provenance)
    unchanged = sorted(e for e in base.entries if e not in fitted)
    if base.name != name:
        for entry_id in unchanged:
            old = base.entries[entry_id]
            entries[entry_id] = Entry(entry_id, old.value, {
                **old.provenance, "status": f"unchanged from {base.name!r}: no information in these profiles"})
    versions = sorted({o.version for o in observations if o.version},
                      key=lambda v: tuple(int(x) for x in v.split(".")))
    meta = {
        "created": today,
        "produced_by": produced_by or "llmsizer calibrate",
        "base": base.name,
        "scope": {"engine_versions": versions, "platforms": sorted({o.platform for o in observations})},
        "profiles": {"count": len(observations), "models": len({o.model for o in observations}),
                     "files": sorted(o.label for o in observations)},
        "cross_validation": {
            "folds": cv.folds, "grouped_by": "model", "note": cv.note,
            "before": "in-sample (the set re-fitted on the profiles it was fitted on)" if refit
            else f"held-out, with {base.name!r}",
            "components": {c.quantity: {"n": c.n, "unit": c.unit, "before": _round(c.before),
                                        "after": _round(c.after)} for c in cv.components},
        },
    }
    result = CoefficientSet(name, entries, None, meta)
    return Calibration(result, base, fitted, {} if force else refused, unchanged, cv, observations,
                       skipped or [], forced=force and bool(refused))
