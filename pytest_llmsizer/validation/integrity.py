"""Integrity checks: is a profile a sound measurement before anyone compares a calculator against it?

The original LLM Sizer wrote these checks down (its data-quality script and the "ready" rule in its validation
guide: peak above baseline by more than 40%, a reasonable per-GPU spread, a breakdown that adds up, confidence
"high" everywhere) but implemented only some, with fixed thresholds (notes/llm-sizer-origin.md sections 3.7, 3.8
and 6). Here each check is a small pure function over a :class:`Profile`; its severity and threshold come from the
``integrity`` section of tolerances.yaml (``CheckConfig``; defaults and the meaning of each threshold in
``INTEGRITY_DEFAULTS``). Every number is per GPU. A check that lacks the data it needs is reported as not
applicable, with the reason, never as passed.

Derived (formula) components are still checked: soundness is about the numbers a profile holds, whatever produced
them. Messages say "derived" next to such a number, because then the fault may lie in the formula, not the run.

Pure: no pytest import, no I/O. Findings hold plain builtins only, so they travel over xdist.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pytest_llmsizer.calculator.engines import cuda_graphs_in_budget, vllm_kv_pool_bytes
from pytest_llmsizer.calculator.versions import parse_vllm_version
from pytest_llmsizer.calculator.weights import dtype_bytes, quantized_bytes_per_param
from pytest_llmsizer.catalog.arch import QuantSpec
from pytest_llmsizer.errors import EstimateError
from pytest_llmsizer.profile.model import Component, Confidence, Profile, Provenance, Quantization
from pytest_llmsizer.units import GiB, MiB
from pytest_llmsizer.validation.tolerances import INTEGRITY_DEFAULTS, CheckConfig

__all__ = ["Finding", "IntegrityReport", "bytes_per_parameter", "check_profile"]

Values = dict[str, float | str]


@dataclass(frozen=True)
class Finding:
    check: str
    """One of ``INTEGRITY_DEFAULTS``."""
    severity: str
    """``"fail"`` or ``"warn"``."""
    message: str
    """Which check, the numbers (GiB), the threshold, and what probably went wrong."""
    values: Values = field(default_factory=dict)
    """The numbers behind the message (plain builtins: they travel over xdist)."""


@dataclass(frozen=True)
class IntegrityReport:
    findings: tuple[Finding, ...]
    applied: tuple[str, ...]
    """Checks that had the data they need and ran."""
    not_applicable: dict[str, str]
    """Check -> why it could not run (data missing)."""
    off: tuple[str, ...]
    """Checks turned off by configuration."""

    @property
    def failed(self) -> bool:
        return any(f.severity == "fail" for f in self.findings)


# -- small helpers ------------------------------------------------------------------------------------------------

_Problem = tuple[str, Values]
_Result = list[_Problem] | str  # problems found (possibly none), or why the check does not apply


def _g(n_bytes: float) -> str:
    return f"{n_bytes / GiB:.2f} GiB"


def _gf(n_bytes: float) -> float:
    return round(n_bytes / GiB, 4)


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _tag(comp: Component | None) -> str:
    return " (derived)" if comp is not None and comp.provenance is Provenance.DERIVED else ""


def _per_rank(comp: Component, n: int) -> list[int]:
    """The component on each of ``n`` GPUs: its per-GPU list when read rank by rank, else ``bytes`` for every GPU."""
    if comp.per_gpu_bytes is not None and len(comp.per_gpu_bytes) == n:
        return list(comp.per_gpu_bytes)
    return [comp.bytes] * n


def _gpus(indices: list[int]) -> str:
    return ", ".join(str(i) for i in indices)


# -- bytes per parameter ------------------------------------------------------------------------------------------

_FOUR_BIT_METHODS = {"awq": "awq", "gptq": "gptq", "auto-round": "gptq", "autoround": "gptq", "marlin": "gptq",
                     "bitsandbytes": "bitsandbytes-4bit", "bnb": "bitsandbytes-4bit", "int4": "int4", "w4a16": "int4"}
_EIGHT_BIT_METHODS = {"fp8": "fp8", "fbgemm": "fp8", "int8": "int8", "w8a8": "int8", "w8a16": "int8",
                      "bitsandbytes": "bitsandbytes-8bit", "bnb": "bitsandbytes-8bit"}
_NOMINAL_HIDDEN = 4096
"""Per-channel scales cost 1/hidden bytes per parameter (< 0.1%); a profile does not say its model's width."""


