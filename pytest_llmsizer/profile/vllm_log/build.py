"""A native ``Profile`` from a parsed vLLM log, with command-line options filling what the log lacks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from pytest_llmsizer.catalog.gpus import vendor_from_name
from pytest_llmsizer.errors import LlmsizerError, Problem, ProfileError
from pytest_llmsizer.profile.errors_fmt import problems_from_validation
from pytest_llmsizer.profile.model import Engine, Profile
from pytest_llmsizer.profile.vllm_log.facts import LOOKED_FOR, Fact, MemoryFact, VllmLogFacts
from pytest_llmsizer.profile.vllm_log.parse import parse_vllm_log, printed_decimals

# ----------------------------------------------------------------------------------------------------------
# Profile
# ----------------------------------------------------------------------------------------------------------

_HF_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_NOT_OVERRIDABLE = ("name", "tensor_parallel_size", "pipeline_parallel_size", "extra_args")
_OVERRIDABLE = (*(name for name in Engine.model_fields if name not in _NOT_OVERRIDABLE), "dtype", "quantization")
"""``profile_from_log`` keyword options besides the named ones: Engine fields, and the model's dtype / quantization"""


def _flag(name: str) -> str:
    """The command-line option that supplies an engine setting (``llmsizer import vllm-log``)."""
    return "--engine-version" if name == "version" else "--" + name.replace("_", "-")


def _where(f: Fact | MemoryFact) -> str:
    return f"line {f.line_number}: {f.text!r}"


def _quant_key(method: str) -> str:
    """vLLM's kernel path names the same method as the flag: gptq_marlin ~ gptq, auto-round ~ auto_round."""
    key = method.strip().lower().replace("-", "_")
    return key.removesuffix("_marlin_24").removesuffix("_marlin")


def _same_setting(log: Fact, given: Any) -> bool:
    if isinstance(log.value, str) and isinstance(given, str) and log.value.lower() == given.lower():
        return True
    if isinstance(log.value, float) and isinstance(given, (int, float)) and not isinstance(given, bool):
        d = printed_decimals(log.printed) if log.printed else 6
        return abs(log.value - float(given)) <= 0.5 * 10**-d + 1e-12
    return log.value == given


def _merge(name: str, log: Fact | None, given: Any, flag: str | None = None) -> Any:
    """The log's value, or the given one where the log lacks it; both and different -> LlmsizerError.

    Two refinements are not disagreements: a requested dtype "auto" (the argument line) and a given dtype; a
    quantization flag and the kernel path vLLM chose for it (gptq / gptq_marlin).
    """
    if given is None:
        return None if log is None else log.value
    if log is not None and name == "dtype" and log.value == "auto" and log.form != "engine-config":
        return given
    if log is not None and name == "dtype" and given == "auto":
        return log.value
    if log is not None and name == "quantization" and _quant_key(str(log.value)) == _quant_key(str(given)):
        return log.value
    if log is None or _same_setting(log, given):
        return given if log is None else log.value
    raise LlmsizerError(
        f"{flag or _flag(name)} {given!r} disagrees with the log, which states {name} = {log.value!r} "
        f"({_where(log)}); pass the value the run used, or leave {flag or _flag(name)} out"
    )


def _parallel_size(
    name: str, flag: str, log: Fact | None, given: int | None, facts: VllmLogFacts, notes: list[str]
) -> int:
    value = _merge(name, log, given, flag)
    if value is not None:
        return int(value)
    if len(facts.ranks) <= 1:
        notes.append(
            f"{name} = 1: the log states no {name} and shows a single process (vLLM's default); not read from "
            "the log."
        )
        return 1
    workers = facts.worker_ranks
    if name == "pipeline_parallel_size" and workers and all(
        r.name_parts is not None and "PP" not in r.name_parts for r in workers
    ):
        # V1 names a worker "Worker[_DPd][_PPp][_TPt][_EPe]", adding a part only when that size is > 1. (TP is
        # never inferred this way: it defaults to 1 only for a single-process log.)
        names = ", ".join(r.label for r in workers)
        notes.append(
            f"{name} = 1: the log states no {name}, and its worker names ({names}) carry no PP part, which "
            f"vLLM adds only when {name} > 1."
        )
        return 1
    shown = ", ".join(r.label for r in facts.ranks)
    raise LlmsizerError(
        f"the log does not state the {name} and shows {len(facts.ranks)} processes ({shown}): pass {flag}"
    )


