"""Campaign files: the original guide's ``validation-campaign.yaml`` shape, validated up front, expanded to runs.

    engine: vllm                 # vllm (default) or transformers; a model entry may override it
    timeout: 1800                # seconds per run (default 3600)
    engine_cmd: "docker exec vllm-validator vllm bench latency"    # optional launcher
    models:
      - model_id: mistralai/Mistral-7B-Instruct-v0.3     # hf_model_id is accepted too
        tensor_parallel_size: 1
        input_lengths: [512]
        output_lengths: [512]
        batch_sizes: [1, 4, 8]
        notes: "free text"      # optional; dtype, quantization, kv_cache_dtype, trust_remote_code, enforce_eager,
                                # max_model_len, gpu_memory_utilization become vLLM flags; engine_args: [...] verbatim

The runs are the cartesian product input x output x batch per model, in that loop order (the original batch
profilers' order). Every problem names the file and line; all problems are reported at once, before any GPU work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profiler.plan import RunSpec

ENGINES = ("vllm", "transformers")
DEFAULT_TIMEOUT = 3600.0

_TOP_KEYS = {"engine", "timeout", "engine_cmd", "models", "description", "name", "random_weights"}
_MODEL_KEYS = {
    "model_id", "hf_model_id", "tensor_parallel_size", "input_lengths", "output_lengths", "batch_sizes", "engine",
    "notes", "dtype", "quantization", "kv_cache_dtype", "trust_remote_code", "enforce_eager", "max_model_len",
    "gpu_memory_utilization", "engine_args", "timeout", "engine_cmd", "random_weights", "container_name",
}
_FLAGS = ("quantization", "kv_cache_dtype", "max_model_len", "gpu_memory_utilization")
_SWITCHES = ("trust_remote_code", "enforce_eager")


class CampaignError(LlmsizerError):
    """A campaign file that cannot be run; the message lists every problem with its line."""


@dataclass(frozen=True)
class Campaign:
    path: Path
    runs: tuple[RunSpec, ...]


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Map every key path of the composed YAML to its 1-based line."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            key_path = (*path, k, "key")
            out[key_path] = key.start_mark.line + 1
            _lines(value, (*path, k), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


class _Problems:
    def __init__(self, path: Path, lines: dict[tuple[Any, ...], int]):
        self.path, self.lines = path, lines
        self.items: list[tuple[int, str]] = []  # (line, message), sorted by line when reported

    def add(self, where: tuple[Any, ...], message: str, *, key: bool = False) -> None:
        line = self.lines.get((*where, "key") if key else where) or self.lines.get(where)
        probe = where
        while line is None and probe:
            probe = probe[:-1]
            line = self.lines.get(probe)
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in where) or "(top level)"
        self.items.append((line or 0, f"{self.path}:{line or '?'}: {dotted.replace('.[', '[')}: {message}"))


def _positive_ints(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)


def _check_int(p: _Problems, where: tuple[Any, ...], value: Any, name: str, minimum: int = 1) -> bool:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        p.add(where, f"expected an integer >= {minimum} for {name}, got {value!r}")
        return False
    return True


def _engine_flags(p: _Problems, where: tuple[Any, ...], item: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key in _FLAGS:
        if item.get(key) is not None:
            flags += [f"--{key.replace('_', '-')}", str(item[key])]
    for key in _SWITCHES:
        if key in item:
            if not isinstance(item[key], bool):
                p.add((*where, key), f"expected true or false, got {item[key]!r}")
            elif item[key]:
                flags.append(f"--{key.replace('_', '-')}")
    extra = item.get("engine_args")
    if extra is not None:
        if not isinstance(extra, list) or not all(isinstance(a, (str, int, float)) for a in extra):
            p.add((*where, "engine_args"), f"expected a list of command-line words, got {extra!r}")
        else:
            flags += [str(a) for a in extra]
    return flags


def _timeout(p: _Problems, where: tuple[Any, ...], value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        p.add(where, f"expected a positive number of seconds, got {value!r}")
        return default
    return float(value)


def _command(p: _Problems, where: tuple[Any, ...], value: Any) -> tuple[str, ...] | None:
    import shlex

    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        return tuple(shlex.split(value))
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    p.add(where, f"expected a command (a string or a list of words), got {value!r}")
    return None


def parse_campaign(text: str, path: Path) -> Campaign:
    """Validate and expand a campaign. Raises ``CampaignError`` listing every problem with its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at_line = f"{mark.line + 1}" if mark is not None else "?"
        raise CampaignError(f"{path}:{at_line}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    p = _Problems(path, lines)
    if not isinstance(data, dict):
        raise CampaignError(f"{path}:1: expected a mapping with a 'models:' list, got {type(data).__name__}")
    for key in sorted(set(data) - _TOP_KEYS, key=str):
        p.add((key,), f"unknown key; expected one of {', '.join(sorted(_TOP_KEYS))}", key=True)
    engine = data.get("engine", "vllm")
    if engine not in ENGINES:
        p.add(("engine",), f"expected one of {', '.join(ENGINES)}, got {engine!r}")
        engine = "vllm"
    timeout = _timeout(p, ("timeout",), data.get("timeout"), DEFAULT_TIMEOUT)
    top_cmd = _command(p, ("engine_cmd",), data.get("engine_cmd"))
    top_random = data.get("random_weights", False)
    if not isinstance(top_random, bool):
        p.add(("random_weights",), f"expected true or false, got {top_random!r}")
        top_random = False
    models = data.get("models")
    if not isinstance(models, list) or not models:
        p.add(("models",) if "models" in data else (), "expected a non-empty list 'models:' of model entries")
        models = []
    runs: list[RunSpec] = []
    for i, item in enumerate(models):
        where: tuple[Any, ...] = ("models", i)
        if not isinstance(item, dict):
            p.add(where, f"expected a mapping (model_id, input_lengths, ...), got {item!r}")
            continue
        for key in sorted(set(item) - _MODEL_KEYS, key=str):
            p.add((*where, key), f"unknown key; expected one of {', '.join(sorted(_MODEL_KEYS))}", key=True)
        model = item.get("model_id", item.get("hf_model_id"))
        if not isinstance(model, str) or not model.strip():
            p.add(where, "needs model_id (a Hugging Face id, a model directory or a config.json)")
            continue
        if "model_id" in item and "hf_model_id" in item and item["model_id"] != item["hf_model_id"]:
            p.add((*where, "hf_model_id"), f"disagrees with model_id {item['model_id']!r}")
        lists = {}
        for key in ("input_lengths", "output_lengths", "batch_sizes"):
            value = item.get(key)
            if not _positive_ints(value):
                p.add((*where, key) if key in item else where,
                      f"expected a non-empty list of positive integers for {key}, got {value!r}")
            lists[key] = value if isinstance(value, list) else []
        tp = item.get("tensor_parallel_size", 1)
        if not _check_int(p, (*where, "tensor_parallel_size"), tp, "tensor_parallel_size"):
            tp = 1
        model_engine = item.get("engine", engine)
        if model_engine not in ENGINES:
            p.add((*where, "engine"), f"expected one of {', '.join(ENGINES)}, got {model_engine!r}")
            continue
        random_weights = item.get("random_weights", top_random)
        if not isinstance(random_weights, bool):
            p.add((*where, "random_weights"), f"expected true or false, got {random_weights!r}")
            random_weights = False
        dtype = item.get("dtype")
        if dtype is not None and not isinstance(dtype, str):
            p.add((*where, "dtype"), f"expected a dtype name such as bfloat16, got {dtype!r}")
            dtype = None
        flags = _engine_flags(p, where, item)
        if model_engine == "transformers":
            if tp != 1:
                p.add((*where, "tensor_parallel_size"), "the transformers profiler runs on one GPU: use 1")
            if flags:
                p.add(where, "vLLM flags (quantization, kv_cache_dtype, engine_args, ...) do not apply to the "
                             "transformers engine")
        elif random_weights:
            p.add((*where, "random_weights"), "random weights are a transformers-engine option (vLLM: pass "
                                              "engine_args: ['--load-format', 'dummy'])")
        run_timeout = _timeout(p, (*where, "timeout"), item.get("timeout"), timeout)
        cmd = _command(p, (*where, "engine_cmd"), item.get("engine_cmd")) or top_cmd
        model_path = model.strip()
        if model_path.endswith(".json") and not Path(model_path).is_absolute():
            model_path = str((path.parent / model_path).resolve()) if (path.parent / model_path).exists() \
                else model_path
        line = lines.get(where)
        for inp in lists["input_lengths"]:
            for out in lists["output_lengths"]:
                for bs in lists["batch_sizes"]:
                    runs.append(RunSpec(
                        model=model_path, engine=model_engine, batch_size=bs, input_len=inp, output_len=out,
                        tensor_parallel_size=tp, engine_args=tuple(flags), engine_cmd=cmd, timeout=run_timeout,
                        random_weights=random_weights, dtype=dtype, line=line,
                    ))
    if p.items:
        listed = "\n".join(message for _, message in sorted(p.items, key=lambda x: x[0]))
        raise CampaignError(f"{path}: {len(p.items)} problem(s):\n{listed}")
    seen: dict[str, RunSpec] = {}
    for run in runs:
        if run.run_id in seen:
            raise CampaignError(f"{path}:{run.line}: the same run is planned twice ({run.run_id}; first at line "
                                f"{seen[run.run_id].line})")
        seen[run.run_id] = run
    return Campaign(path=path, runs=tuple(runs))


def load_campaign(path: str | Path) -> Campaign:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CampaignError(f"{p}: cannot read the campaign file: {e.strerror or e}") from None
    return parse_campaign(text, p)
