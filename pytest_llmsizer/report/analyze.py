"""Analyse a CSV record of validations: statistics, groups, biases, success metrics, issues and recommendations.

The successor of the original guide's ``analyze-validation.py``, without its faults:

- an empty cell is a component the profile does not hold: it stays ``None`` and is left out of every statistic
  (the original turned blanks into 0, which pulled every mean towards a perfect score);
- the sign follows this project's convention, pct = (profiled - calculated) / profiled x 100, so a negative pct
  means the calculator is ABOVE the measurement (over-estimates), and every recommendation says which way;
- known failures (``accuracy_verdict == "xfailed"``) are listed apart, with their reasons, and never mixed into the
  metrics; a profile without a measured total is judged on its match basis (the quantity that set its band);
- size groups are the guide's three (small < 10B, medium 10-40B, large > 40B) plus "unknown" for a row without
  ``model_params_b``, instead of putting those at 0B among the small ones.

The success metrics are computed by the plugin's own function (``validation.metrics.compute_metrics``), over
the same facts: band shares from ``match_quality``, total error from ``difference_pct``, weights from
``weights_diff_pct``, the KV cache from ``kv_diff_pct``, known failures left out. A row without an accuracy
verdict (a hand-made CSV) counts. The CSV does not say whether a component was gated, so a derived (formula)
component a tolerances file leaves ungated would count here and not in the plugin's gate.

Pure apart from :func:`load_rows`, which reads the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import fmean, median
from typing import Any, Literal

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.report.csv_record import GUIDE_COLUMNS
from pytest_llmsizer.safe_io import UnsafePathError, max_record_bytes, read_regular
from pytest_llmsizer.validation.bands import ORDER
from pytest_llmsizer.validation.metrics import METRIC_QUANTITIES, Scored, compute_metrics
from pytest_llmsizer.validation.tolerances import GateConfig

Format = Literal["text", "markdown", "json"]

# thresholds of the issues (percent, on |error|)
CRITICAL_MEAN_PCT = 20.0
WARNING_MEAN_PCT = 10.0
COMPONENT_CRITICAL_PCT = 30.0
RECOMMEND_COMPONENT_PCT = 10.0
"""A component without a gate target gets a recommendation above this mean |error|."""
MUCH_WORSE_RATIO = 1.5
MUCH_WORSE_GAP_PCT = 2.0
"""Group A is "much worse" than B when its mean |error| is above 1.5 x B's and at least 2 points higher."""
FEW_PROFILES = 5

SIZE_GROUPS = ("small (< 10B)", "medium (10-40B)", "large (> 40B)", "unknown size")


@dataclass(frozen=True)
class _Component:
    key: str
    label: str
    pct_column: str | None
    gb_columns: tuple[str, str] | None = None
    """(profiled, calculated) GB columns: the absolute difference, and the pct when there is no pct column."""


COMPONENTS: tuple[_Component, ...] = (
    _Component("total", "total", "difference_pct", ("profiled_total_gb", "calculated_total_gb")),
    _Component("weights", "weights", "weights_diff_pct", ("profiled_weights_gb", "calculated_weights_gb")),
    _Component("kv_cache", "KV cache", "kv_diff_pct", ("profiled_kv_gb", "calculated_kv_gb")),
    _Component("kv_cache_tokens", "KV tokens", "kv_tokens_diff_pct"),
    _Component("activations", "activations", "activations_diff_pct",
               ("profiled_activations_gb", "calculated_activations_gb")),
    _Component("overhead", "overhead", "overhead_diff_pct", ("profiled_overhead_gb", "calculated_overhead_gb")),
    _Component("cuda_graphs", "CUDA graphs", None, ("profiled_cuda_graphs_gb", "calculated_cuda_graphs_gb")),
    _Component("max_concurrency", "max concurrency", "max_concurrency_diff_pct"),
)
"""Everything a row can hold a percentage for. ``overhead`` is the guide's single overhead column: the profile's
framework overhead when it has one, else its non-torch memory (column ``overhead_component``)."""

_LABEL = {c.key: c.label for c in COMPONENTS}


# ---------------------------------------------------------------------------------------------------------- loading