def _check_ranks_fit(facts: VllmLogFacts, tp: int, pp: int) -> None:
    for rank in facts.worker_ranks:
        if rank.index is None:
            continue
        _, p, t = rank.index
        impossible = t >= tp * pp if rank.global_rank else (t >= tp or p >= pp)
        if impossible:
            raise LlmsizerError(
                f"the log shows worker {rank.label}, impossible with tensor_parallel_size {tp} and "
                f"pipeline_parallel_size {pp}: check --tp / --pp"
            )


class _LogLines:
    """source.log_lines: each line a profile number came from, once, in log order."""

    def __init__(self, facts: list[Fact | MemoryFact]):
        by_number = {f.line_number: f.line for f in facts}
        self.numbers = sorted(by_number)
        self.lines = [by_number[n] for n in self.numbers]
        self.index = {n: i for i, n in enumerate(self.numbers)}

    def ref(self, f: Fact | MemoryFact) -> str:
        return f'source.log_lines[{self.index[f.line_number]}]: "{f.text}"'


def _component(name: str, facts: tuple[MemoryFact, ...], gpu_count: int, refs: _LogLines) -> dict[str, Any] | None:
    if not facts:
        return None
    first = facts[0]
    rank0 = first.rank.index == (0, 0, 0)
    who = f"rank 0 ({first.rank.label})" if rank0 else f"rank 0 did not print it; value of {first.rank.label}"
    parts = [f"{who}: {refs.ref(first)}."]
    if first.unit == "GB" and first.unit_read == "GiB":
        parts.append('vLLM printed "GB" but the value is bytes / 2^30 (GiB), as it always has been.')
    if first.unit == "MB":
        parts.append('vLLM printed "MB" (the PR #3120 preview) but the value is bytes / 2^20 (MiB).')
    if first.estimated:
        parts.append("vLLM's estimate before capture, not the measured pool.")
    if first.form == "v1-max-seq-len-error":
        parts.append("From the engine's error line (the engine's view, not one worker's).")
    per_gpu = None
    if gpu_count > 1 and len(facts) == gpu_count:
        per_gpu = [f.bytes for f in facts]
        parts.append("per_gpu_bytes in rank order: " + "; ".join(f"{f.rank.label} {refs.ref(f)}" for f in facts))
        if facts[-1].rank.index is None:
            parts.append("Workers that print no rank are in order of first appearance.")
    elif len(facts) > 1:
        parts.append(
            f"{len(facts)} ranks printed it for {gpu_count} GPUs, so no per_gpu_bytes; others: "
            + "; ".join(f"{f.rank.label} {f.printed} {f.unit}" for f in facts[1:])
        )
    note = " ".join(parts)
    if len(note) > 2000:
        note = note[:1996] + " ..."
    return {
        "bytes": first.bytes,
        "provenance": "engine",
        "confidence": "medium" if first.estimated or not rank0 else "high",
        "per_gpu_bytes": per_gpu,
        "unit_read": first.unit_read,
        "note": note,
    }


