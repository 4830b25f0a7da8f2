"""Parsing a vLLM startup log into ``VllmLogFacts``: one handler per log-line pattern, ranks from process prefixes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_llmsizer.calculator.engines import kv_tokens_from_blocks
from pytest_llmsizer.profile.vllm_log.facts import (
    INT,
    MAIN,
    NUM,
    V0_DEFAULT_BLOCK_SIZE,
    Conflict,
    Fact,
    MemoryFact,
    Rank,
    VllmLogFacts,
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


_KEYWORDS = (
    "GiB", "GB", "took", "take", "Memory profiling", "gpu_memory_utilization", "gpu-memory-utilization", "duration",
    "blocks", "tokens", "concurrency", "max seq len", "Graph", "graph", "LLM engine", "args:", "server version",
)
"""Every line a pattern or a config handler can match holds one of these (a test checks this over every real log):
lines without any are only looked at for their rank, which keeps a huge log, or one of random bytes, fast."""
_KEYWORD = re.compile("|".join(re.escape(k) for k in _KEYWORDS))

_RANK_MARKERS = ("pid=", "Worker", "EngineCore", "APIServer", "LLMRayActor", "TP Rank", "[rank")
"""A line holding none of these belongs to the main process: ``_rank_of`` finds another rank only from a process
prefix naming a pid or one of these processes, from ``TP Rank N``, or from ``[rankN]:``."""
_RANK_MARKER = re.compile("|".join(re.escape(m) for m in _RANK_MARKERS))


def _lines(text: str | Iterable[str], first_seen: dict[Rank, int]) -> Iterator[_Line]:
    """Lines that may state a fact, numbered as ``str.splitlines`` numbers them; every non-blank, non-comment line's
    rank is recorded in ``first_seen`` (in order of first appearance). ``text`` is the whole log, or an iterable of
    its lines (a stream: ``safe_io.iter_text_lines``), each possibly holding several line breaks."""
    chunks = (text,) if isinstance(text, str) else text
    number = 0
    for chunk in chunks:
        pieces = chunk.splitlines()
        if MAIN in first_seen and not _KEYWORD.search(chunk) and not _RANK_MARKER.search(chunk):
            number += len(pieces)  # nothing to learn here: no fact, and only the main process's rank
            continue
        for raw in pieces:
            number += 1
            raw = raw.rstrip()
            clean = _ANSI.sub("", raw) if "\x1b" in raw else raw
            stripped = clean.strip()
            if not stripped:
                continue
            if stripped.startswith("#") and not _BARE_BLOCKS_LINE.match(stripped):
                continue
            rank = _rank_of(clean) if _RANK_MARKER.search(clean) else MAIN
            if rank not in first_seen:
                first_seen[rank] = len(first_seen)
            if _KEYWORD.search(clean):
                yield _Line(number, raw, clean, rank)


def printed_decimals(printed: str) -> int:
    return len(printed.split(".", 1)[1]) if "." in printed else 0


def _agree(a: Fact | MemoryFact, b: Fact | MemoryFact) -> bool:
    """Equal at the coarser of the two printed precisions (0.90 and 0.9 agree; 0.9273 and 0.93 agree)."""
    pa, pb = a.printed, b.printed
    if pa is not None and pb is not None:
        if isinstance(a, MemoryFact) and isinstance(b, MemoryFact) and a.unit_read != b.unit_read:
            return a.bytes == b.bytes
        d = min(printed_decimals(pa), printed_decimals(pb))
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
        value = kv_tokens_from_blocks(blocks.value, block_size.value)
    elif "(V0)" in blocks.form or (generation is not None and generation.value == "V0"):
        basis = (
            f"{blocks.value} GPU blocks x {V0_DEFAULT_BLOCK_SIZE}, vLLM V0's default block size (the log prints no "
            "block size)"
        )
        value = kv_tokens_from_blocks(blocks.value, V0_DEFAULT_BLOCK_SIZE)
    else:
        return None
    return Fact(value, blocks.line, blocks.line_number, blocks.text, blocks.rank, "derived-from-blocks",
                derived=True, basis=basis)


def parse_vllm_log(text: str | Iterable[str]) -> VllmLogFacts:
    """Every fact a vLLM startup log states (see the module docstring for the formats).

    ``text`` is the log, or an iterable of its lines (streamed: memory stays bounded by the longest line)."""
    c = _Collector()
    first_seen: dict[Rank, int] = {}
    for line in _lines(text, first_seen):
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
    s, e = settings.get, engine.get

    def per_rank(name: str) -> tuple[MemoryFact, ...]:
        return memory.get(name, ())

    def listed(name: str) -> tuple[Fact, ...]:
        return tuple(c.lists.get(name, ()))

    return VllmLogFacts(
        # settings: the engine's effective value (else the requested one)
        version=s("version"), engine_generation=s("engine_generation"), model=s("model"),
        tensor_parallel_size=s("tensor_parallel_size"), pipeline_parallel_size=s("pipeline_parallel_size"),
        data_parallel_size=s("data_parallel_size"), dtype=s("dtype"), quantization=s("quantization"),
        kv_cache_dtype=s("kv_cache_dtype"), max_model_len=s("max_model_len"),
        gpu_memory_utilization=s("gpu_memory_utilization"), block_size=s("block_size"),
        max_num_seqs=s("max_num_seqs"), max_num_batched_tokens=s("max_num_batched_tokens"),
        enforce_eager=s("enforce_eager"),
        # memory, one MemoryFact per rank
        weights=per_rank("weights"), total_gpu_memory=per_rank("total_gpu_memory"), non_torch=per_rank("non_torch"),
        activation_peak=per_rank("activation_peak"), kv_cache=per_rank("kv_cache"),
        cuda_graphs=per_rank("cuda_graphs"), cuda_graphs_estimated=per_rank("cuda_graphs_estimated"),
        peak_torch=per_rank("peak_torch"), initial_memory_usage=per_rank("initial_memory_usage"),
        memory_usage_post_profile=per_rank("memory_usage_post_profile"), memory_budget=per_rank("memory_budget"),
        free_memory_on_startup=per_rank("free_memory_on_startup"), consumed_memory=per_rank("consumed_memory"),
        # engine-wide
        kv_cache_tokens=e("kv_cache_tokens"), num_gpu_blocks=e("num_gpu_blocks"), num_cpu_blocks=e("num_cpu_blocks"),
        max_concurrency=e("max_concurrency"), max_concurrency_tokens=e("max_concurrency_tokens"),
        kv_cache_needed=e("kv_cache_needed"), estimated_max_model_len=e("estimated_max_model_len"),
        unsloth_kv_estimate=e("unsloth_kv_estimate"),
        kv_cache_tokens_from_blocks=derived_tokens,
        # per rank, other
        gpu_blocks_per_rank=listed("gpu_blocks_per_rank"), profiling_seconds=listed("profiling_seconds"),
        cuda_graph_capture_seconds=listed("cuda_graph_capture_seconds"),
        cuda_graph_profile=listed("cuda_graph_profile"), notices=listed("notices"),
        ranks=tuple(ranks),
        conflicts=tuple(conflicts),
        forms=tuple(c.forms),
    )


