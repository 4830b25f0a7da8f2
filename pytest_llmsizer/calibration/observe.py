"""What a profile tells about the fitted coefficients: one ``Observation`` per usable profile.

vLLM sizes its KV pool by an identity (memory-physics.md 2.1): utilization x total = weights + activation peak +
non-torch + KV pool (+ the CUDA-graph estimate from v0.21). A profile that logs weights and the KV pool therefore
measures the *overhead* O = utilization x total - weights - KV (- graphs when budgeted) = activation peak (the
sampler term c_v N V where it dominates) + non-torch, which is what the sampler coefficient c_v and the non-torch
table are fitted to. Logged non-torch and CUDA-graph figures are used directly; on ROCm the logged weights beyond
the calculated tensors are the evidence of the load-figure reserves. Only engine- or device-measured
components count; derived ones never do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from pytest_llmsizer.calculator import Estimate, EstimateRequest, estimate
from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator.cuda_graphs import released_bytes
from pytest_llmsizer.calculator.engines import vllm_kv_pool_bytes
from pytest_llmsizer.calculator.platform import RocmLoadFeatures
from pytest_llmsizer.calculator.resolve import request_from_profile
from pytest_llmsizer.calculator.versions import parse_vllm_version, version_bucket
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profile.model import Profile, Provenance
from pytest_llmsizer.units import GiB

EVALUATED = ("weights", "kv_cache", "kv_cache_tokens", "activations", "non_torch", "cuda_graphs")
"""The quantities a calibration changes, compared on held-out profiles."""


class GraphRelease(NamedTuple):
    """The warm-up terms of ``cuda_graphs.released_bytes`` for one profile (GiB): released = max(deepgemm,
    rho x dense + moe)."""

    dense: float
    moe: float
    deepgemm: float

    def released(self, rho: float) -> float:
        return released_bytes(rho, dense_bytes=self.dense, moe_bytes=self.moe, deepgemm_bytes=self.deepgemm)


@dataclass(frozen=True)
class Observation:
    label: str
    model: str
    engine: str
    version: str | None
    """"major.minor" of the engine (vLLM), None for other engines."""
    bucket: str | None
    platform: str
    gpus: int
    request: EstimateRequest
    nv: float = 0.0
    """Dummy sequences x vocab entries of the profile run (the sampler term's multiplier)."""
    overhead: float | None = None
    """Bytes: utilization x total - logged weights - logged KV (- logged graphs where they are budgeted)."""
    non_torch: float | None = None
    cuda_graphs: float | None = None
    graph_scaled_gib: float | None = None
    """The logged graph pool scaled to the reference capture count (``coefficients.CUDA_GRAPH_REFERENCE_SIZES``)."""
    graph_layers: int = 0
    graph_backend: str = "standard"
    graph_release: GraphRelease = field(default_factory=lambda: GraphRelease(0.0, 0.0, 0.0))
    """What the pre-capture warm-ups leave cached for the first capture to release (``cuda_graphs.released_bytes``),
    scaled like ``graph_scaled_gib`` (all 0 where nothing is left cached: ``cuda_graphs.cache_release_cause``)."""
    rocm_residual_gib: float | None = None
    """ROCm: logged weights - calculated tensor bytes - the exact load terms (MoE row padding, fp8 fnuz mask), GiB."""
    rocm_features: RocmLoadFeatures | None = None
    measured: dict[str, float] = field(default_factory=dict)
    """Measured quantities to compare on held-out profiles (bytes, tokens)."""


def _measured(profile: Profile) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, comp in profile.measurements.components.present().items():
        if name in EVALUATED and comp.provenance != Provenance.DERIVED:
            out[name] = float(comp.bytes)
    if profile.measurements.kv_cache_tokens:
        out["kv_cache_tokens"] = float(profile.measurements.kv_cache_tokens)
    if profile.engine.enforce_eager:
        out.pop("cuda_graphs", None)
    return out


def observe(profile: Profile, label: str) -> Observation | str:
    """The observation a profile gives, or the reason it gives none (reported by ``llmsizer calibrate``)."""
    if profile.synthetic:
        return "synthetic profile"
    engine = profile.engine.name
    if engine not in ("vllm", "transformers"):
        return f"engine {engine!r} has no calculator model"
    measured = _measured(profile)
    if not measured:
        return "no engine- or device-measured quantity a coefficient affects"
    try:
        request = request_from_profile(profile)
        est = estimate(request)
    except LlmsizerError as e:
        return f"not estimated: {str(e).splitlines()[0]}"
    gpus = request.tensor_parallel_size * request.pipeline_parallel_size
    if engine == "transformers":
        return Observation(label, profile.model.id, engine, None, None, request.platform, gpus, request,
                           non_torch=measured.get("non_torch"), measured=measured)
    text = profile.engine.version
    version = parse_vllm_version(text)
    if version is None:
        return "no vLLM version recorded (coefficients are per version)"
    if ".dev" in (text or "") or "dev " in (text or "").lower():
        return f"development build {text!r} (not a release's behaviour)"
    terms = est.details["activation_terms"]
    overhead = None
    comps = profile.measurements.components
    if (profile.engine.gpu_memory_utilization is not None and "kv_cache" in measured and comps.weights is not None
            and comps.weights.provenance != Provenance.DERIVED):
        # the engine's budget identity, from its one home (calculator.engines): what utilization x total leaves
        # besides the logged weights, KV pool and (where budgeted) CUDA-graph pool is activations + non-torch
        budgeted = est.details["cuda_graphs_in_budget"]
        if not budgeted or "cuda_graphs" in measured:
            left = vllm_kv_pool_bytes(request.gpu_memory_bytes, est.inputs["gpu_memory_utilization"],
                                      weights=comps.weights.bytes, activations=0, non_torch=0,
                                      cuda_graphs=round(measured["cuda_graphs"]) if budgeted else 0)
            overhead = left - measured["kv_cache"]
    graphs = None if request.enforce_eager else measured.get("cuda_graphs")
    graph_terms = est.details.get("cuda_graph_terms") or {}
    scaled, release = None, GraphRelease(0.0, 0.0, 0.0)
    if graphs is not None and graph_terms.get("capture_sizes"):
        to_reference = k.CUDA_GRAPH_REFERENCE_SIZES / graph_terms["capture_sizes"]
        scaled = graphs / GiB * to_reference
        release = GraphRelease(*(graph_terms.get(f"release_{part}_bytes", 0) / GiB * to_reference
                                 for part in ("dense", "moe", "deepgemm")))
    rocm_residual, features = _rocm(profile, request, est)
    return Observation(
        label, profile.model.id, engine, f"{version[0]}.{version[1]}", version_bucket(version), request.platform,
        gpus, request,
        nv=terms["profile_seqs"] * request.arch.vocab_size,
        overhead=overhead,
        non_torch=measured.get("non_torch"),
        cuda_graphs=graphs,
        graph_scaled_gib=scaled,
        graph_layers=int(graph_terms.get("layers") or 0),
        graph_backend=str(graph_terms.get("attention_backend") or "standard"),
        graph_release=release,
        rocm_residual_gib=rocm_residual,
        rocm_features=features,
        measured=measured,
    )


def _rocm(profile: Profile, request: EstimateRequest, est: Estimate) -> tuple[float | None, RocmLoadFeatures | None]:
    """On ROCm, what the logged weights hold beyond the tensors and the exact load terms (the fitted reserves'
    evidence), and the load features of the estimate's weight-deciding rank (priced in ``calculator/engines.py``
    from ``calculator/platform.py``; read back here, not recomputed)."""
    weights = profile.measurements.components.weights
    logged = est.details.get("load_figure_features")
    if request.platform != "rocm" or weights is None or weights.provenance == Provenance.DERIVED or not logged:
        return None, None
    features = RocmLoadFeatures(**logged)
    tensors = est.per_gpu_bytes["weights"] - sum(est.details.get("load_figure_terms_bytes", {}).values())
    exact = features.moe_padding + features.fp8_largest_weight_elements
    return (weights.bytes - tensors - exact) / GiB, features


def buckets() -> list[str]:
    return list(k.VERSION_BUCKETS)
