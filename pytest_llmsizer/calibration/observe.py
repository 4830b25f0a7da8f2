"""What a profile tells about the fitted coefficients: one ``Observation`` per usable profile.

vLLM sizes its KV pool by an identity (memory-physics.md 2.1): utilization x total = weights + activation peak +
non-torch + KV pool (+ the CUDA-graph estimate from v0.21). A profile that logs weights and the KV pool therefore
measures the *overhead* O = utilization x total - weights - KV (- graphs when budgeted) = activation peak (the
sampler term c_v N V where it dominates) + non-torch, which is what the sampler coefficient c_v and the non-torch
table are fitted to. Logged non-torch and CUDA-graph figures are used directly. Only engine- or device-measured
components count; derived ones never do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_llmsizer.calculator import EstimateRequest, estimate
from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator.resolve import request_from_profile
from pytest_llmsizer.calculator.versions import parse_vllm_version, version_bucket
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profile.model import Profile, Provenance

EVALUATED = ("kv_cache", "kv_cache_tokens", "activations", "non_torch", "cuda_graphs")
"""The quantities a calibration changes, compared on held-out profiles."""


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
        overhead = est.details["requested_bytes"] - comps.weights.bytes - measured["kv_cache"]
        if est.details["cuda_graphs_in_budget"]:
            if "cuda_graphs" not in measured:
                overhead = None
            else:
                overhead -= measured["cuda_graphs"]
    return Observation(
        label, profile.model.id, engine, f"{version[0]}.{version[1]}", version_bucket(version), request.platform,
        gpus, request,
        nv=terms["profile_seqs"] * request.arch.vocab_size,
        overhead=overhead,
        non_torch=measured.get("non_torch"),
        cuda_graphs=None if request.enforce_eager else measured.get("cuda_graphs"),
        measured=measured,
    )


def buckets() -> list[str]:
    return list(k.VERSION_BUCKETS)