def profile_from_log(
    text: str | Iterable[str],
    *,
    source: str,
    model: str | None = None,
    gpu: str | None = None,
    tp: int | None = None,
    pp: int | None = None,
    gpu_memory_gib: float | None = None,
    **engine_overrides: Any,
) -> Profile:
    """A native profile from a vLLM startup log.

    The options supply what the log lacks (``model``: Hugging Face id; ``gpu``: GPU name; ``gpu_memory_gib``: the
    GPU's memory; ``tp`` / ``pp``; ``engine_overrides``: ``Engine`` fields such as ``max_model_len``, plus ``dtype``
    and ``quantization``). A value both in the log and given, but different, raises ``LlmsizerError`` naming both;
    so does a missing required fact (the model id; the GPU name or memory), naming the option that supplies it.
    A log without any memory or KV-capacity line raises ``ProfileError``.
    """
    facts = parse_vllm_log(text)
    if not facts.has_measurements:
        raise ProfileError(source, [Problem("$", "no memory line found: looked for " + ", ".join(LOOKED_FOR))])
    unknown = sorted(set(engine_overrides) - set(_OVERRIDABLE))
    if unknown:
        raise LlmsizerError(
            f"unknown engine setting(s) {', '.join(unknown)}; expected one of {', '.join(_OVERRIDABLE)}"
        )
    if facts.conflicts:
        raise LlmsizerError(
            "the log states a value twice, differently (two runs in one log?): "
            + "; ".join(c.message for c in facts.conflicts)
            + ". Pass the log of one run."
        )
    notes: list[str] = []

    # model: the log's id, or --model
    log_model = facts.model.value if facts.model is not None else None
    log_is_id = log_model is not None and _HF_ID.fullmatch(log_model) is not None
    if model is None:
        if log_model is None:
            raise LlmsizerError("the log does not name the model: pass --model")
        if not log_is_id:
            raise LlmsizerError(
                f"the log names the model only as {log_model!r} (a local path, not a Hugging Face id): pass --model"
            )
        model_id = log_model
    else:
        stated = facts.model  # not None when log_is_id; named so the type checker sees it narrowed
        if log_is_id and stated is not None and stated.value.lower() != model.lower():
            raise LlmsizerError(
                f"--model {model!r} disagrees with the log, which names {log_model!r} ({_where(stated)}); "
                "pass the model the run used, or leave --model out"
            )
        model_id = model

    # GPU: a name (--gpu) or the memory (--gpu-memory-gib or the log's total_gpu_memory)
    log_total = facts.total_gpu_memory[0] if facts.total_gpu_memory else None
    memory_bytes = None
    if log_total is not None:
        if gpu_memory_gib is not None and abs(log_total.value - gpu_memory_gib) > 0.5 * 10 ** -printed_decimals(
            log_total.printed
        ) + 1e-12:
            raise LlmsizerError(
                f"--gpu-memory-gib {gpu_memory_gib} disagrees with the log's total_gpu_memory {log_total.printed} GiB "
                f"({_where(log_total)}); pass the memory the GPU reported, or leave --gpu-memory-gib out"
            )
        memory_bytes = log_total.bytes
        others = {f.printed for f in facts.total_gpu_memory[1:]} - {log_total.printed}
        if others:
            notes.append(
                f"memory_per_gpu_bytes is rank 0's total_gpu_memory ({log_total.printed} GiB); other ranks "
                f"report {', '.join(sorted(others))} GiB."
            )
    elif gpu_memory_gib is not None:
        memory_bytes = round(gpu_memory_gib * 2**30)
    if gpu is None and memory_bytes is None:
        raise LlmsizerError(
            "the log names neither the GPU nor its memory (no total_gpu_memory line): pass --gpu or --gpu-memory-gib"
        )

    tp_size = _parallel_size("tensor_parallel_size", "--tp", facts.tensor_parallel_size, tp, facts, notes)
    pp_size = _parallel_size("pipeline_parallel_size", "--pp", facts.pipeline_parallel_size, pp, facts, notes)
    _check_ranks_fit(facts, tp_size, pp_size)
    dp_value = _merge("data_parallel_size", facts.data_parallel_size, engine_overrides.get("data_parallel_size"))
    dp_size = int(dp_value) if dp_value is not None else 1
    gpu_count = tp_size * pp_size * dp_size

    engine: dict[str, Any] = {"name": "vllm", "tensor_parallel_size": tp_size, "pipeline_parallel_size": pp_size,
                              "data_parallel_size": dp_size}
    for name in ("version", "gpu_memory_utilization", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
                 "block_size", "kv_cache_dtype", "enforce_eager"):
        engine[name] = _merge(name, getattr(facts, name), engine_overrides.get(name))
    dtype = _merge("dtype", facts.dtype, engine_overrides.get("dtype"))
    quant = _merge("quantization", facts.quantization, engine_overrides.get("quantization"))

    # measurements
    kv_tokens, kv_tokens_fact = None, facts.kv_cache_tokens
    if kv_tokens_fact is not None:
        kv_tokens = kv_tokens_fact.value
    elif facts.kv_cache_tokens_from_blocks is not None:
        kv_tokens_fact = facts.kv_cache_tokens_from_blocks
        kv_tokens = kv_tokens_fact.value
        notes.append(f"kv_cache_tokens derived, not printed: {kv_tokens_fact.basis}.")
    if facts.peak_torch and not facts.activation_peak:
        notes.append(
            f"peak_torch_memory={facts.peak_torch[0].printed} GiB (one-line ~0.6.4 format) is weights + activation "
            "peak; no activation component is split from it."
        )
    if facts.consumed_memory:
        notes.append(
            f"The V1 summary reports weights + non-torch together ({facts.consumed_memory[0].printed} GiB on "
            f"{facts.consumed_memory[0].rank.label}); not split into components."
        )

    cuda_graphs = facts.cuda_graphs or facts.cuda_graphs_estimated
    component_facts = {
        "weights": facts.weights,
        "kv_cache": facts.kv_cache,
        "activations": facts.activation_peak,
        "non_torch": facts.non_torch,
        "cuda_graphs": cuda_graphs,
    }
    used: list[Fact | MemoryFact] = [f for fs in component_facts.values() for f in fs]
    used += list(facts.total_gpu_memory[:1])
    used += [f for f in (kv_tokens_fact, facts.num_gpu_blocks, facts.max_concurrency) if f is not None]
    used += [*facts.peak_torch[:1], *facts.consumed_memory[:1]]
    used += [f for name in ("model", "version", "tensor_parallel_size", "pipeline_parallel_size", "dtype",
                            "quantization", "kv_cache_dtype", "max_model_len", "gpu_memory_utilization",
                            "block_size", "max_num_seqs", "max_num_batched_tokens", "enforce_eager")
             if (f := getattr(facts, name)) is not None]
    refs = _LogLines(used)
    components = {
        name: comp for name, fs in component_facts.items() if (comp := _component(name, fs, gpu_count, refs))
    }
    if facts.engine_generation is not None:
        notes.append(f"vLLM {facts.engine_generation.value} engine.")

    data: dict[str, Any] = {
        "source": {
            "reference": source,
            "kind": "vllm-log",
            "original_format": "vllm-startup-log (" + ", ".join(facts.forms) + ")",
            "notes": " ".join(f"[vllm_log] {n}" for n in notes) or None,
            "log_lines": refs.lines,
        },
        "model": {
            "id": model_id,
            "dtype": dtype,
            "quantization": None if quant is None else {"method": quant, "detail": f"quantization={quant} (vLLM)"},
            "name_in_source": log_model,
        },
        "hardware": {
            "gpu_name": gpu,
            "vendor": vendor_from_name(gpu),
            "gpu_count": gpu_count,
            "memory_per_gpu_bytes": memory_bytes,
        },
        "engine": engine,
        "measurements": {
            "components": components,
            "kv_cache_tokens": kv_tokens,
            "max_concurrency": facts.max_concurrency.value if facts.max_concurrency else None,
            "num_gpu_blocks": facts.num_gpu_blocks.value if facts.num_gpu_blocks else None,
        },
    }
    try:
        return Profile.model_validate(data)
    except ValidationError as e:
        raise ProfileError(source, problems_from_validation(e)) from None
