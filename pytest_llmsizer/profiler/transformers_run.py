"""Measure Hugging Face transformers in this process on one GPU: load, generate the workload, read the counters.

torch and transformers are the user's own installs (never dependencies of this package); without them, or without
a GPU, this module says so and measures nothing. Numbers come from torch's allocator (weights after load, its peak
during ``generate``), from the KV-cache tensors ``generate`` returned (their bytes), and from the device reader
(baseline before CUDA starts, peak, final). Activations are the measured remainder: allocator peak - weights - KV.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profiler.assemble import TransformersMeasurement
from pytest_llmsizer.profiler.devices import DeviceReader
from pytest_llmsizer.profiler.sampler import MemoryTrace, Sampler, read_baseline, summarize

_DTYPES = ("bfloat16", "float16", "float32")


def read_config_file(path: Path) -> dict[str, Any]:
    """A config.json (or a shared/data/model-configs file): the keys transformers reads, provenance keys
    (``_source``, ``_notes``, ``_num_parameters``) dropped."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LlmsizerError(f"{path}: cannot read the model config: {e}") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise LlmsizerError(f"{path}: $.model_type: expected a Hugging Face config.json with a model_type")
    return {k: v for k, v in data.items() if not k.startswith("_") or k == "_name_or_path"}


def import_engine() -> tuple[Any, Any]:
    """(torch, transformers), or a clear error naming what to install."""
    try:
        import torch
    except ImportError:
        raise LlmsizerError("the transformers profiler needs PyTorch with GPU support (pip install torch); it is "
                            "not a dependency of pytest-llmsizer") from None
    try:
        import transformers
    except ImportError:
        raise LlmsizerError("the transformers profiler needs Hugging Face transformers (pip install "
                            "transformers)") from None
    return torch, transformers


_NOT_CACHE = (str, bytes, int, float, bool, type(None), type, types.ModuleType, types.FunctionType,
              types.MethodType, types.BuiltinFunctionType)
"""Objects the cache walk does not enter: scalars, classes, modules and functions hold no cache tensors."""


def cache_tensors(cache: Any) -> list[Any]:
    """Every distinct tensor reachable from a cache object generate() returned (DynamicCache of transformers 4 or
    5, a hybrid / sliding-window cache, or the legacy tuple of (key, value) tuples), deduplicated by storage."""
    import torch

    seen: set[int] = set()
    found: list[Any] = []
    stack: list[tuple[Any, int]] = [(cache, 0)]
    visited: set[int] = set()
    while stack:
        obj, depth = stack.pop()
        if isinstance(obj, torch.Tensor):
            ptr = obj.untyped_storage().data_ptr()
            if obj.numel() and ptr not in seen:
                seen.add(ptr)
                found.append(obj)
            continue
        if depth > 6 or id(obj) in visited or isinstance(obj, _NOT_CACHE):
            continue
        visited.add(id(obj))
        if isinstance(obj, dict):
            stack += [(v, depth + 1) for v in obj.values()]
        elif isinstance(obj, (list, tuple)):
            stack += [(v, depth + 1) for v in obj]
        elif hasattr(obj, "__dict__"):
            stack += [(v, depth + 1) for v in vars(obj).values()]
    return found


def cache_bytes(cache: Any) -> int:
    return sum(t.numel() * t.element_size() for t in cache_tensors(cache))


def cached_tokens(cache: Any) -> int:
    """Token slots per sequence in the longest layer of the cache: the sequence axis of its [batch, heads, tokens,
    head_dim] tensors (a sliding-window layer holds fewer; a pre-allocated cache holds its capacity, as its bytes
    do). Falls back to the cache's own ``get_seq_length()`` when no tensor has that shape."""
    lengths = [int(t.shape[-2]) for t in cache_tensors(cache) if t.dim() == 4]
    if lengths:
        return max(lengths)
    try:
        return int(cache.get_seq_length())
    except Exception:  # a cache class without the method
        return 0


def _build_model(transformers: Any, torch: Any, model: str, config: dict[str, Any] | None, *, random_weights: bool,
                 dtype: Any, device: str, trust_remote_code: bool) -> Any:
    auto = transformers.AutoModelForCausalLM
    if config is not None or random_weights:
        if config is None:
            cfg = transformers.AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
        else:
            cfg_dict = dict(config)
            model_type = cfg_dict.pop("model_type")
            cfg = transformers.AutoConfig.for_model(model_type, **cfg_dict)
        with torch.device(device):
            try:
                return auto.from_config(cfg, dtype=dtype, trust_remote_code=trust_remote_code)
            except TypeError:  # transformers 4 names it torch_dtype
                return auto.from_config(cfg, torch_dtype=dtype, trust_remote_code=trust_remote_code)
    try:
        return auto.from_pretrained(model, dtype=dtype, device_map={"": device}, trust_remote_code=trust_remote_code)
    except TypeError:
        return auto.from_pretrained(model, torch_dtype=dtype, device_map={"": device},
                                    trust_remote_code=trust_remote_code)


