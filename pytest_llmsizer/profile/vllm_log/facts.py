"""What a vLLM startup log states: facts with their line, rank and unit, before any profile is built.

The formats are those of ``shared/notes/vllm-log-formats.md`` (see the package docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_llmsizer.units import UNIT_BYTES

NUM = r"-?\d+(?:\.\d+)?"
INT = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+"
V0_DEFAULT_BLOCK_SIZE = 16

# ----------------------------------------------------------------------------------------------------------
# Facts
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rank:
    """Which process printed a line.

    ``index`` is (data-parallel, pipeline, tensor) rank where the log says it (the main process: its DP index, 0, 0),
    None for a worker whose prefix gives only a pid.
    """

    label: str
    index: tuple[int, int, int] | None
    worker: bool
    global_rank: bool = False
    """True when the tensor slot of ``index`` holds a global rank ("rank=N", "[rankN]"), not a TP rank"""
    name_parts: tuple[str, ...] | None = None
    """for V1 "Worker[_DPd][_PPp][_TPt][_EPe]" names: the parts present. vLLM adds a part only when that
    parallel size is > 1, so a missing PP / TP part says that size is 1."""

    @property
    def dp(self) -> int:
        return self.index[0] if self.index is not None else 0


MAIN = Rank("main process", (0, 0, 0), worker=False)


@dataclass(frozen=True)
class Fact:
    """One value the log states, with the exact line it came from."""

    value: Any
    line: str
    """the log line, verbatim (trailing whitespace removed)"""
    line_number: int
    """1-based line number in the text"""
    text: str
    """the part of the line that states the value"""
    rank: Rank
    form: str
    """which log format the value was read from"""
    printed: str | None = None
    """a number exactly as printed (for comparisons at the printed precision)"""
    derived: bool = False
    """True when computed from other facts (``basis`` says how), not printed"""
    basis: str | None = None


@dataclass(frozen=True)
class MemoryFact:
    """A memory amount one rank printed. ``value`` is the number as printed, in ``unit`` as printed."""

    value: float
    printed: str
    unit: str
    """the unit label vLLM printed: "GiB", "GB" (which means GiB on the weights line) or "MB" (which means MiB)"""
    unit_read: str
    """what the number really is: "GiB" or "MiB" (see the module docstring)"""
    line: str
    line_number: int
    text: str
    rank: Rank
    form: str
    estimated: bool = False
    """True for vLLM's own pre-capture estimate (CUDA graphs), not a measured amount"""

    @property
    def bytes(self) -> int:
        return round(self.value * UNIT_BYTES[self.unit_read])

    @property
    def gib(self) -> float:
        return self.bytes / 2**30


@dataclass(frozen=True)
class Conflict:
    """The log states one value twice, differently (e.g. two runs pasted together, or a before/after comparison)."""

    name: str
    first: Fact | MemoryFact
    other: Fact | MemoryFact

    @property
    def message(self) -> str:
        def show(f: Fact | MemoryFact) -> str:
            value = f"{f.printed} {f.unit}" if isinstance(f, MemoryFact) else repr(f.value)
            return f"{value} (line {f.line_number}: {f.text!r})"

        where = f" on {self.first.rank.label}" if isinstance(self.first, MemoryFact) else ""
        return f"{self.name}{where}: {show(self.first)} vs {show(self.other)}"