def quant_spec(quantization: Quantization) -> QuantSpec | None:
    """The calculator's storage format (``catalog.arch.QuantSpec``) for a profile's declared quantization, or None
    when the declaration names neither a known method nor its bits."""
    method = quantization.method.lower()
    if "mxfp4" in method:
        return QuantSpec(method="mxfp4", bits=4, group_size=32, zero_point=False)
    if "nvfp4" in method or "fp4" in method:
        return QuantSpec(method="nvfp4", bits=4, group_size=16, zero_point=False)
    bits = quantization.bits
    table = _EIGHT_BIT_METHODS if bits == 8 else _FOUR_BIT_METHODS if bits == 4 else {}
    kind = next((v for k, v in table.items() if k in method), None)
    if bits is None:
        kind = next((v for k, v in _EIGHT_BIT_METHODS.items() if k in method and k not in ("bitsandbytes", "bnb")),
                    None)
        bits = 8 if kind else None
        if kind is None:
            kind = next((v for k, v in _FOUR_BIT_METHODS.items() if k in method), None)
            bits = 4 if kind else None
    if bits is None:
        return None
    if bits >= 16:
        return QuantSpec(method="int4", bits=16, group_size=-1, zero_point=False)  # 16 bits: no real quantization
    kind = kind or ("int8" if bits == 8 else "int4")
    group = quantization.group_size if quantization.group_size is not None else (
        None if kind in ("fp8", "int8", "bitsandbytes-8bit") else 128)
    return QuantSpec(method=kind, bits=bits, group_size=group, zero_point=kind in ("awq", "gptq"))  # type: ignore[arg-type]


def bytes_per_parameter(quantization: Quantization | None, dtype: str | None) -> float | None:
    """Average bytes per parameter of a checkpoint, from the profile's declared quantization or weight dtype, priced
    by the calculator's own weights code (``calculator.weights``: scales, zero points, GPTQ's g_idx, MXFP4/NVFP4
    block scales). Unquantized weights count their dtype's bytes (2 when unknown). It ignores the layers that stay
    in 16 bits (embeddings, lm_head, norms), so a quantized model weighs somewhat more than this predicts. Returns
    None when the quantization names neither a known method nor its bits.
    """
    if quantization is None:
        try:
            return float(dtype_bytes(dtype))
        except EstimateError:
            return 2.0
    spec = quant_spec(quantization)
    if spec is None:
        return None
    if spec.bits >= 16:
        return spec.bits / 8
    return float(quantized_bytes_per_param(spec, _NOMINAL_HIDDEN))


# -- the checks ---------------------------------------------------------------------------------------------------

_BASELINE_FLOOR = 64 * MiB
"""Least increase that counts as a real peak when the baseline is about 0 (threshold x 0 would accept any byte)."""