def load_rows(path: str | Path) -> list[dict[str, str | None]]:
    """Read a CSV record: one dict per row, keyed by column; empty cells are ``None``.

    Raises LlmsizerError when the file is missing or unreadable, is not CSV text, has no header, lacks any of the
    guide's columns (named), or has a row with more or fewer cells than the header.
    """
    p = Path(path)
    try:
        text = read_regular(p, limit=max_record_bytes(), what="CSV records",
                            setting="LLMSIZER_MAX_RECORD_MIB").decode("utf-8-sig")
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as reading text mode did
    except FileNotFoundError:
        raise LlmsizerError(f"{p}: no such file (expected a CSV record written with --llmsizer-csv)") from None
    except UnicodeDecodeError:
        raise LlmsizerError(f"{p}: not a CSV record (the file is not UTF-8 text)") from None
    except UnsafePathError as e:
        raise LlmsizerError(str(e)) from None
    except OSError as e:
        raise LlmsizerError(f"{p}: cannot read the CSV record: {e.strerror or e}") from None
    if "\x00" in text:
        raise LlmsizerError(f"{p}: not a CSV record (the file holds binary data)")
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise LlmsizerError(f"{p}: empty file, no CSV header")
        header = [h.strip() for h in header]
        missing = [c for c in GUIDE_COLUMNS if c not in header]
        if missing:
            raise LlmsizerError(
                f"{p}: not a llmsizer CSV record: the header lacks {len(missing)} of the guide's columns: "
                f"{', '.join(missing)} (header starts {header[:3]})"
            )
        dupes = sorted(name for name, n in Counter(header).items() if n > 1)
        if dupes:
            raise LlmsizerError(f"{p}: the header repeats column(s) {', '.join(dupes)}")
        rows: list[dict[str, str | None]] = []
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line
            if len(cells) != len(header):
                raise LlmsizerError(
                    f"{p}:{reader.line_num}: {len(cells)} cells, the header has {len(header)} columns"
                )
            rows.append({name: (cell if cell.strip() else None) for name, cell in zip(header, cells, strict=True)})
    except csv.Error as e:
        raise LlmsizerError(f"{p}: not a valid CSV file: {e}") from None
    return rows


# ---------------------------------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Stats:
    """Statistics of |pct| over the rows that hold a value."""

    n: int
    mean: float | None
    median: float | None
    max: float | None


@dataclass(frozen=True)
class Case:
    profile: str
    pct: float


@dataclass(frozen=True)
class BandShare:
    band: str
    count: int
    share_pct: float | None
    """Of the rows with a band; None when no row has one."""


@dataclass(frozen=True)
class ComponentBias:
    component: str
    n: int
    mean_abs_pct: float | None
    mean_signed_pct: float | None
    over: int
    """Rows where the calculator is above the measurement (pct < 0)."""
    under: int
    """Rows where the calculator is below the measurement (pct > 0)."""
    exact: int
    mean_abs_diff_gb: float | None
    """Mean |profiled - calculated| in GB (1e9 bytes), for memory components with both GB cells."""
    direction: str | None
    """"over" / "under" (the calculator over-/under-estimates in most rows), "mixed" on a tie, None without data."""
    worst: Case | None


@dataclass(frozen=True)
class Group:
    name: str
    count: int
    n_error: int
    """Rows of the group with a total or match-basis error."""
    mean_abs_error_pct: float | None
    """Mean |total or match-basis error|."""
    mean_params_b: float | None
    components: dict[str, float] = field(default_factory=dict)
    """Mean |pct| per component, for the components some row of the group holds."""


@dataclass(frozen=True)
class Metric:
    name: str
    target: str
    limit: float
    current: float | None
    n: int
    met: bool | None
    """None when there is no data for the metric."""


@dataclass(frozen=True)
class Issue:
    severity: str
    """CRITICAL, WARNING or INFO."""
    message: str


@dataclass(frozen=True)
class KnownFailure:
    profile: str
    reason: str | None
    band: str | None
    basis: str | None
    basis_pct: float | None


