"""Build an ``EstimateRequest`` from names (model id, GPU name) or from a profile.

This is the one place where catalog lookups meet calculator inputs, shared by ``llmsizer estimate``, the plugin and
the Python API, so that they always resolve the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from pytest_llmsizer.calculator.request import EstimateRequest, Platform
from pytest_llmsizer.catalog.arch import ModelArch
from pytest_llmsizer.catalog.gpus import GpuNameError, GpuSpec, resolve_gpu, vendor_from_name
from pytest_llmsizer.catalog.hf_config import arch_from_hf_config
from pytest_llmsizer.catalog.models import resolve_model
from pytest_llmsizer.errors import CatalogError, EstimateError, UnknownGpuError
from pytest_llmsizer.profile.model import Profile

MEMORY_BASIS = {
    "cuda_total_read": "the CUDA total read on that GPU (torch / deviceQuery)",
    "runtime_gib_read": "the total vLLM or a PyTorch OOM message printed for that GPU",
    "hip_total_from_rocm_smi": "the HIP total (equal to rocm-smi's VRAM total on AMD)",
    "opencl_total_read": "an OpenCL total read on that GPU",
    "smi_minus_sibling_reserve": "ASSUMED: nvidia-smi's total minus the driver reserve read on a sibling card "
                                 "(no runtime total was found for this GPU); pass --gpu-memory-gib to override",
}
"""How each GPU catalog entry's runtime-visible memory was obtained, in words for the estimate's assumptions."""


GPU_VARIANT_MEMORY_TOLERANCE = 0.05
"""A given memory size settles an ambiguous GPU name when the candidates within 5% of it all hold the same memory
(memory variants differ far more: A100 40/80 GB; H100 80/94 GB is the closest pair, at 17%)."""


def _variant_by_memory(candidates: list[str], memory_bytes: int) -> GpuSpec | None:
    """The one candidate GPU whose runtime-visible memory is within the tolerance of ``memory_bytes``."""
    close = []
    for candidate in candidates:
        try:
            spec = resolve_gpu(candidate)
        except UnknownGpuError:
            continue
        if abs(spec.memory_bytes - memory_bytes) <= GPU_VARIANT_MEMORY_TOLERANCE * memory_bytes:
            close.append(spec)
    # form-factor variants (SXM / PCIe) of one memory size: the closest one (their totals differ by < 0.2%)
    if not close or len({s.nominal_gb for s in close}) != 1:
        return None
    return min(close, key=lambda s: abs(s.memory_bytes - memory_bytes))


@dataclass(frozen=True)
class GpuInput:
    """A GPU as the request gets it: the memory per GPU, the name, the platform, the catalog's compute capability
    (None when the GPU is no catalog entry) and the assumptions made resolving it."""

    memory_bytes: int
    name: str | None
    platform: Platform
    compute_capability: str | None
    assumptions: list[str]


def gpu_memory(gpu: str | None, memory_bytes: int | None) -> GpuInput:
    """The GPU from a GPU name and/or an explicit memory size (the size, when given, wins over the catalog's)."""
    assumptions: list[str] = []
    spec = None
    if gpu:
        try:
            spec = resolve_gpu(gpu)
        except GpuNameError as e:
            if memory_bytes is None:
                raise
            spec = _variant_by_memory(e.suggestions, memory_bytes)
            if spec is None:
                assumptions.append(f"GPU {gpu!r} {e.reason} {', '.join(e.suggestions)}; none has "
                                   f"{memory_bytes / 2**30:.2f} GiB, so only the given memory size is used")
            else:
                assumptions.append(f"GPU {gpu!r} names several GPUs ({', '.join(e.suggestions)}); the given "
                                   f"{memory_bytes / 2**30:.2f} GiB settles it: {spec.name} "
                                   f"({spec.memory_bytes / 2**30:.2f} GiB visible)")
        except Exception:
            if memory_bytes is None:
                raise
            assumptions.append(f"GPU {gpu!r} is not in the catalog; using the given memory size")
    if memory_bytes is None:
        if spec is None:
            raise EstimateError("no GPU given: name a GPU (--gpu) or give its memory (--gpu-memory-gib)")
        memory_bytes = spec.memory_bytes
        basis = MEMORY_BASIS.get(spec.memory_basis, spec.memory_basis)
        assumptions.append(f"{spec.name}: {memory_bytes / 2**30:.2f} GiB visible to the runtime, from {basis}")
    platform: Platform = spec.platform if spec is not None else ("rocm" if vendor_from_name(gpu) == "amd" else "cuda")
    return GpuInput(memory_bytes, spec.name if spec else gpu, platform, spec.compute_capability if spec else None,
                    assumptions)


def _embedded_arch(config: dict[str, Any], model_id: str) -> ModelArch:
    """The architecture of a config embedded in a profile (``model.config``).

    Its content is whatever the profile's author wrote: wrong types, a zero interval or a broken layer pattern make
    ``arch_from_hf_config`` raise KeyError, TypeError, ValueError, ZeroDivisionError or a ValidationError. Like a
    config.json file (``catalog.models._from_config_file``), that is a ``CatalogError`` naming the field, not a crash.
    """
    try:
        return arch_from_hf_config(config, model_id)
    except CatalogError as e:
        raise CatalogError(f"$.model.config: {e}") from None
    except ValidationError as e:
        first = e.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "$"
        raise CatalogError(f"$.model.config: the architecture it describes is invalid: {where}: "
                           f"{first['msg']}") from None
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as e:
        raise CatalogError(f"$.model.config: cannot read the architecture ({type(e).__name__}: {e})") from None


_FLAG_ARGS = {"enable_expert_parallel": ("enable-expert-parallel", "enable_expert_parallel"),
              "language_model_only": ("language-model-only", "language_model_only")}
"""Request flags a profile can carry only in ``engine.extra_args`` (vLLM CLI spelling or Python keyword)."""


def _flag(extra: dict[str, Any] | None, names: tuple[str, ...]) -> bool:
    """A boolean vLLM flag from ``engine.extra_args``: present and not false ("True", true, "" all count)."""
    for name in names:
        if extra and name in extra:
            return str(extra[name]).strip().lower() not in ("false", "0", "no")
    return False


def request_from_profile(profile: Profile) -> EstimateRequest:
    """The calculator inputs a profile implies: same model, GPU, parallelism and engine settings."""
    eng = profile.engine
    quant_hint = profile.model.quantization.method if profile.model.quantization else None
    if profile.model.config is not None:
        arch = _embedded_arch(profile.model.config, profile.model.id)
        assumptions: list[str] = ["architecture from the profile's embedded config"]
    else:
        resolved = resolve_model(profile.model.id, quantization=quant_hint)
        arch, assumptions = resolved.arch, list(resolved.assumptions)
    gpu = gpu_memory(profile.hardware.gpu_name, profile.hardware.memory_per_gpu_bytes)
    platform: Platform = "rocm" if profile.hardware.vendor == "amd" else gpu.platform
    workload = profile.workload
    return EstimateRequest(
        arch=arch,
        gpu_memory_bytes=gpu.memory_bytes,
        gpu_name=gpu.name,
        gpu_compute_capability=gpu.compute_capability,
        platform=platform,
        engine="transformers" if eng.name == "transformers" else "vllm",
        engine_version=eng.version,
        tensor_parallel_size=eng.tensor_parallel_size,
        pipeline_parallel_size=eng.pipeline_parallel_size,
        data_parallel_size=eng.data_parallel_size,
        enable_expert_parallel=_flag(eng.extra_args, _FLAG_ARGS["enable_expert_parallel"]),
        language_model_only=_flag(eng.extra_args, _FLAG_ARGS["language_model_only"]),
        dtype=profile.model.dtype,
        kv_cache_dtype=eng.kv_cache_dtype,
        gpu_memory_utilization=eng.gpu_memory_utilization,
        max_model_len=eng.max_model_len,
        max_num_seqs=eng.max_num_seqs,
        max_num_batched_tokens=eng.max_num_batched_tokens,
        block_size=eng.block_size,
        enforce_eager=bool(eng.enforce_eager),
        batch_size=workload.batch_size if workload else None,
        input_len=workload.input_tokens if workload else None,
        output_len=workload.output_tokens if workload else None,
        assumptions=tuple(assumptions + gpu.assumptions),
    )


def request_from_options(model: str, *, gpu: str | None = None, gpu_memory_bytes: int | None = None,
                         quantization: str | None = None, **settings: Any) -> EstimateRequest:
    """The calculator inputs of ``llmsizer estimate`` (and ``pytest_llmsizer.estimate``)."""
    resolved = resolve_model(model, quantization=quantization)
    found = gpu_memory(gpu, gpu_memory_bytes)
    request = EstimateRequest(arch=resolved.arch, gpu_memory_bytes=found.memory_bytes, gpu_name=found.name,
                              gpu_compute_capability=found.compute_capability, platform=found.platform,
                              assumptions=tuple(list(resolved.assumptions) + found.assumptions))
    clean = {k: v for k, v in settings.items() if v is not None}
    try:
        return replace(request, **clean)
    except TypeError as e:
        raise EstimateError(f"unknown estimate option: {e}") from None