def _peak_vs_baseline(profile: Profile, threshold: float, _params: int | None) -> _Result:
    dev = profile.measurements.device
    if dev is None or dev.baseline_bytes is None or dev.peak_bytes is None:
        return "needs measurements.device.baseline_bytes and peak_bytes"
    derived = " (derived)" if dev.provenance is Provenance.DERIVED else ""
    base, peak = dev.baseline_bytes, dev.peak_bytes
    equal = [i for i in range(len(base)) if peak[i] == base[i]]
    small = [i for i in range(len(base)) if peak[i] != base[i]
             and peak[i] - base[i] <= max(threshold * base[i], _BASELINE_FLOOR)]
    problems: list[_Problem] = []
    if equal:
        i = equal[0]
        problems.append((
            f"peak_vs_baseline: device peak equals baseline on GPU {_gpus(equal)} ({_g(peak[i])}{derived} on GPU {i}; "
            f"the peak must exceed the baseline by more than {threshold:g} x baseline): the peak was probably "
            "measured after the engine exited, or allocation was lazy",
            {"gpu": float(i), "gpus": _gpus(equal), "baseline_gib": _gf(base[i]), "peak_gib": _gf(peak[i]),
             "increase_share": 0.0, "threshold": threshold},
        ))
    if small:
        i = min(small, key=lambda j: peak[j] - base[j])
        share = (peak[i] - base[i]) / base[i] if base[i] > 0 else 0.0
        needed = max(threshold * base[i], _BASELINE_FLOOR)
        below = " (the peak is below the baseline)" if peak[i] < base[i] else ""
        problems.append((
            f"peak_vs_baseline: GPU {_gpus(small)}: device peak {_g(peak[i])}{derived} is only {_g(peak[i] - base[i])} "
            f"above the baseline {_g(base[i])} on GPU {i} ({_pct(share)}; needs more than {_g(needed)}, threshold "
            f"{threshold:g} x baseline){below}: the peak was probably read after the engine exited or before it "
            "allocated, or the baseline already held this run's memory",
            {"gpu": float(i), "gpus": _gpus(small), "baseline_gib": _gf(base[i]), "peak_gib": _gf(peak[i]),
             "increase_share": round(share, 6), "threshold": threshold},
        ))
    return problems


def _tp_groups(profile: Profile, values: list[int]) -> list[tuple[int, list[int]]] | str:
    """Split per-GPU values (rank order, TP innermost) into groups that should hold equal memory."""
    tp, pp = profile.engine.tensor_parallel_size, profile.engine.pipeline_parallel_size
    if tp >= 2:
        return [(s, values[s:s + tp]) for s in range(0, len(values) - tp + 1, tp)]
    if pp > 1:
        return "tensor_parallel_size is 1 and pipeline stages hold different layers, so they need not match"
    return [(0, values)]  # replicas (data parallel) should match too


def _tp_imbalance(profile: Profile, threshold: float, _params: int | None) -> _Result:
    series: list[tuple[str, str, list[int]]] = []
    dev = profile.measurements.device
    if dev is not None and dev.peak_bytes is not None and len(dev.peak_bytes) >= 2:
        tag = " (derived)" if dev.provenance is Provenance.DERIVED else ""
        series.append(("device peak", tag, list(dev.peak_bytes)))
    else:
        comps = profile.measurements.components
        for name in ("weights", "kv_cache", "total"):
            comp = getattr(comps, name)
            if comp is not None and comp.per_gpu_bytes is not None and len(comp.per_gpu_bytes) >= 2:
                series.append((name, _tag(comp), list(comp.per_gpu_bytes)))
    if not series:
        return "needs >= 2 per-GPU values: measurements.device.peak_bytes, or per_gpu_bytes of weights/kv_cache/total"
    problems: list[_Problem] = []
    ran = False
    for label, tag, values in series:
        groups = _tp_groups(profile, values)
        if isinstance(groups, str):
            return groups
        for start, group in groups:
            mean = sum(group) / len(group)
            if len(group) < 2 or mean <= 0:
                continue
            ran = True
            spread = (max(group) - min(group)) / mean
            if spread > threshold:
                lo, hi = group.index(min(group)) + start, group.index(max(group)) + start
                problems.append((
                    f"tp_imbalance: {label}{tag} differs across ranks {start}..{start + len(group) - 1}: "
                    f"{_g(min(group))} on GPU {lo} to {_g(max(group))} on GPU {hi}, spread {_pct(spread)} of the "
                    f"mean {_g(mean)} (threshold {_pct(threshold)}): probably another process on one GPU, an uneven "
                    "shard (replicated layers), or values from different moments or runs",
                    {"series": label, "min_gib": _gf(min(group)), "max_gib": _gf(max(group)), "mean_gib": _gf(mean),
                     "spread": round(spread, 6), "threshold": threshold},
                ))
    if not ran:
        return "per-GPU values have a mean of 0"
    return problems