@dataclass(frozen=True)
class ProfileLine:
    profile: str
    model_id: str | None
    params_b: float | None
    gpu_count: int | None
    verdict: str | None
    band: str | None
    basis: str | None
    basis_pct: float | None
    pcts: dict[str, float] = field(default_factory=dict)

    @property
    def in_gate(self) -> bool:
        """Whether the metrics count this profile (``Scored.in_gate``, the one rule; a CSV row without a verdict is
        taken as having run, as ``_scored`` does)."""
        return Scored(self.profile, self.verdict or "unknown", self.band, self.basis, self.basis_pct).in_gate


@dataclass
class Analysis:
    n_rows: int
    n_analyzed: int
    """Rows in the metrics: every row but the known failures."""
    n_known_failures: int
    n_unrated: int
    """Analysed rows without a match quality (nothing comparable was estimated)."""
    bands: list[BandShare]
    total_error: Stats
    """|difference_pct| (the measured total), where present."""
    basis_error: Stats
    """|total or match-basis error|: the error that set each row's band."""
    best: Case | None
    worst: Case | None
    components: list[ComponentBias]
    by_size: list[Group]
    by_gpu_count: list[Group]
    metrics: list[Metric]
    issues: list[Issue]
    recommendations: list[str]
    known_failures: list[KnownFailure]
    known_failure_kinds: dict[str, int]
    profiles: list[ProfileLine]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------- parsing

@dataclass
class _Row:
    profile: str
    model_id: str | None
    params_b: float | None
    gpu_count: int | None
    verdict: str | None
    known_failure: str | None
    band: str | None
    basis: str | None
    basis_pct: float | None
    pcts: dict[str, float]
    diffs_gb: dict[str, float]


