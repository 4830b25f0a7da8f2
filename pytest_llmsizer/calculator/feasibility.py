"""Would vLLM start at all? The checks vLLM makes before (and right after) sizing the KV cache, in its own words.

A sizing tool that prints a number for a deployment the engine refuses is worse than one that prints nothing: the
user believes the number. Each check below mirrors one refusal in vLLM, with the message it prints (or, where vLLM
fails on an assertion without a message, a sentence naming that assertion):

* ``ModelConfig.verify_with_parallel_config``: attention heads divisible by TP;
* ``QKVParallelLinear``: KV heads divisible by TP, or TP a multiple of them (the heads are then replicated);
* ``MergedColumnParallelLinear`` / ``FusedMoE``: the MLP and expert widths are split evenly over TP (``divide``);
* expert parallelism: the experts split evenly over the EP group (TP x DP);
* ``_get_and_verify_max_len``: max_model_len above the model's derived limit needs VLLM_ALLOW_LONG_MAX_MODEL_LEN;
* ``determine_available_memory`` / ``check_enough_kv_cache_memory``: some KV memory, and room for one request of
  max_model_len ("To serve at least one request ..."); on the V0 engine ``raise_if_cache_size_invalid``: some
  blocks, and max_model_len at most block_size x num_gpu_blocks ("The model's max seq len ... is larger than ...");
* ``_ModelRegistry._raise_for_unsupported``: an architecture vLLM has removed (``_PREVIOUSLY_SUPPORTED_MODELS``).

Pure functions of the request and the numbers the engine model computed; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_llmsizer.calculator.kv_cache import KvCapacity
from pytest_llmsizer.catalog.arch import ModelArch
from pytest_llmsizer.units import GiB

REMOVED_ARCHITECTURES: dict[str, tuple[int, int, int]] = {"MllamaForConditionalGeneration": (0, 10, 2)}
"""Architectures the calculator can read that vLLM has since removed, with the last release that served them: vLLM's
``_PREVIOUSLY_SUPPORTED_MODELS`` (0.16.0 and 0.17.0 ``model_executor/models/registry.py``: "encoder-decoder models
except whisper have been removed for V0 deprecation"). Versions are compared as (major, minor), so a removal at
0.10.2 refuses 0.11 and later."""


WITHOUT_PIPELINE_PARALLEL: frozenset[str] = frozenset({"MllamaForConditionalGeneration"})
"""Architectures the calculator can read whose vLLM model class does not implement ``SupportsPP`` (0.7.0
``model_executor/models/mllama.py``: ``MllamaForConditionalGeneration(nn.Module, SupportsMultiModal)``), so
``ModelConfig.verify_with_parallel_config`` refuses pipeline parallelism."""


def _listed_architecture(arch: ModelArch) -> str | None:
    """The config architecture the lists above are keyed by (only the cross-attention reader records it today)."""
    return arch.cross_attention.architecture if arch.cross_attention is not None else None


def pipeline_parallel_problem(arch: ModelArch, pp: int) -> str | None:
    """vLLM's refusal of pipeline parallelism for a model class without ``SupportsPP``, or None."""
    if pp <= 1 or _listed_architecture(arch) not in WITHOUT_PIPELINE_PARALLEL:
        return None
    return ("Pipeline parallelism is not supported for this model. Supported models implement the `SupportsPP` "
            "interface.")


def removed_architecture_problem(arch: ModelArch, version: tuple[int, int]) -> str | None:
    """vLLM's words for an architecture it no longer serves at ``version``, or None.

    With the default ``--model-impl auto`` vLLM first tries its Transformers modeling backend for an architecture it
    does not register; for Mllama that backend cannot stand in (its multimodal processing info asks the processor
    for ``_get_num_multimodal_tokens``, which MllamaProcessor lacks, and it has no cross-attention KV), so the
    deployment fails either way; the registry's message is the one that names the cause."""
    name = _listed_architecture(arch)
    last = REMOVED_ARCHITECTURES.get(name or "")
    if last is None or version <= last[:2]:
        return None
    return (f"Model architecture {name} was supported in vLLM until v{'.'.join(map(str, last))}, and is not "
            "supported anymore. Please use an older version of vLLM if you want to use this model architecture.")


def parallel_problems(arch: ModelArch, tp: int, dp: int, expert_parallel: bool) -> list[str]:
    """The sharding refusals: heads, KV heads, MLP/expert widths over TP; experts over the EP group."""
    out: list[str] = []
    if arch.num_attention_heads % tp:
        out.append(f"Total number of attention heads ({arch.num_attention_heads}) must be divisible by tensor "
                   f"parallel size ({tp}).")
    if arch.mla is None and any(kind in ("full", "sliding", "chunked") for kind in arch.layer_attention):
        kv = arch.num_kv_heads
        if (kv >= tp and kv % tp) or (kv < tp and tp % kv):
            out.append(f"Total number of KV heads ({kv}) must be divisible by tensor parallel size ({tp}), or "
                       f"the tensor parallel size by it (QKVParallelLinear replicates KV heads only then).")
    if "dense" in arch.layer_mlp and arch.intermediate_size and arch.intermediate_size % tp:
        out.append(f"MLP intermediate size {arch.intermediate_size} is not divisible by tensor parallel size "
                   f"({tp}) (MergedColumnParallelLinear: {arch.intermediate_size} is not divisible by {tp}).")
    if arch.moe is not None and "moe" in arch.layer_mlp:
        if expert_parallel:
            ep = tp * dp
            if arch.moe.num_experts % ep:
                out.append(f"Number of experts ({arch.moe.num_experts}) is not divisible by the expert parallel "
                           f"size ({ep} = TP {tp} x DP {dp}).")
        elif arch.moe.expert_intermediate_size % tp:
            width = arch.moe.expert_intermediate_size
            out.append(f"MoE expert intermediate size {width} is not divisible by tensor parallel size ({tp}) "
                       f"(FusedMoE: {width} is not divisible by {tp}); try --enable-expert-parallel.")
    return out


def length_problem(max_model_len: int, limit: int | None, allow_long: bool) -> str | None:
    """vLLM ``_get_and_verify_max_len``: a user max_model_len above the derived limit is refused unless allowed."""
    if limit is None or max_model_len <= limit or allow_long:
        return None
    return (f"User-specified max_model_len ({max_model_len}) is greater than the derived max_model_len ({limit}) "
            "from the model's config.json. To allow overriding this maximum, set the env var "
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 (--allow-long-max-model-len here).")


def memory_problems(kv_available: int, capacity: KvCapacity, max_model_len: int,
                    fits_len: Callable[[int], bool], *, v0: bool = False) -> tuple[list[str], int | None]:
    """No KV memory at all, or not enough for one request of max_model_len; with the longest max_model_len that
    would fit (None when max_model_len fits or there is no KV memory). ``v0``: the V0 engine's check and words
    (0.7.0 ``worker.raise_if_cache_size_invalid``, the same text a vLLM 0.3 log of QwenLM/Qwen3#16 shows)."""
    if kv_available <= 0 or capacity.num_blocks <= 0:
        return ["No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
                "initializing the engine."], None
    if v0:
        stored = capacity.block_size * capacity.num_blocks
        if max_model_len <= stored:
            return [], None
        return [f"The model's max seq len ({max_model_len}) is larger than the maximum number of tokens that can be "
                f"stored in KV cache ({stored}). Try increasing `gpu_memory_utilization` or decreasing "
                "`max_model_len` when initializing the engine."], stored
    if capacity.request_bytes <= kv_available:
        return [], None
    longest = longest_fitting_length(max_model_len, fits_len)
    return [f"To serve at least one request with the model's max seq len ({max_model_len}), "
            f"({capacity.request_bytes / GiB:.2f} GiB KV cache is needed, which is larger than the available KV "
            f"cache memory ({kv_available / GiB:.2f} GiB). Based on the available memory, the estimated maximum "
            f"model length is {longest}. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` "
            "when initializing the engine."], longest


def longest_fitting_length(upper: int, fits_len: Callable[[int], bool]) -> int:
    """The largest max_model_len in [0, upper] for which one request fits (binary search, as vLLM's
    ``estimate_max_model_len`` does); 0 when not even one token fits."""
    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits_len(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
