"""Read a vLLM startup log: the facts it states (``parse_vllm_log``) and a native profile (``profile_from_log``).

Pure: both functions take the log text and return objects; nothing here reads or writes files.

The formats are those of ``shared/notes/vllm-log-formats.md``:

* engine configuration: ``Initializing an LLM engine [(vX)] with config: ...`` / ``Initializing a V0|V1 LLM engine
  (vX) with config: ...``, ``non-default args: {...}``, ``args: Namespace(...)``, ``vLLM API server version X``;
* weights: ``Loading model weights took X MB|GB``, ``Model loading took X GB|GiB [memory] and S seconds``. vLLM's
  "GB" on these lines has always meant bytes / 2**30 (GiB); the MB preview meant bytes / 2**20 (MiB);
* memory profiling: the one-line ~0.6.4 ``Memory profiling results: total_gpu_memory=... peak_torch_memory=...``
  (``peak_torch_memory`` is weights + activation peak and is kept as such, never split), the multi-line table of
  PR #10511, the three V0 ``worker.py`` lines, V1 ``Available KV cache memory: X GiB`` and the V1 post-startup
  ``Free memory on device (F/T GiB) ... Actual usage is ...`` summary;
* KV capacity: ``# GPU blocks`` / ``# CUDA blocks`` / ``# cuda blocks`` (with or without CPU blocks, and with the
  leading ``#`` lost in a paste), ``GPU KV cache size: N tokens``, ``Maximum concurrency for L tokens per request:
  Xx``, the V0 and V1 "max seq len" errors and ``No available memory for the cache blocks``;
* CUDA graphs: ``Graph capturing finished in S secs[, took X GiB]``, ``Estimated CUDA graph memory``, ``Profiling
  CUDA graph memory``, ``CUDA graph pool memory: A GiB (actual), E GiB (estimated)``, the 1~3 GiB warning and the
  opt-in / default-on profiling notices (which state the current ``--gpu-memory-utilization``);
* third-party: the fork line ``... The engine can allocate N GPU blocks, M CPU blocks on PP Rank p TP Rank t.`` and
  Unsloth's ``vLLM's KV Cache can use up to X GB`` (kept as Unsloth's estimate, never as the KV cache).

Lines starting with ``#`` are comments (fixture headers, shell prompts) and are ignored, except a bare vLLM block
count line (``# GPU blocks: N, # CPU blocks: M``) whose timestamp prefix was stripped in a paste.

Ranks: a line's rank comes from its process prefix: ``(VllmWorker rank=N pid=..)``, ``(Worker_TPn pid=..)``,
``(Worker_PPp_TPt ..)``, ``[rankN]:``, or ``TP Rank N`` in the line. ``(VllmWorkerProcess pid=..)`` and
``(RayWorkerWrapper pid=..)`` workers do not print their rank; they are taken in order of first appearance, after the
main process (the V0 driver worker, rank 0). Per-rank lists are in rank order: the main process, then ranks the
log numbers, then unnumbered workers by appearance.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pytest_llmsizer.catalog.gpus import vendor_from_name
from pytest_llmsizer.errors import LlmsizerError, Problem, ProfileError
from pytest_llmsizer.profile.errors_fmt import problems_from_validation
from pytest_llmsizer.profile.model import Engine, Profile
from pytest_llmsizer.units import UNIT_BYTES

__all__ = [
    "Conflict",
    "Fact",
    "MemoryFact",
    "Rank",
    "VllmLogFacts",
    "parse_vllm_log",
    "profile_from_log",
]

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

# ----------------------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_BARE_BLOCKS_LINE = re.compile(r"#\s*(?:GPU|CUDA|cuda) blocks:\s*\d")
_PREFIX = re.compile(
    r"^\s*(?:[\w.-]+\s+\|\s+)?(?:\[rank(?P<grank>\d+)\]:\s*)?(?:\((?P<proc>[A-Za-z][^()]*)\))?"
)
_PP_TP_RANK = re.compile(r"\b(?:PP Rank (?P<pp>\d+) )?TP Rank (?P<tp>\d+)")


def _index_token(text: str, token: str) -> int | None:
    m = re.search(rf"(?:^|[_\s]){token}(\d+)(?![\d])", text)
    return int(m.group(1)) if m else None


def _rank_of(line: str) -> Rank:
    m = _PREFIX.match(line)
    proc = m.group("proc") if m else None
    if proc and ("pid=" in proc or re.match(r"(?:\w*Worker|EngineCore|APIServer|LLMRayActor)", proc)):
        name = proc.split()[0].rstrip(",")
        dp = _index_token(proc, "DP") or 0
        if "Worker" in name:
            explicit = re.search(r"\brank=(\d+)", proc)
            if explicit:
                n = int(explicit.group(1))
                return Rank(f"rank={n}", (dp, 0, n), worker=True, global_rank=True)
            tp, pp = _index_token(proc, "TP"), _index_token(proc, "PP")
            parts = None
            if re.fullmatch(r"Worker(?:_(?:DP|PP|TP|EP)\d+)*", name):
                parts = tuple(re.findall(r"_(DP|PP|TP|EP)\d+", name))
            if tp is not None or pp is not None or parts is not None:
                return Rank(name, (dp, pp or 0, tp or 0), worker=True, name_parts=parts)
            pp_tp = _PP_TP_RANK.search(line)
            if pp_tp:
                return Rank(pp_tp.group(0), (dp, int(pp_tp.group("pp") or 0), int(pp_tp.group("tp"))), worker=True)
            pid = re.search(r"pid=(\d+)", proc)
            return Rank(f"{name} pid={pid.group(1) if pid else '?'}", None, worker=True)
        if dp:
            return Rank(f"main process DP{dp}", (dp, 0, 0), worker=False)
    pp_tp = _PP_TP_RANK.search(line)
    if pp_tp:
        pp, tp = int(pp_tp.group("pp") or 0), int(pp_tp.group("tp"))
        return Rank(pp_tp.group(0), (0, pp, tp), worker=True)
    if m and m.group("grank") is not None and m.group("grank") != "0":
        # torch's "[rankN]:" prefix; "[rank0]:" appears in single-GPU runs too, so rank 0 is the main process
        n = int(m.group("grank"))
        return Rank(f"rank{n}", (0, 0, n), worker=True, global_rank=True)
    return MAIN


@dataclass
class _Line:
    number: int
    raw: str
    text: str
    rank: Rank


@dataclass
class _Collector:
    settings: dict[str, list[tuple[int, Fact]]] = field(default_factory=dict)
    engine: dict[str, list[tuple[int, Fact]]] = field(default_factory=dict)
    memory: dict[str, list[tuple[int, bool, MemoryFact]]] = field(default_factory=dict)
    lists: dict[str, list[Fact]] = field(default_factory=dict)
    ranks: list[Rank] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)

    def form(self, form: str) -> None:
        if form not in self.forms:
            self.forms.append(form)

    def setting(self, line: _Line, name: str, value: Any, text: str, form: str, priority: int,
                printed: str | None = None) -> None:
        fact = Fact(value, line.raw, line.number, text.strip(), line.rank, form, printed)
        self.settings.setdefault(name, []).append((priority, fact))
        self.form(form)

    def engine_fact(self, line: _Line, name: str, value: Any, text: str, form: str, priority: int = 1,
                    printed: str | None = None) -> None:
        fact = Fact(value, line.raw, line.number, text.strip(), line.rank, form, printed)
        self.engine.setdefault(name, []).append((priority, fact))
        self.form(form)

    def listed(self, line: _Line, name: str, value: Any, text: str, form: str, printed: str | None = None) -> None:
        self.lists.setdefault(name, []).append(Fact(value, line.raw, line.number, text.strip(), line.rank, form,
                                                    printed))
        self.form(form)

    def mem(self, line: _Line, name: str, printed: str, unit: str, text: str, form: str, priority: int = 2,
            fallback: bool = False, estimated: bool = False) -> None:
        unit_read = "MiB" if unit == "MB" else "GiB"
        fact = MemoryFact(float(printed), printed, unit, unit_read, line.raw, line.number, text.strip(), line.rank,
                          form, estimated)
        self.memory.setdefault(name, []).append((priority, fallback, fact))
        self.form(form)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


# -- engine configuration and arguments ---------------------------------------------------------------------

_SETTING_KEYS: dict[str, tuple[str, ...]] = {
    # fact name -> keys in config / args lines
    "model": ("model", "model_tag"),
    "dtype": ("dtype",),
    "max_model_len": ("max_seq_len", "max_model_len"),
    "tensor_parallel_size": ("tensor_parallel_size",),
    "pipeline_parallel_size": ("pipeline_parallel_size",),
    "data_parallel_size": ("data_parallel_size",),
    "quantization": ("quantization",),
    "kv_cache_dtype": ("kv_cache_dtype",),
    "gpu_memory_utilization": ("gpu_memory_utilization",),
    "block_size": ("block_size",),
    "max_num_seqs": ("max_num_seqs",),
    "max_num_batched_tokens": ("max_num_batched_tokens",),
    "enforce_eager": ("enforce_eager",),
}
_INT_SETTINGS = {
    "max_model_len",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "block_size",
    "max_num_seqs",
    "max_num_batched_tokens",
}


def _blank_nested(text: str) -> str:
    """``text`` with the contents of nested (), [], {} blanked out (quotes respected), so only top-level keys match."""
    out = []
    depth = 0
    quote: str | None = None
    escaped = False
    for ch in text:
        hidden = depth > 0
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
            hidden = depth > 0
        out.append(" " if hidden else ch)
    return "".join(out)


def _convert(name: str, raw: str) -> tuple[bool, Any]:
    """(ok, value) for a raw config / args value; ok is False for None, empty or unparseable values."""
    raw = raw.strip().rstrip(",")
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    if raw in ("", "None", "null") or "..." in raw:
        return False, None
    if name == "enforce_eager":
        if raw in ("True", "true"):
            return True, True
        if raw in ("False", "false"):
            return True, False
        return False, None
    if name in _INT_SETTINGS:
        try:
            return True, _int(raw.replace("_", ""))
        except ValueError:
            return False, None
    if name == "gpu_memory_utilization":
        try:
            return True, float(raw)
        except ValueError:
            return False, None
    if name == "dtype" and raw.startswith("torch."):
        raw = raw[len("torch.") :]
    return True, raw


_VALUE = r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^,\s)}·]+)"


def _settings_from(line: _Line, body: str, style: str, form: str, priority: int, c: _Collector) -> None:
    """Settings from a config (``key=value``) or dict (``'key': value``) body, top-level keys only."""
    flat = _blank_nested(body)
    for name, keys in _SETTING_KEYS.items():
        for key in keys:
            if style == "dict":
                pattern = rf"(?:^|[\s,{{])['\"]{key}['\"]\s*:\s*{_VALUE}"
            else:
                pattern = rf"(?:^|[\s,(]){key}={_VALUE}"
            m = re.search(pattern, flat)
            if m is None:
                continue
            raw = body[m.start(1) : m.end(1)]  # from the original, not the blanked text
            ok, value = _convert(name, raw)
            if ok:
                printed = raw.strip("'\"") if name == "gpu_memory_utilization" else None
                c.setting(line, name, value, body[m.start() : m.end()].lstrip(" ,{("), form, priority, printed)
                break


_CONFIG = re.compile(
    r"Initializing an? (?:(?P<gen>V[01]) )?LLM engine(?: \((?P<ver>[^)\s]+)\))? with config: (?P<cfg>.*)"
)
_API_VERSION = re.compile(r"vLLM API server version (?P<ver>v?\d[\w.+-]*)")
_NON_DEFAULT = re.compile(r"non-default args: (?P<body>.*)")
_NAMESPACE = re.compile(r"\bargs: Namespace\((?P<body>.*)")


def _config_lines(line: _Line, c: _Collector) -> bool:
    """Engine config / argument lines. True when the line was one (then no other pattern applies to it)."""
    m = _CONFIG.search(line.text)
    if m:
        form = "engine-config"
        if m.group("gen"):
            c.setting(line, "engine_generation", m.group("gen"), m.group(0)[: m.start("cfg") - m.start()], form, 3)
        if m.group("ver"):
            c.setting(line, "version", m.group("ver").lstrip("v"), f"({m.group('ver')})", form, 3)
        _settings_from(line, m.group("cfg"), "config", form, 3, c)
        c.form(form)
        return True
    m = _NON_DEFAULT.search(line.text)
    if m:
        body = m.group("body").strip()
        style = "dict" if body.startswith("{") else "config"
        _settings_from(line, body[1:] if style == "dict" else body, style, "non-default-args", 2, c)
        c.form("non-default-args")
        return True
    m = _NAMESPACE.search(line.text)
    if m:
        _settings_from(line, m.group("body"), "config", "args-namespace", 2, c)
        c.form("args-namespace")
        return True
    m = _API_VERSION.search(line.text)
    if m:
        c.setting(line, "version", m.group("ver").lstrip("v"), m.group(0), "api-server-version", 3)
        return True
    return False


# -- memory and capacity lines ------------------------------------------------------------------------------

Handler = Callable[[_Line, "re.Match[str]", _Collector], None]


def _quote(m: re.Match[str]) -> str:
    """The part of the line that states the value: group "q" where a pattern has one, else the whole match."""
    return m.groupdict().get("q") or m.group(0)


def _mem(name: str, form: str, priority: int = 2, *, fallback: bool = False, estimated: bool = False) -> Handler:
    def handle(line: _Line, m: re.Match[str], c: _Collector) -> None:
        unit = m.groupdict().get("u") or "GiB"
        c.mem(line, name, m.group("n"), unit, m.group(0), form, priority, fallback, estimated)

    return handle


def _three_line_budget(line: _Line, m: re.Match[str], c: _Collector) -> None:
    form = "three-line-profiling"
    c.mem(line, "total_gpu_memory", m.group("n"), "GiB", m.group(0), form)
    c.setting(line, "gpu_memory_utilization", float(m.group("util")), m.group(0), form, 3, m.group("util"))
    c.mem(line, "memory_budget", m.group("budget"), "GiB", m.group(0), form)


def _util(form: str) -> Handler:
    def handle(line: _Line, m: re.Match[str], c: _Collector) -> None:
        c.setting(line, "gpu_memory_utilization", float(m.group("v")), _quote(m), form, 3, m.group("v"))

    return handle


def _v1_summary(line: _Line, m: re.Match[str], c: _Collector) -> None:
    form = "v1-memory-summary"
    c.mem(line, "free_memory_on_startup", m.group("free"), "GiB", m.group(0), form)
    c.mem(line, "total_gpu_memory", m.group("n"), "GiB", m.group(0), form)


def _v1_desired(line: _Line, m: re.Match[str], c: _Collector) -> None:
    form = "v1-memory-summary"
    c.setting(line, "gpu_memory_utilization", float(m.group("v")), m.group(0), form, 3, m.group("v"))
    c.mem(line, "memory_budget", m.group("budget"), "GiB", m.group(0), form)


def _graph_captured(line: _Line, m: re.Match[str], c: _Collector) -> None:
    form = "graph-capturing-finished"
    c.listed(line, "cuda_graph_capture_seconds", float(m.group("s")), m.group(0), form, m.group("s"))
    if m.group("n") is not None:
        c.mem(line, "cuda_graphs", m.group("n"), m.group("u"), m.group(0), form)


def _graph_pool(line: _Line, m: re.Match[str], c: _Collector) -> None:
    form = "cuda-graph-pool-memory"
    c.mem(line, "cuda_graphs", m.group("n"), "GiB", m.group(0), form)
    if m.group("est") is not None:
        c.mem(line, "cuda_graphs_estimated", m.group("est"), "GiB", m.group(0), form, estimated=True)


def _graph_profile(line: _Line, m: re.Match[str], c: _Collector) -> None:
    rest = m.group("rest").strip()
    found = re.findall(r"([A-Z][A-Z_]*)=([^,(]*?)\s*\(largest=([^)]*)\)", rest)
    modes: dict[str, Any] = {mode: {"total": total, "largest": largest} for mode, total, largest in found}
    c.listed(line, "cuda_graph_profile", modes, m.group(0), "cuda-graph-profiling")


def _blocks(line: _Line, m: re.Match[str], c: _Collector) -> None:
    kind = m.group("kind")
    v0 = kind != "GPU" or m.group("cpu") is not None
    form = f"# {kind} blocks" + (" (V0)" if v0 else " (no CPU blocks: early V1)")
    c.engine_fact(line, "num_gpu_blocks", _int(m.group("n")), m.group(0), form, printed=m.group("n"))
    if m.group("cpu") is not None:
        c.engine_fact(line, "num_cpu_blocks", _int(m.group("cpu")), m.group(0), form, printed=m.group("cpu"))


def _fork_blocks(line: _Line, m: re.Match[str], c: _Collector) -> None:
    form = "fork-engine-can-allocate"
    c.listed(line, "gpu_blocks_per_rank", _int(m.group("n")), m.group(0), form, m.group("n"))


def _kv_tokens(line: _Line, m: re.Match[str], c: _Collector) -> None:
    c.engine_fact(line, "kv_cache_tokens", _int(m.group("n")), m.group(0), "gpu-kv-cache-size", 2, m.group("n"))


def _concurrency(line: _Line, m: re.Match[str], c: _Collector) -> None:
    form = "maximum-concurrency"
    c.engine_fact(line, "max_concurrency", float(m.group("x")), m.group(0), form, printed=m.group("x"))
    c.engine_fact(line, "max_concurrency_tokens", _int(m.group("t")), m.group(0), form, printed=m.group("t"))
    c.setting(line, "max_model_len", _int(m.group("t")), m.group(0), form, 3)


def _v0_error(line: _Line, m: re.Match[str], c: _Collector) -> None:
    form = "v0-max-seq-len-error"
    c.setting(line, "max_model_len", _int(m.group("l")), m.group(0), form, 3)
    c.engine_fact(line, "kv_cache_tokens", _int(m.group("n")), m.group(0), form, 1, m.group("n"))
    c.listed(line, "notices", "max seq len larger than the KV cache", m.group(0), form)


def _v1_error(line: _Line, m: re.Match[str], c: _Collector) -> None:
    form = "v1-max-seq-len-error"
    c.setting(line, "max_model_len", _int(m.group("l")), m.group(0), form, 3)
    c.engine_fact(line, "kv_cache_needed", float(m.group("need")), m.group(0), form, printed=m.group("need"))
    c.mem(line, "kv_cache", m.group("n"), "GiB", m.group(0), form, priority=0, fallback=True)
    if m.group("est") is not None:
        c.engine_fact(line, "estimated_max_model_len", _int(m.group("est")), m.group(0), form)
    c.listed(line, "notices", "KV cache too small for one max-length request", m.group(0), form)


def _notice(form: str, value: Any = None) -> Handler:
    def handle(line: _Line, m: re.Match[str], c: _Collector) -> None:
        c.listed(line, "notices", value, m.group(0), form)

    return handle


def _profiling_seconds(form: str) -> Handler:
    def handle(line: _Line, m: re.Match[str], c: _Collector) -> None:
        c.listed(line, "profiling_seconds", float(m.group("s")), _quote(m), form, m.group("s"))

    return handle


def _unsloth(line: _Line, m: re.Match[str], c: _Collector) -> None:
    c.engine_fact(line, "unsloth_kv_estimate", float(m.group("n")), m.group(0), "unsloth-kv-estimate",
                  printed=m.group("n"))


_G = r"(?P<u>GiB)"
PATTERNS: tuple[tuple[re.Pattern[str], Handler], ...] = tuple(
    (re.compile(p), h)
    for p, h in (
        # weights
        (rf"Loading model weights took (?P<n>{NUM}) ?(?P<u>GB|GiB|MB)\b", _mem("weights", "loading-model-weights")),
        (rf"Model loading took (?P<n>{NUM}) ?(?P<u>GiB|GB)\b", _mem("weights", "model-loading-took")),
        (rf"model weights take\s*(?P<n>{NUM}) ?{_G}", _mem("weights", "profiler-weights", 1)),
        # one-line ~0.6.4 "Memory profiling results: k=v ..."
        (rf"\btotal_gpu_memory=(?P<n>{NUM}) ?{_G}", _mem("total_gpu_memory", "one-line-profiling")),
        (rf"\binitial_memory_usage=(?P<n>{NUM}) ?{_G}", _mem("initial_memory_usage", "one-line-profiling")),
        (rf"\bpeak_torch_memory=(?P<n>{NUM}) ?{_G}", _mem("peak_torch", "one-line-profiling")),
        (rf"\bmemory_usage_post_profile=(?P<n>{NUM}) ?{_G}", _mem("memory_usage_post_profile", "one-line-profiling")),
        (rf"\bnon_torch_memory=(?P<n>{NUM}) ?{_G}", _mem("non_torch", "one-line-profiling")),
        (rf"\bkv_cache_size=(?P<n>{NUM}) ?{_G}", _mem("kv_cache", "one-line-profiling")),
        # (these two keys are common words: only on the "Memory profiling results:" line itself)
        (rf"Memory profiling results:.*?(?P<q>\bgpu_memory_utilization=(?P<v>{NUM}))", _util("one-line-profiling")),
        (rf"Memory profiling results:.*?(?P<q>\bduration=(?P<s>{NUM}) ?sec)", _profiling_seconds("one-line-profiling")),
        # a one-line variant seen only in third-party text
        (rf"\bTotal GPU memory=(?P<n>{NUM}) ?{_G}", _mem("total_gpu_memory", "one-line-profiling (third-party)")),
        # three V0 worker.py lines
        (rf"Memory profiling takes (?P<s>{NUM}) ?sec", _profiling_seconds("three-line-profiling")),
        (
            rf"\btotal_gpu_memory \((?P<n>{NUM}) ?GiB\) x gpu_memory_utilization \((?P<util>{NUM})\) = "
            rf"(?P<budget>{NUM}) ?GiB",
            _three_line_budget,
        ),
        (rf"\bnon_torch_memory takes (?P<n>{NUM}) ?{_G}", _mem("non_torch", "three-line-profiling")),
        (rf"PyTorch activation peak memory takes (?P<n>{NUM}) ?{_G}", _mem("activation_peak", "three-line-profiling")),
        (rf"reserved for KV Cache is (?P<n>{NUM}) ?{_G}", _mem("kv_cache", "three-line-profiling")),
        # multi-line table (PR #10511)
        (rf"\btotal_gpu_memory\s+(?P<n>{NUM}) ?{_G}", _mem("total_gpu_memory", "multi-line-profiling-table")),
        (rf"\bgpu_memory_utilization\s+(?P<v>{NUM})\s*$", _util("multi-line-profiling-table")),
        (
            rf"the current vLLM instance can use\s+(?P<n>{NUM}) ?{_G}",
            _mem("memory_budget", "multi-line-profiling-table"),
        ),
        (rf"\bnon_torch_memory\s+(?P<n>{NUM}) ?{_G}", _mem("non_torch", "multi-line-profiling-table")),
        (
            rf"PyTorch activation peak memory\s+(?P<n>{NUM}) ?{_G}",
            _mem("activation_peak", "multi-line-profiling-table"),
        ),
        (rf"available_kv_cache_memory\s+(?P<n>{NUM}) ?{_G}", _mem("kv_cache", "multi-line-profiling-table")),
        (rf"\bduration\s+(?P<s>{NUM}) ?sec", _profiling_seconds("multi-line-profiling-table")),
        # V1
        (rf"Available KV cache memory: (?P<n>{NUM}) ?{_G}", _mem("kv_cache", "available-kv-cache-memory")),
        (rf"Free memory on device \((?P<free>{NUM})/(?P<n>{NUM}) ?GiB\)", _v1_summary),
        (rf"Desired GPU memory utilization is \((?P<v>{NUM}), (?P<budget>{NUM}) ?GiB\)", _v1_desired),
        (
            rf"Actual usage is (?P<n>{NUM}) ?{_G} for consumed memory",
            _mem("consumed_memory", "v1-memory-summary"),
        ),
        (rf"(?P<n>{NUM}) ?{_G} for peak activation", _mem("activation_peak", "v1-memory-summary")),
        (rf"(?P<n>{NUM}) ?{_G} for CUDAGraph memory", _mem("cuda_graphs", "v1-memory-summary")),
        (rf"Current kv cache memory in use is (?P<n>{NUM}) ?{_G}", _mem("kv_cache", "v1-memory-summary", 1)),
        # KV capacity
        (rf"(?:#\s*)?(?P<kind>GPU|CUDA|cuda) blocks: (?P<n>{INT})(?:, # CPU blocks: (?P<cpu>{INT}))?", _blocks),
        (r"The engine can allocate (?P<n>\d[\d,]*) GPU blocks", _fork_blocks),
        (rf"GPU KV cache size: (?P<n>{INT}) tokens", _kv_tokens),
        (rf"Maximum concurrency for (?P<t>{INT}) tokens per request: (?P<x>{NUM})x", _concurrency),
        (
            r"max seq len \((?P<l>\d[\d,]*)\) is larger than the maximum number of tokens that can be stored in KV "
            r"cache \((?P<n>\d[\d,]*)\)",
            _v0_error,
        ),
        (
            rf"max seq len \((?P<l>\d[\d,]*)\), \((?P<need>{NUM}) ?GiB KV cache is needed, which is larger than the "
            rf"available KV cache memory \((?P<n>{NUM}) ?GiB\)(?:\. Based on the available memory, the estimated "
            rf"maximum model length is (?P<est>\d[\d,]*))?",
            _v1_error,
        ),
        (r"No available memory for the cache blocks", _notice("no-available-memory-for-cache-blocks")),
        # CUDA graphs
        (
            rf"Graph capturing finished in (?P<s>{NUM}) secs?(?:, took (?P<n>{NUM}) ?(?P<u>GiB|GB))?",
            _graph_captured,
        ),
        (
            rf"Estimated CUDA graph memory: (?P<n>{NUM}) ?{_G} total",
            _mem("cuda_graphs_estimated", "estimated-cuda-graph-memory", estimated=True),
        ),
        (r"Profiling CUDA graph memory: (?P<rest>.*)", _graph_profile),
        (
            rf"CUDA graph pool memory: (?P<n>{NUM}) ?GiB \(actual\)(?:, (?P<est>{NUM}) ?GiB \(estimated\))?",
            _graph_pool,
        ),
        (r"CUDA graphs can take additional 1~3 GiB memory per GPU", _notice("cuda-graphs-1-3-gib-warning")),
        (
            rf"increase --gpu-memory-utilization from (?P<v>{NUM}) to {NUM}",
            _util("cuda-graph-profiling-opt-in-notice"),
        ),
        (
            rf"The current --gpu-memory-utilization=(?P<v>{NUM}) is equivalent to",
            _util("cuda-graph-profiling-default-on-notice"),
        ),
        # third-party
        (rf"vLLM's KV Cache can use up to (?P<n>{NUM}) ?GB", _unsloth),
    )
)


def _lines(text: str) -> Iterator[_Line]:
    for number, raw in enumerate(text.splitlines(), start=1):
        raw = raw.rstrip()
        clean = _ANSI.sub("", raw)
        stripped = clean.strip()
        if not stripped:
            continue
        if stripped.startswith("#") and not _BARE_BLOCKS_LINE.match(stripped):
            continue
        yield _Line(number, raw, clean, _rank_of(clean))


def _decimals(printed: str) -> int:
    return len(printed.split(".", 1)[1]) if "." in printed else 0


def _agree(a: Fact | MemoryFact, b: Fact | MemoryFact) -> bool:
    """Equal at the coarser of the two printed precisions (0.90 and 0.9 agree; 0.9273 and 0.93 agree)."""
    pa, pb = a.printed, b.printed
    if pa is not None and pb is not None:
        if isinstance(a, MemoryFact) and isinstance(b, MemoryFact) and a.unit_read != b.unit_read:
            return a.bytes == b.bytes
        d = min(_decimals(pa), _decimals(pb))
        return abs(float(pa.replace(",", "")) - float(pb.replace(",", ""))) <= 0.5 * 10**-d + 1e-12
    return a.value == b.value


def _pick(name: str, candidates: list[tuple[int, Fact]], conflicts: list[Conflict]) -> Fact | None:
    """The first fact of the highest priority; a differing fact of the same priority and DP rank is a conflict."""
    if not candidates:
        return None
    top = max(p for p, _ in candidates)
    best = [f for p, f in candidates if p == top]
    chosen = best[0]
    seen: set[tuple[str, int]] = set()
    for other in best[1:]:
        key = (repr(other.value), other.line_number)
        if other.rank.dp == chosen.rank.dp and not _agree(chosen, other) and key not in seen:
            seen.add(key)
            conflicts.append(Conflict(name, chosen, other))
    return chosen


def _rank_order(rank: Rank, first_seen: dict[Rank, int]) -> tuple[Any, ...]:
    if rank.index is None:
        return (1, 0, 0, 0, first_seen[rank])
    return (0, *rank.index, 1 if rank.worker else 0, first_seen[rank])


def _per_rank(
    name: str, candidates: list[tuple[int, bool, MemoryFact]], first_seen: dict[Rank, int],
    conflicts: list[Conflict],
) -> tuple[MemoryFact, ...]:
    if any(not fallback for _, fallback, _ in candidates):
        candidates = [c for c in candidates if not c[1]]
    by_rank: dict[Rank, list[tuple[int, MemoryFact]]] = {}
    for priority, _, fact in candidates:
        by_rank.setdefault(fact.rank, []).append((priority, fact))
    chosen: dict[Rank, MemoryFact] = {}
    for rank, facts in by_rank.items():
        top = max(p for p, _ in facts)
        best = [f for p, f in facts if p == top]
        chosen[rank] = best[0]
        for other in best[1:]:
            if not _agree(best[0], other):
                conflicts.append(Conflict(name, best[0], other))
    # the main process and a numbered worker with the same index are the same rank: keep the worker's line
    worker_indices = {r.index for r in chosen if r.worker and r.index is not None}
    ranks = [r for r in chosen if r.worker or r.index not in worker_indices]
    ranks.sort(key=lambda r: _rank_order(r, first_seen))
    return tuple(chosen[r] for r in ranks)


def _tokens_from_blocks(
    blocks: Fact | None, block_size: Fact | None, generation: Fact | None
) -> Fact | None:
    if blocks is None:
        return None
    if block_size is not None:
        basis = (
            f"{blocks.value} GPU blocks x block_size {block_size.value} (stated on line {block_size.line_number})"
        )
        value = blocks.value * block_size.value
    elif "(V0)" in blocks.form or (generation is not None and generation.value == "V0"):
        basis = (
            f"{blocks.value} GPU blocks x {V0_DEFAULT_BLOCK_SIZE}, vLLM V0's default block size (the log prints no "
            "block size)"
        )
        value = blocks.value * V0_DEFAULT_BLOCK_SIZE
    else:
        return None
    return Fact(value, blocks.line, blocks.line_number, blocks.text, blocks.rank, "derived-from-blocks",
                derived=True, basis=basis)


def parse_vllm_log(text: str) -> VllmLogFacts:
    """Every fact a vLLM startup log states (see the module docstring for the formats)."""
    c = _Collector()
    first_seen: dict[Rank, int] = {}
    for line in _lines(text):
        first_seen.setdefault(line.rank, len(first_seen))
        if _config_lines(line, c):
            continue
        for pattern, handler in PATTERNS:
            for m in pattern.finditer(line.text):
                handler(line, m, c)

    conflicts: list[Conflict] = []
    settings = {name: _pick(name, cands, conflicts) for name, cands in c.settings.items()}
    engine = {name: _pick(name, cands, conflicts) for name, cands in c.engine.items()}
    memory = {name: _per_rank(name, cands, first_seen, conflicts) for name, cands in c.memory.items()}
    block_size = settings.get("block_size")
    derived_tokens = _tokens_from_blocks(engine.get("num_gpu_blocks"), block_size, settings.get("engine_generation"))
    ranks = sorted(first_seen, key=lambda r: _rank_order(r, first_seen))
    return VllmLogFacts(
        **{name: settings.get(name) for name in (
            "version", "engine_generation", "model", "tensor_parallel_size", "pipeline_parallel_size",
            "data_parallel_size", "dtype", "quantization", "kv_cache_dtype", "max_model_len",
            "gpu_memory_utilization", "block_size", "max_num_seqs", "max_num_batched_tokens", "enforce_eager",
        )},
        **{name: memory.get(name, ()) for name in (
            "weights", "total_gpu_memory", "non_torch", "activation_peak", "kv_cache", "cuda_graphs",
            "cuda_graphs_estimated", "peak_torch", "initial_memory_usage", "memory_usage_post_profile",
            "memory_budget", "free_memory_on_startup", "consumed_memory",
        )},
        **{name: engine.get(name) for name in (
            "kv_cache_tokens", "num_gpu_blocks", "num_cpu_blocks", "max_concurrency", "max_concurrency_tokens",
            "kv_cache_needed", "estimated_max_model_len", "unsloth_kv_estimate",
        )},
        kv_cache_tokens_from_blocks=derived_tokens,
        **{name: tuple(c.lists.get(name, ())) for name in (
            "gpu_blocks_per_rank", "profiling_seconds", "cuda_graph_capture_seconds", "cuda_graph_profile",
            "notices",
        )},
        ranks=tuple(ranks),
        conflicts=tuple(conflicts),
        forms=tuple(c.forms),
    )


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
        d = _decimals(log.printed) if log.printed else 6
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
    text: str,
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
        if log_is_id and log_model.lower() != model.lower():
            raise LlmsizerError(
                f"--model {model!r} disagrees with the log, which names {log_model!r} ({_where(facts.model)}); "
                "pass the model the run used, or leave --model out"
            )
        model_id = model

    # GPU: a name (--gpu) or the memory (--gpu-memory-gib or the log's total_gpu_memory)
    log_total = facts.total_gpu_memory[0] if facts.total_gpu_memory else None
    memory_bytes = None
    if log_total is not None:
        if gpu_memory_gib is not None and abs(log_total.value - gpu_memory_gib) > 0.5 * 10 ** -_decimals(
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