def _number(row: dict[str, Any], column: str, profile: str) -> float | None:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LlmsizerError(f"{profile}: column {column}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise LlmsizerError(f"{profile}: column {column}: {value!r} is not a finite number")
    return number


def _text(row: dict[str, Any], column: str) -> str | None:
    value = row.get(column)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _basis_key(basis: str | None, overhead_component: str | None) -> str | None:
    if basis is None:
        return None
    if basis in _LABEL:
        return basis
    if basis in ("non_torch", "framework_overhead") and overhead_component == basis:
        return "overhead"
    return None


def _parse(row: dict[str, Any], index: int) -> _Row:
    profile = _text(row, "profile_file") or f"row {index + 1}"
    pcts: dict[str, float] = {}
    diffs_gb: dict[str, float] = {}
    for comp in COMPONENTS:
        profiled = calculated = None
        if comp.gb_columns is not None:
            profiled = _number(row, comp.gb_columns[0], profile)
            calculated = _number(row, comp.gb_columns[1], profile)
            if profiled is not None and calculated is not None:
                diffs_gb[comp.key] = profiled - calculated
        if comp.pct_column is not None:
            pct = _number(row, comp.pct_column, profile)
        else:
            pct = None if not profiled or calculated is None else (profiled - calculated) / profiled * 100
        if pct is not None:
            pcts[comp.key] = pct
    band = _text(row, "match_quality")
    if band is not None and band not in ORDER:
        raise LlmsizerError(f"{profile}: match_quality {band!r} is not one of {', '.join(ORDER)}")
    basis = _text(row, "match_basis")
    key = _basis_key(basis, _text(row, "overhead_component"))
    basis_pct = pcts.get(key) if key else None
    if basis_pct is None and "total" in pcts:
        basis, basis_pct = basis or "total", pcts["total"]
    gpus = _number(row, "gpu_count", profile)
    if gpus is not None and (gpus != int(gpus) or gpus < 1):
        raise LlmsizerError(f"{profile}: column gpu_count: {row.get('gpu_count')!r} is not a GPU count")
    return _Row(
        profile=profile,
        model_id=_text(row, "model_id"),
        params_b=_number(row, "model_params_b", profile),
        gpu_count=None if gpus is None else int(gpus),
        verdict=_text(row, "accuracy_verdict"),
        known_failure=_text(row, "known_failure"),
        band=band,
        basis=basis,
        basis_pct=basis_pct,
        pcts=pcts,
        diffs_gb=diffs_gb,
    )


# ---------------------------------------------------------------------------------------------------------- analysis

def _stats(values: Sequence[float]) -> Stats:
    if not values:
        return Stats(0, None, None, None)
    mags = [abs(v) for v in values]
    return Stats(len(mags), fmean(mags), median(mags), max(mags))


def _mean_abs(values: Iterable[float]) -> float | None:
    mags = [abs(v) for v in values]
    return fmean(mags) if mags else None


def _bias(key: str, rows: list[_Row]) -> ComponentBias:
    cases = [Case(r.profile, r.pcts[key]) for r in rows if key in r.pcts]
    if not cases:
        return ComponentBias(key, 0, None, None, 0, 0, 0, None, None, None)
    over = sum(c.pct < 0 for c in cases)
    under = sum(c.pct > 0 for c in cases)
    direction = "over" if over > under else "under" if under > over else "mixed"
    return ComponentBias(
        component=key,
        n=len(cases),
        mean_abs_pct=fmean(abs(c.pct) for c in cases),
        mean_signed_pct=fmean(c.pct for c in cases),
        over=over,
        under=under,
        exact=len(cases) - over - under,
        mean_abs_diff_gb=_mean_abs(r.diffs_gb[key] for r in rows if key in r.pcts and key in r.diffs_gb),
        direction=direction,
        worst=max(cases, key=lambda c: abs(c.pct)),
    )


def _group(name: str, rows: list[_Row]) -> Group:
    errors = [r.basis_pct for r in rows if r.basis_pct is not None]
    params = [r.params_b for r in rows if r.params_b is not None]
    components = {}
    for comp in COMPONENTS:
        mean = _mean_abs(r.pcts[comp.key] for r in rows if comp.key in r.pcts)
        if mean is not None:
            components[comp.key] = mean
    return Group(name, len(rows), len(errors), _mean_abs(errors), fmean(params) if params else None, components)


def _size_group(params_b: float | None) -> str:
    if params_b is None:
        return SIZE_GROUPS[3]
    if params_b < 10:
        return SIZE_GROUPS[0]
    if params_b <= 40:
        return SIZE_GROUPS[1]
    return SIZE_GROUPS[2]


def _groups(rows: list[_Row], key: Callable[[_Row], str], order: Sequence[str]) -> list[Group]:
    buckets: dict[str, list[_Row]] = {}
    for r in rows:
        buckets.setdefault(key(r), []).append(r)
    return [_group(name, buckets[name]) for name in order if name in buckets]


def _gpu_label(r: _Row) -> str:
    if r.gpu_count is None:
        return "unknown GPU count"
    return f"{r.gpu_count} GPU" + ("s" if r.gpu_count > 1 else "")


def _scored(r: _Row) -> Scored:
    """The one metrics function's view of a CSV row: the CSV's percentages stand for the gating rows."""
    return Scored(r.profile, r.verdict or "unknown", r.band, r.basis, r.basis_pct,
                  {q: r.pcts[q] for q in METRIC_QUANTITIES if q in r.pcts})


def _metrics(rows: list[_Row], gate: GateConfig) -> list[Metric]:
    """The success metrics, computed by ``validation.metrics.compute_metrics`` (as the plugin's gate and summary)."""
    computed = compute_metrics([_scored(r) for r in rows], gate)
    return [Metric(m.name, m.target, m.limit, m.value, m.n, m.passed) for m in computed.rows]


def _p(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.2f}%" if signed else f"{value:.2f}%"


def _bias_phrase(b: ComponentBias) -> str:
    worst = f"; worst {b.worst.profile} {_p(b.worst.pct, True)}" if b.worst else ""
    how = {"over": "the calculator over-estimates it", "under": "the calculator under-estimates it",
           "mixed": "errors go both ways"}[b.direction or "mixed"]
    return (f"{how} ({b.over} over, {b.under} under of {b.n}; mean signed {_p(b.mean_signed_pct, True)}"
            f"{_gb_phrase(b)}){worst}")


def _gb_phrase(b: ComponentBias) -> str:
    return "" if b.mean_abs_diff_gb is None else f"; mean |difference| {b.mean_abs_diff_gb:.2f} GB"



_ADVICE: dict[tuple[str, str], str] = {
    ("total", "over"): "the calculator's total is larger than measured: see which components over-estimate below",
    ("total", "under"): "the calculator's total is smaller than measured: see which components under-estimate, "
                        "and whether a component the engine holds (CUDA graphs, NCCL buffers) is missing",
    ("weights", "over"): "the calculator's weights are larger than measured: check that they are divided across "
                         "TP/PP ranks (per GPU), the bytes per parameter of the quantization (FP8/int4 packing), "
                         "and tied embeddings counted twice",
    ("weights", "under"): "the calculator's weights are smaller than measured: check layers a checkpoint keeps in "
                          "higher precision (e.g. attention or first/last layers of FP8 checkpoints), an untied "
                          "lm_head, vision towers, and quantization scales / zero points",
    ("kv_cache", "over"): "the calculator's KV cache is larger than measured: the pool is what the budget leaves "
                          "after weights, activations and non-torch memory, so check the activation peak and the "
                          "non-torch reservations (too small in the calculator), gpu_memory_utilization and the "
                          "engine version's batch defaults",
    ("kv_cache", "under"): "the calculator's KV cache is smaller than measured: it reserves too much for "
                           "activations, non-torch memory or CUDA graphs, or assumes a lower "
                           "gpu_memory_utilization than the run used",
    ("kv_cache_tokens", "over"): "the calculator predicts more KV tokens than the engine reported: the pool is too "
                                 "large (activation/non-torch reservations too small) or the bytes per token too "
                                 "small (check KV heads, head_dim, KV dtype, layer count)",
    ("kv_cache_tokens", "under"): "the calculator predicts fewer KV tokens than the engine reported: the pool is "
                                  "too small (activation/non-torch reservations too large) or the bytes per token "
                                  "too large (check GQA KV heads, MLA, sliding-window layers, KV dtype)",
    ("activations", "over"): "the calculator's activation peak is larger than measured: check the batched tokens "
                             "profiled at startup (max_num_batched_tokens, chunked prefill) for the engine version",
    ("activations", "under"): "the calculator's activation peak is smaller than measured: check max_num_batched_"
                              "tokens, the sampler/logits buffers and a multimodal encoder's peak",
    ("overhead", "over"): "the calculator's non-torch / framework overhead is larger than measured: check its CUDA "
                          "context and NCCL priors per engine version (no NCCL buffers at TP 1)",
    ("overhead", "under"): "the calculator's non-torch / framework overhead is smaller than measured: check NCCL "
                           "and custom all-reduce buffers at TP > 1 and the CUDA context of the GPU/driver",
    ("cuda_graphs", "over"): "the calculator's CUDA-graph memory is larger than measured: check the capture sizes "
                             "and whether the run captured graphs at all (enforce_eager)",
    ("cuda_graphs", "under"): "the calculator's CUDA-graph memory is smaller than measured: check the capture sizes "
                              "of the engine version",
    ("max_concurrency", "over"): "the calculator predicts more concurrency than the engine reported: follow the KV "
                                 "tokens (pool or bytes per token too small)",
    ("max_concurrency", "under"): "the calculator predicts less concurrency than the engine reported: follow the KV "
                                  "tokens (pool or bytes per token too large)",
}


def _much_worse(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a > MUCH_WORSE_RATIO * b and a - b >= MUCH_WORSE_GAP_PCT


def _reason_kind(reason: str | None) -> str:
    if not reason:
        return "no reason given"
    head, sep, _ = reason.partition(":")
    return head.strip() if sep and 0 < len(head.strip()) <= 40 else "other"


def analyze(rows: Sequence[dict[str, Any]], gate: GateConfig | None = None) -> Analysis:
    """Analyse CSV rows (as :func:`load_rows` gives them) against the gate's targets (default: GateConfig())."""
    gate = gate or GateConfig()
    parsed = [_parse(row, i) for i, row in enumerate(rows)]
    known = [r for r in parsed if r.verdict == "xfailed"]
    counted = [r for r in parsed if r.verdict != "xfailed"]
    rated = [r for r in counted if r.band is not None]

    band_counts = Counter(r.band for r in rated)
    bands = [BandShare(b, band_counts[b], 100 * band_counts[b] / len(rated) if rated else None) for b in ORDER]
    errors = [Case(r.profile, r.basis_pct) for r in counted if r.basis_pct is not None]
    components = [_bias(c.key, counted) for c in COMPONENTS]
    by_size = _groups(counted, lambda r: _size_group(r.params_b), SIZE_GROUPS)
    gpu_order = sorted({_gpu_label(r) for r in counted},
                       key=lambda s: (s.startswith("unknown"), int(s.split()[0]) if s[0].isdigit() else 0))
    by_gpu = _groups(counted, _gpu_label, gpu_order)
    metrics = _metrics(counted, gate)
    kinds = Counter(_reason_kind(r.known_failure) for r in known)

    issues: list[Issue] = []
    recs: list[str] = []
    basis = _stats([c.pct for c in errors])
    if basis.mean is not None:
        where = f"over {basis.n} profile(s) (total, or the match basis where no total was measured)"
        if basis.mean > CRITICAL_MEAN_PCT:
            issues.append(Issue("CRITICAL", f"mean |error| is {_p(basis.mean)} {where}, above {CRITICAL_MEAN_PCT:g}%"))
        elif basis.mean > WARNING_MEAN_PCT:
            issues.append(Issue("WARNING", f"mean |error| is {_p(basis.mean)} {where}, above {WARNING_MEAN_PCT:g}%"))
    for b in components:
        if b.component != "total" and b.mean_abs_pct is not None and b.mean_abs_pct > COMPONENT_CRITICAL_PCT:
            issues.append(Issue("CRITICAL", f"{_LABEL[b.component]}: mean |error| {_p(b.mean_abs_pct)} over {b.n} "
                                            f"profile(s), above {COMPONENT_CRITICAL_PCT:g}%; {_bias_phrase(b)}"))
    for m in metrics:
        if m.met is False:
            issues.append(Issue("WARNING", f"target missed: {m.name} = {_fmt_metric(m)} (target {m.target})"))

    single = [r.basis_pct for r in counted if r.gpu_count == 1 and r.basis_pct is not None]
    multi = [r.basis_pct for r in counted if (r.gpu_count or 0) > 1 and r.basis_pct is not None]
    single_mean, multi_mean = _mean_abs(single), _mean_abs(multi)
    if _much_worse(multi_mean, single_mean):
        issues.append(Issue("WARNING", f"multi-GPU profiles err much more: mean |error| {_p(multi_mean)} "
                                       f"(n={len(multi)}) vs {_p(single_mean)} on one GPU (n={len(single)})"))
        recs.append(f"multi-GPU error {_p(multi_mean)} vs {_p(single_mean)} on one GPU: check that weights and the "
                    "KV pool are divided per rank (TP/PP), the NCCL / all-reduce buffers in non-torch memory, and "
                    "that kv_cache_tokens is engine-wide while memory is per GPU")
    large = [r.basis_pct for r in counted if r.params_b is not None and r.params_b > 40 and r.basis_pct is not None]
    rest = [r.basis_pct for r in counted if r.params_b is not None and r.params_b <= 40 and r.basis_pct is not None]
    large_mean, rest_mean = _mean_abs(large), _mean_abs(rest)
    if _much_worse(large_mean, rest_mean):
        issues.append(Issue("WARNING", f"large models (> 40B) err much more: mean |error| {_p(large_mean)} "
                                       f"(n={len(large)}) vs {_p(rest_mean)} up to 40B (n={len(rest)})"))
        recs.append(f"large models err {_p(large_mean)} vs {_p(rest_mean)}: check mixed-precision layers of large "
                    "quantized checkpoints, MoE expert weights, and MLA / sliding-window KV layouts")

    for b in components:
        limit = {"total": gate.mean_total_error_pct_max, "weights": gate.weights_error_pct_max,
                 "kv_cache": gate.kv_cache_error_pct_max}.get(b.component, RECOMMEND_COMPONENT_PCT)
        if b.mean_abs_pct is None or b.mean_abs_pct <= limit:
            continue
        numbers = (f"{_LABEL[b.component]} mean |error| {_p(b.mean_abs_pct)} > {limit:g}%, "
                   f"mean signed {_p(b.mean_signed_pct, True)}, {b.over} over / {b.under} under of {b.n}"
                   f"{_gb_phrase(b)}")
        if b.direction in ("over", "under"):
            recs.append(f"{_ADVICE[(b.component, b.direction)]} ({numbers})")
        else:
            assert b.worst is not None
            recs.append(f"{_LABEL[b.component]}: errors go both ways, so no single correction fits; start with the "
                        f"worst case {b.worst.profile} {_p(b.worst.pct, True)} ({numbers})")

    xpassed = [r.profile for r in counted if r.verdict == "xpassed"]
    if xpassed:
        issues.append(Issue("INFO", f"{len(xpassed)} known failure(s) passed unexpectedly (xpassed): "
                                    f"{', '.join(xpassed)}"))
        recs.append(f"remove the {len(xpassed)} xpassed profile(s) from known_failures in tolerances.yaml")
    unrated = len(counted) - len(rated)
    if unrated:
        issues.append(Issue("INFO", f"{unrated} analysed profile(s) have no match quality (nothing comparable was "
                                    "estimated) and are not in the band shares"))
    if known:
        issues.append(Issue("INFO", f"{len(known)} of {len(parsed)} profiles are known failures (xfailed), "
                                    f"listed apart and not in the metrics"))
        common = [f"{kind} ({n})" for kind, n in kinds.most_common() if n > 1]
        if common:
            recs.append(f"{len(known)} known failures stay out of the metrics; the most common reasons: "
                        f"{', '.join(common)}: resolving them widens the validated set")
    if len(rated) < FEW_PROFILES:
        issues.append(Issue("INFO", f"only {len(rated)} profile(s) with a match quality: the statistics say little"))
    if not recs and basis.mean is not None and all(m.met is not False for m in metrics):
        recs.append(f"every target with data is met (mean |error| {_p(basis.mean)} over {basis.n} profile(s)); "
                    "add profiles to make the statistics meaningful")

    order = {"CRITICAL": 0, "WARNING": 1, "INFO": 2}
    issues.sort(key=lambda i: order[i.severity])
    return Analysis(
        n_rows=len(parsed),
        n_analyzed=len(counted),
        n_known_failures=len(known),
        n_unrated=unrated,
        bands=bands,
        total_error=_stats([r.pcts["total"] for r in counted if "total" in r.pcts]),
        basis_error=basis,
        best=min(errors, key=lambda c: abs(c.pct)) if errors else None,
        worst=max(errors, key=lambda c: abs(c.pct)) if errors else None,
        components=components,
        by_size=by_size,
        by_gpu_count=by_gpu,
        metrics=metrics,
        issues=issues,
        recommendations=recs,
        known_failures=[KnownFailure(r.profile, r.known_failure, r.band, r.basis, r.basis_pct) for r in known],
        known_failure_kinds=dict(kinds.most_common()),
        profiles=[ProfileLine(r.profile, r.model_id, r.params_b, r.gpu_count, r.verdict, r.band, r.basis,
                              r.basis_pct, dict(r.pcts)) for r in sorted(parsed, key=lambda r: r.profile)],
    )


# ---------------------------------------------------------------------------------------------------------- rendering

def _fmt_metric(m: Metric) -> str:
    if m.current is None:
        return "no data"
    if m.name.startswith("profiles"):
        return f"{m.current:g}"
    return f"{m.current:.1f}%" if m.name in ("Good or better", "Poor") else _p(m.current)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool,
           right: Sequence[bool] | None = None) -> list[str]:
    right = right or [False] + [True] * (len(headers) - 1)
    if markdown:
        def cell(s: str) -> str:
            return s.replace("|", "\\|")

        lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
                 "|" + "|".join("---:" if r else "---" for r in right) + "|"]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        return lines
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    return [line(headers), line(["-" * w for w in widths])] + [line(row) for row in rows]