def measure(model: str, *, config: dict[str, Any] | None, batch_size: int, input_len: int, output_len: int,
            reader: DeviceReader, hz: float, random_weights: bool, dtype: str | None = None,
            trust_remote_code: bool = False, seed: int = 0) -> tuple[TransformersMeasurement, MemoryTrace, float]:
    """Run the workload once on the first visible GPU. Returns the measurement, the device trace and the seconds."""
    import time

    torch, transformers = import_engine()
    if not torch.cuda.is_available():
        raise LlmsizerError("the transformers profiler needs a CUDA or ROCm GPU: torch.cuda.is_available() is False")
    name = dtype or (config or {}).get("torch_dtype") or (config or {}).get("dtype") or "bfloat16"
    if name not in _DTYPES:
        name = "bfloat16"
    torch_dtype = getattr(torch, name)
    baseline = read_baseline(reader, hz)  # before this process creates its CUDA context
    sampler = Sampler(reader, hz)
    sampler.start()
    start = time.monotonic()
    peak_from = 0.0
    try:
        torch.manual_seed(seed)
        device = "cuda:0"
        net = _build_model(transformers, torch, model, config, random_weights=random_weights, dtype=torch_dtype,
                           device=device, trust_remote_code=trust_remote_code)
        if next(net.parameters()).device.type != "cuda":  # a transformers version that built it elsewhere
            net.to(device)
        net.eval()
        torch.cuda.synchronize()
        if config is not None or random_weights:
            # from_config stands in for loading a checkpoint, but it allocates every module's own tensors and ties
            # shared ones afterwards: a tied lm_head (vocab x hidden) is built and dropped, a block a checkpoint load
            # never allocates. Hand the allocator's cached blocks back and leave the build out of the device peak.
            torch.cuda.empty_cache()
            torch.cuda.synchronize()
            peak_from = sampler.elapsed
        weights = torch.cuda.memory_allocated(0)
        reserved = torch.cuda.memory_reserved(0)
        used_after_load = reader.used_bytes()[0]
        params = sum(p.numel() for p in net.parameters())
        vocab = int(getattr(net.config, "vocab_size", None) or net.get_input_embeddings().num_embeddings)
        ids = torch.randint(0, vocab, (batch_size, input_len), device=device)
        mask = torch.ones_like(ids)
        torch.cuda.reset_peak_memory_stats(0)
        with torch.inference_mode():
            out = net.generate(input_ids=ids, attention_mask=mask, max_new_tokens=output_len,
                               min_new_tokens=output_len, do_sample=False, use_cache=True,
                               return_dict_in_generate=True, pad_token_id=0)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated(0)
        kv = cache_bytes(out.past_key_values)
        tokens = cached_tokens(out.past_key_values)
        generated = int(out.sequences.shape[1] - input_len)
        runtime_total = int(torch.cuda.mem_get_info(0)[1])
        seconds = time.monotonic() - start
        samples = sampler.stop()
    except BaseException:
        sampler.stop()
        raise
    final_in_use = reader.used_bytes()  # still loaded: the last moment of the run
    del out, net
    torch.cuda.empty_cache()
    final = reader.used_bytes()
    trace = summarize(baseline, [*samples, (seconds, final_in_use)], final, after_s=peak_from)
    measurement = TransformersMeasurement(
        weights_allocated=int(weights), reserved_after_load=int(reserved), device_used_after_load=int(used_after_load),
        kv_cache_bytes=int(kv), kv_cache_tokens=tokens, allocator_peak=int(peak), runtime_total_bytes=runtime_total,
        num_parameters=int(params), dtype=name, generated_tokens=generated,
    )
    return measurement, trace, seconds


class TorchCudaReader:
    """Fallback device reader when no NVML/amdsmi reader works: used = total - free from cudaMemGetInfo on the first
    visible GPU. Creating it starts this process's CUDA context, so the baseline then includes that context."""

    tool = "torch.cuda.mem_get_info (used = total - free; the baseline includes this process's CUDA context)"

    def __init__(self) -> None:
        torch, _ = import_engine()
        self._torch = torch
        _free, total = torch.cuda.mem_get_info(0)
        from pytest_llmsizer.profiler.devices import DeviceInfo

        self._info = (DeviceInfo(index=0, name=torch.cuda.get_device_name(0),
                                 vendor="amd" if getattr(torch.version, "hip", None) else "nvidia",
                                 runtime_total_bytes=int(total), smi_total_bytes=None),)

    def devices(self) -> tuple[Any, ...]:
        return self._info

    def used_bytes(self) -> list[int]:
        free, total = self._torch.cuda.mem_get_info(0)
        return [int(total - free)]

    def close(self) -> None:
        pass