_PARTS = ("weights", "kv_cache", "activations", "non_torch", "cuda_graphs", "framework_overhead", "multi_gpu_overhead")
"""The components that make up ``total``."""


def _components_sum(profile: Profile, threshold: float, _params: int | None) -> _Result:
    comps = profile.measurements.components
    total = comps.total
    present = {n: c for n in _PARTS if (c := getattr(comps, n)) is not None}
    if total is None:
        return "needs a total component"
    if not present:
        return "needs at least one component besides total"
    n = profile.hardware.gpu_count
    per_gpu = total.per_gpu_bytes is not None or any(c.per_gpu_bytes is not None for c in present.values())
    ranks = range(n) if per_gpu else range(1)
    totals = _per_rank(total, n)
    parts = {name: _per_rank(c, n) for name, c in present.items()}
    worst: tuple[float, int, int, int] | None = None
    for r in ranks:
        s, t = sum(v[r] for v in parts.values()), totals[r]
        rel = abs(s - t) / t if t > 0 else (math.inf if s != t else 0.0)
        if rel > threshold and (worst is None or rel > worst[0]):
            worst = (rel, r, s, t)
    if worst is None:
        return []
    rel, r, s, t = worst
    missing = [p for p in _PARTS if p not in present]
    terms = " + ".join(f"{name} {_g(v[r])}{_tag(present[name])}" for name, v in parts.items())
    if s < t:
        cause = "the breakdown misses memory" + (f" (absent: {', '.join(missing)})" if missing else "") + \
            ", or the total includes memory outside the engine (baseline, CUDA context, another process)"
    else:
        cause = "a component is counted twice, or the total is from another moment or is not per GPU"
    where = f" on GPU {r}" if per_gpu else ""
    rel_text = _pct(rel) if math.isfinite(rel) else "infinitely (total is 0)"
    return [(
        f"components_sum: {terms} = {_g(s)} vs total {_g(t)}{_tag(total)}{where}: off by {rel_text} "
        f"(threshold {_pct(threshold)}): {cause}",
        {"gpu": float(r), "sum_gib": _gf(s), "total_gib": _gf(t),
         "relative": round(rel, 6) if math.isfinite(rel) else "inf", "threshold": threshold,
         "components": ",".join(parts), "missing": ",".join(missing)},
    )]


_BUDGET_PARTS = ("weights", "activations", "non_torch", "kv_cache")
_KV_MEMORY_ARGS = ("kv_cache_memory", "kv_cache_memory_bytes", "kv-cache-memory")