_GROUP_COLUMNS = ("weights", "kv_cache", "kv_cache_tokens", "activations", "overhead")


def render(analysis: Analysis, fmt: Format = "text", detailed: bool = False) -> str:
    """The analysis as aligned text tables, markdown tables or JSON; ``detailed`` adds one line per profile."""
    if fmt == "json":
        doc = analysis.to_json()
        if not detailed:
            doc.pop("profiles")
        return json.dumps(doc, indent=2) + "\n"
    if fmt not in ("text", "markdown"):
        raise LlmsizerError(f"unknown format {fmt!r}; expected text, markdown or json")
    md = fmt == "markdown"
    a = analysis
    out: list[str] = []

    def section(title: str) -> None:
        if out and out[-1]:
            out.append("")
        out.extend([f"## {title}", ""] if md else [title, "=" * len(title)])

    def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> None:
        out.extend(_table(headers, rows, md, right))

    if md:
        out += ["# LLM sizer validation analysis", ""]
    section("Overview")
    out.append(f"{a.n_rows} profiles: {a.n_analyzed} analysed, {a.n_known_failures} known failures (xfailed, "
               f"listed apart), {a.n_unrated} analysed without a match quality.")
    out.append("pct = (profiled - calculated) / profiled x 100: negative means the calculator over-estimates.")
    out.append("")
    table(["band", "count", "share"],
          [[b.band, str(b.count), "n/a" if b.share_pct is None else f"{b.share_pct:.1f}%"] for b in a.bands])
    out.append("")
    table(["error", "n", "mean |pct|", "median |pct|", "max |pct|"],
          [[name, str(s.n), _p(s.mean), _p(s.median), _p(s.max)]
           for name, s in (("total (difference_pct)", a.total_error), ("total or match basis", a.basis_error))])
    if a.worst and a.best:
        out.append("")
        out.append(f"worst: {a.worst.profile} {_p(a.worst.pct, True)}; best: {a.best.profile} {_p(a.best.pct, True)}")

    section("Success metrics")
    table(["metric", "target", "current", "n", "met"],
          [[m.name, m.target, _fmt_metric(m), str(m.n), "n/a" if m.met is None else ("yes" if m.met else "NO")]
           for m in a.metrics])

    section("Components (bias)")
    table(["component", "n", "mean |pct|", "mean signed", "mean |diff| GB", "over", "under", "bias", "worst case"],
          [[_LABEL[b.component], str(b.n), _p(b.mean_abs_pct), _p(b.mean_signed_pct, True),
            "n/a" if b.mean_abs_diff_gb is None else f"{b.mean_abs_diff_gb:.3f}", str(b.over), str(b.under),
            b.direction or "n/a", f"{b.worst.profile} {_p(b.worst.pct, True)}" if b.worst else "n/a"]
           for b in a.components if b.n],
          [False, True, True, True, True, True, True, False, False])
    if not any(b.n for b in a.components):
        out.append("no component has data")

    for title, groups, with_params in (("By model size", a.by_size, True), ("By GPU count", a.by_gpu_count, False)):
        section(title)
        headers = ["group", "count", *(["mean params"] if with_params else []), "mean |error|",
                   *(_LABEL[k] for k in _GROUP_COLUMNS)]
        table(headers, [
            [g.name, str(g.count),
             *([("n/a" if g.mean_params_b is None else f"{g.mean_params_b:.1f}B")] if with_params else []),
             _p(g.mean_abs_error_pct), *(_p(g.components.get(k)) for k in _GROUP_COLUMNS)]
            for g in groups])
        if not groups:
            out.append("no analysed profiles")

    section("Issues")
    out.extend([f"- {i.severity}: {i.message}" for i in a.issues] or ["none"])
    section("Recommendations")
    out.extend([f"- {r}" for r in a.recommendations] or ["none"])

    if a.known_failures:
        section(f"Known failures ({a.n_known_failures}, not in the metrics)")
        out.append(", ".join(f"{kind}: {n}" for kind, n in a.known_failure_kinds.items()))
        out.append("")
        table(["profile", "band", "basis", "pct", "reason"],
              [[k.profile, k.band or "n/a", k.basis or "n/a", _p(k.basis_pct, True), k.reason or "n/a"]
               for k in a.known_failures],
              [False, False, False, True, False])

    if detailed:
        section("Profiles")
        keys = [c.key for c in COMPONENTS]
        table(["profile", "verdict", "params", "GPUs", "band", "basis", "basis pct", *(_LABEL[k] for k in keys)],
              [[p.profile, p.verdict or "n/a", "n/a" if p.params_b is None else f"{p.params_b:g}B",
                "n/a" if p.gpu_count is None else str(p.gpu_count), p.band or "n/a", p.basis or "n/a",
                _p(p.basis_pct, True), *(_p(p.pcts.get(k), True) for k in keys)]
               for p in a.profiles],
              [False, False, True, True, False, False, True, *([True] * len(keys))])
    return "\n".join(out) + "\n"