@dataclass(frozen=True)
class VllmLogFacts:
    """Everything a vLLM startup log states. Missing stays ``None`` / empty; nothing is guessed.

    Settings and engine-wide values are single ``Fact``s (the engine's effective value wins over the requested
    argument; ``conflicts`` lists values stated twice differently). Memory values are per rank: one ``MemoryFact``
    per rank, in rank order (see the module docstring).
    """

    # -- engine and model settings
    version: Fact | None = None
    engine_generation: Fact | None = None
    model: Fact | None = None
    tensor_parallel_size: Fact | None = None
    pipeline_parallel_size: Fact | None = None
    data_parallel_size: Fact | None = None
    dtype: Fact | None = None
    quantization: Fact | None = None
    kv_cache_dtype: Fact | None = None
    max_model_len: Fact | None = None
    gpu_memory_utilization: Fact | None = None
    block_size: Fact | None = None
    max_num_seqs: Fact | None = None
    max_num_batched_tokens: Fact | None = None
    enforce_eager: Fact | None = None
    # -- per rank, GiB / GB / MB as printed
    weights: tuple[MemoryFact, ...] = ()
    total_gpu_memory: tuple[MemoryFact, ...] = ()
    non_torch: tuple[MemoryFact, ...] = ()
    activation_peak: tuple[MemoryFact, ...] = ()
    kv_cache: tuple[MemoryFact, ...] = ()
    """available KV cache memory (the KV pool): all forms, negative values included"""
    cuda_graphs: tuple[MemoryFact, ...] = ()
    """CUDA graph memory actually taken"""
    cuda_graphs_estimated: tuple[MemoryFact, ...] = ()
    peak_torch: tuple[MemoryFact, ...] = ()
    """one-line ~0.6.4 format: weights + activation peak (not split)"""
    initial_memory_usage: tuple[MemoryFact, ...] = ()
    memory_usage_post_profile: tuple[MemoryFact, ...] = ()
    memory_budget: tuple[MemoryFact, ...] = ()
    """total_gpu_memory x gpu_memory_utilization: what this vLLM instance may use"""
    free_memory_on_startup: tuple[MemoryFact, ...] = ()
    consumed_memory: tuple[MemoryFact, ...] = ()
    """V1 summary: weights + non-torch together (not split)"""
    # -- engine-wide
    kv_cache_tokens: Fact | None = None
    """printed token capacity: "GPU KV cache size: N tokens" or the V0 max-seq-len error"""
    kv_cache_tokens_from_blocks: Fact | None = None
    """derived: GPU blocks x block size, only where the log states the block size or the V0 default 16 applies"""
    num_gpu_blocks: Fact | None = None
    num_cpu_blocks: Fact | None = None
    max_concurrency: Fact | None = None
    max_concurrency_tokens: Fact | None = None
    """the "L tokens per request" of the concurrency line (vLLM prints max_model_len there)"""
    kv_cache_needed: Fact | None = None
    """V1 error: GiB of KV one max-length request needs"""
    estimated_max_model_len: Fact | None = None
    # -- per rank, other
    gpu_blocks_per_rank: tuple[Fact, ...] = ()
    """fork format "The engine can allocate N GPU blocks ... on PP Rank p TP Rank t" (per rank, not engine-wide)"""
    profiling_seconds: tuple[Fact, ...] = ()
    cuda_graph_capture_seconds: tuple[Fact, ...] = ()
    cuda_graph_profile: tuple[Fact, ...] = ()
    """"Profiling CUDA graph memory: PIECEWISE=a (largest=b), ..." as {mode: "a (largest=b)"}"""
    notices: tuple[Fact, ...] = ()
    """recognised warnings and errors (``form`` names which); ``value`` holds what they state, if anything"""
    unsloth_kv_estimate: Fact | None = None
    """Unsloth's own "vLLM's KV Cache can use up to X GB" (its estimate, in its "GB"); not vLLM's KV cache"""
    # -- bookkeeping
    ranks: tuple[Rank, ...] = ()
    """every process that printed a line, in rank order"""
    conflicts: tuple[Conflict, ...] = ()
    forms: tuple[str, ...] = ()
    """the formats recognised, in order of first appearance"""

    @property
    def has_measurements(self) -> bool:
        """Whether the log printed any memory amount or KV capacity."""
        memory = (
            self.weights,
            self.total_gpu_memory,
            self.non_torch,
            self.activation_peak,
            self.kv_cache,
            self.cuda_graphs,
            self.cuda_graphs_estimated,
            self.peak_torch,
            self.memory_budget,
            self.consumed_memory,
        )
        capacity = (self.kv_cache_tokens, self.num_gpu_blocks, self.max_concurrency)
        return any(memory) or any(c is not None for c in capacity) or bool(self.gpu_blocks_per_rank)

    @property
    def worker_ranks(self) -> tuple[Rank, ...]:
        return tuple(r for r in self.ranks if r.worker)


LOOKED_FOR = (
    "'Loading model weights took X GB'",
    "'Model loading took X GiB'",
    "'Memory profiling results: total_gpu_memory=...'",
    "'the current vLLM instance can use ...' / 'model weights take ...'",
    "'Available KV cache memory: X GiB'",
    "'Free memory on device (F/T GiB) ...'",
    "'Graph capturing finished in S secs, took X GiB'",
    "'# GPU blocks: N' / '# CUDA blocks: N' / '# cuda blocks: N'",
    "'GPU KV cache size: N tokens'",
    "'Maximum concurrency for L tokens per request: Xx'",
    "the 'max seq len ... KV cache' errors",
)