def _vllm_budget_identity(profile: Profile, threshold: float, _params: int | None) -> _Result:
    """vLLM sizes the KV pool so that weights + activation peak + non-torch (+ the CUDA-graph estimate, from v0.21)
    + KV = utilization x total memory (notes/memory-physics.md 2.1; the identity is the calculator's own,
    ``calculator.engines.vllm_kv_pool_bytes``). When the profile does not say its vLLM version, the identity
    passes with or without the profile's cuda_graphs charged."""
    eng, hw, comps = profile.engine, profile.hardware, profile.measurements.components
    if eng.name != "vllm":
        return f"applies to vLLM only (engine is {eng.name})"
    if eng.gpu_memory_utilization is None or hw.memory_per_gpu_bytes is None:
        return "needs engine.gpu_memory_utilization and hardware.memory_per_gpu_bytes"
    if eng.extra_args and any(a in eng.extra_args for a in _KV_MEMORY_ARGS):
        return "--kv-cache-memory sets the KV pool directly; the utilization budget does not apply"
    missing = [p for p in _BUDGET_PARTS if getattr(comps, p) is None]
    if missing:
        return f"needs weights, activations, non_torch and kv_cache (missing: {', '.join(missing)})"
    parts = {p: getattr(comps, p) for p in _BUDGET_PARTS}
    graphs = comps.cuda_graphs
    n = hw.gpu_count
    involved = [*parts.values(), *([graphs] if graphs is not None else [])]
    per_gpu = any(c.per_gpu_bytes is not None for c in involved)
    util, memory = eng.gpu_memory_utilization, hw.memory_per_gpu_bytes
    budget = util * memory
    values = {p: _per_rank(c, n) for p, c in parts.items()}
    graph_values = _per_rank(graphs, n) if graphs is not None else None
    in_budget = cuda_graphs_in_budget(parse_vllm_version(eng.version), eng.enforce_eager)
    # the graph charges the identity may hold with: none, the profile's pool, or either when the version is unknown
    charges = [False] if graph_values is None or in_budget is False else [True] if in_budget else [False, True]
    problems: list[_Problem] = []
    for r in range(n) if per_gpu else range(1):
        def residual(charged: bool, r: int = r) -> float:
            """|measured KV - the pool the identity leaves| / budget."""
            pool = vllm_kv_pool_bytes(memory, util, weights=values["weights"][r],
                                      activations=values["activations"][r], non_torch=values["non_torch"][r],
                                      cuda_graphs=graph_values[r] if charged and graph_values else 0)
            return abs(values["kv_cache"][r] - pool) / budget

        rel = residual(charges[0])
        if any(residual(c) <= threshold for c in charges):
            continue
        s = sum(v[r] for v in values.values())
        with_graphs = ""
        if graph_values is not None and True in charges:
            rel_g = residual(True)
            with_graphs = f"; with cuda_graphs {_g(graph_values[r])} it is {_g(s + graph_values[r])}, {_pct(rel_g)}"
        terms = " + ".join(f"{_g(v[r])} {p}{_tag(parts[p])}" for p, v in values.items())
        cause = ("the KV pool or the memory total belongs to another run or rank, the utilization is not the one the "
                 "run used, or GB and GiB were mixed")
        problems.append((
            f"vllm_budget_identity{f' (GPU {r})' if per_gpu else ''}: {terms} = {_g(s)}, but "
            f"gpu_memory_utilization {util:g} x {_g(memory)} = {_g(budget)}: "
            f"off by {_pct(rel)} (threshold {_pct(threshold)}){with_graphs}: {cause}",
            {"gpu": float(r), "sum_gib": _gf(s), "budget_gib": _gf(budget), "relative": round(rel, 6),
             "utilization": util, "memory_per_gpu_gib": _gf(memory), "threshold": threshold},
        ))
        if not per_gpu:
            break
    return problems


def _impossible_values(profile: Profile, threshold: float, _params: int | None) -> _Result:
    """Threshold: slack as a share (weights may exceed the peak or the total by this much before it counts)."""
    comps, dev, n = profile.measurements.components, profile.measurements.device, profile.hardware.gpu_count
    weights, total, kv = comps.weights, comps.total, comps.kv_cache
    peak = dev.peak_bytes if dev is not None else None
    # values no measurement can hold (the loader rejects them in files; a profile built in code meets them here)
    problems: list[_Problem] = [
        (f"impossible_values: {path}: {message}", {"path": path, "threshold": threshold})
        for path, message in profile.physical_problems()
    ]
    if not problems and kv is None and (weights is None or (peak is None and total is None)):
        return "needs weights with a device peak or a total component, or a kv_cache component"
    if weights is not None:
        w = _per_rank(weights, n)
        for label, ref, tag in (
            ("device peak", peak, " (derived)" if dev is not None and dev.provenance is Provenance.DERIVED else ""),
            ("total", _per_rank(total, n) if total is not None else None, _tag(total)),
        ):
            if ref is None:
                continue
            bad = [i for i in range(n) if w[i] > ref[i] * (1 + threshold)]
            if bad:
                i = max(bad, key=lambda j: w[j] - ref[j])
                problems.append((
                    f"impossible_values: weights {_g(w[i])}{_tag(weights)} exceed the {label} {_g(ref[i])}{tag} "
                    f"on GPU {_gpus(bad)} (threshold: weights <= {label} x {1 + threshold:g}): the {label} was "
                    "probably read after the engine exited, summed or divided over GPUs, or in another unit",
                    {"gpu": float(i), "gpus": _gpus(bad), "weights_gib": _gf(w[i]),
                     ("peak_gib" if label == "device peak" else "total_gib"): _gf(ref[i]), "threshold": threshold},
                ))
    if kv is not None:
        k = _per_rank(kv, n) if kv.per_gpu_bytes is not None else [kv.bytes]
        bad = [i for i, v in enumerate(k) if v < 0]
        if bad:
            i = min(bad, key=lambda j: k[j])
            where = f" on GPU {_gpus(bad)}" if kv.per_gpu_bytes is not None else ""
            problems.append((
                f"impossible_values: kv_cache {_g(k[i])}{_tag(kv)} is negative{where} (threshold: >= 0 GiB): the "
                "engine could not start: no memory left for the KV cache",
                {"gpu": float(i), "kv_cache_gib": _gf(k[i]), "threshold": threshold},
            ))
    return problems


def _weights_vs_parameters(profile: Profile, threshold: float, params: int | None) -> _Result:
    weights = profile.measurements.components.weights
    if weights is None:
        return "needs a weights component"
    n_params = profile.model.num_parameters or params
    if not n_params:
        return "needs model.num_parameters (or num_parameters from the caller)"
    quant, dtype = profile.model.quantization, profile.model.dtype
    bpp = bytes_per_parameter(quant, dtype)
    if bpp is None:
        assert quant is not None
        return f"bytes per parameter unknown for quantization {quant.method!r} without bits"
    ranks = profile.engine.tensor_parallel_size * profile.engine.pipeline_parallel_size
    expected = n_params / ranks * bpp
    n = profile.hardware.gpu_count
    w = _per_rank(weights, n) if weights.per_gpu_bytes is not None else [weights.bytes]
    i = max(range(len(w)), key=lambda j: abs(w[j] / expected - 1))
    ratio = w[i] / expected
    if abs(ratio - 1) <= threshold:
        return []
    declared = f"{quant.method}{f' {quant.bits}-bit' if quant.bits else ''}" if quant else (dtype or "16-bit default")
    unquantized = n_params / ranks * (4.0 if (dtype or "").lower() in ("float32", "fp32", "float") else 2.0)
    if quant is not None and w[i] > expected and w[i] >= math.sqrt(expected * unquantized):
        # closer to the 16-bit figure than to the quantized one
        cause = (f"quantization may not be applied (16-bit weights would be {_g(unquantized)}), or a large share of "
                 "the model stays in 16 bits (embeddings, lm_head, attention, vision tower)")
    elif quant is not None and w[i] > expected:
        cause = ("more of the model than this table assumes stays in 16 bits (embeddings, lm_head, vision tower), "
                 "or the parameter count or dtype may be wrong")
    else:
        cause = "parameter count or dtype may be wrong"
    where = f" on GPU {i}" if weights.per_gpu_bytes is not None else ""
    return [(
        f"weights_vs_parameters: weights {_g(w[i])}{_tag(weights)}{where} vs expected {_g(expected)} "
        f"({n_params / 1e9:.3g}e9 parameters / {ranks} ranks x {bpp:.4g} bytes per parameter for {declared}): "
        f"ratio {ratio:.2f} (threshold +/-{_pct(threshold)}): {cause}",
        {"gpu": float(i), "weights_gib": _gf(w[i]), "expected_gib": _gf(expected), "ratio": round(ratio, 6),
         "num_parameters": float(n_params), "bytes_per_parameter": bpp, "ranks": float(ranks),
         "threshold": threshold, "declared": declared},
    )]


def _contaminated_baseline(profile: Profile, threshold: float, _params: int | None) -> _Result:
    """Threshold in GiB per GPU."""
    dev = profile.measurements.device
    if dev is None or dev.baseline_bytes is None:
        return "needs measurements.device.baseline_bytes"
    limit, baseline = threshold * GiB, dev.baseline_bytes
    bad = [i for i, b in enumerate(baseline) if b > limit]
    if not bad:
        return []
    i = max(bad, key=lambda j: baseline[j])
    b = baseline[i]
    derived = " (derived)" if dev.provenance is Provenance.DERIVED else ""
    return [(
        f"contaminated_baseline: device baseline {_g(b)}{derived} on GPU {_gpus(bad)} (highest on GPU {i}) is above "
        f"the threshold {threshold:g} GiB: memory already in use before the run (another process, or a previous run "
        "not cleaned up)",
        {"gpu": float(i), "gpus": _gpus(bad), "baseline_gib": _gf(b), "threshold": threshold},
    )]


_LEVEL = {Confidence.HIGH: 2, Confidence.MEDIUM: 1, Confidence.LOW: 0}
_LEVEL_NAME = {2: "high", 1: "medium", 0: "low"}


def _confidence(profile: Profile, threshold: float, _params: int | None) -> _Result:
    """Threshold: lowest level accepted (2 high, 1 medium, 0 low)."""
    present = profile.measurements.components.present()
    if not present:
        return "needs at least one component"
    low = {name: c for name, c in present.items() if _LEVEL[c.confidence] < threshold}
    if not low:
        return []
    listed = ", ".join(f"{name} ({c.confidence.value}{', derived' if c.provenance is Provenance.DERIVED else ''})"
                       for name, c in low.items())
    wanted = _LEVEL_NAME.get(math.ceil(threshold), f"level {threshold:g}")
    return [(
        f"confidence: {listed} below the lowest accepted confidence {wanted} (threshold level {threshold:g}; "
        "2 high, 1 medium, 0 low): the reader was unsure of these numbers; check them against the source "
        "before trusting a comparison",
        {"components": ",".join(low), "lowest_level": float(min(_LEVEL[c.confidence] for c in low.values())),
         "threshold": threshold},
    )]


_CHECKS: dict[str, Callable[[Profile, float, int | None], _Result]] = {
    "peak_vs_baseline": _peak_vs_baseline,
    "tp_imbalance": _tp_imbalance,
    "components_sum": _components_sum,
    "vllm_budget_identity": _vllm_budget_identity,
    "impossible_values": _impossible_values,
    "weights_vs_parameters": _weights_vs_parameters,
    "contaminated_baseline": _contaminated_baseline,
    "confidence": _confidence,
}
assert set(_CHECKS) == set(INTEGRITY_DEFAULTS), "every configured check needs an implementation"


def check_profile(
    profile: Profile, config: Mapping[str, CheckConfig], *, num_parameters: int | None = None
) -> IntegrityReport:
    """Run every integrity check on ``profile``.

    ``config`` maps check names to severity and threshold (usually ``Tolerances.integrity``); a check it does not
    name keeps its ``INTEGRITY_DEFAULTS`` entry. ``num_parameters`` is used by weights_vs_parameters when the
    profile does not carry ``model.num_parameters`` (e.g. from the model catalog).
    """
    findings: list[Finding] = []
    applied: list[str] = []
    not_applicable: dict[str, str] = {}
    off: list[str] = []
    for name, check in _CHECKS.items():
        cfg = config.get(name, INTEGRITY_DEFAULTS[name])
        if cfg.severity == "off":
            off.append(name)
            continue
        result = check(profile, float(cfg.threshold), num_parameters)
        if isinstance(result, str):
            not_applicable[name] = result
            continue
        applied.append(name)
        findings.extend(Finding(name, cfg.severity, message, values) for message, values in result)
    return IntegrityReport(tuple(findings), tuple(applied), not_applicable, tuple(off))
