"""The one code path that turns vLLM startup-log records of ``../shared/data/vllm-startup-logs`` into profiles.

Each shared file has a thin importer script (``import_issue_threads.py``, ``import_notebooks_and_docs.py``,
``import_vme_dev.py``) that holds only what is particular to that file: its reviewed curation tables (model ids,
GPU names, duplicates) and which record schema it uses. Everything else is here, once: the record readers, the
component notes, the derived total, file naming, the ``--check`` drift check and the README table.

Rules (see profiles/README.md):

* Every memory number is per GPU, in integer bytes: ``round(GiB x 2**30)``. vLLM's old "GB" label on the weights
  line means GiB (bytes / 2**30); the component's note says so.
* Missing stays missing: nothing is invented that the record does not hold. Engine settings the record leaves null
  stay null (tensor/pipeline/data parallel sizes default to 1, as the format requires).
* One derived number, visibly derived: the engine's ``total`` (``derived_total``), only where every figure it needs
  was logged, with the formula and its inputs in the component's note.
* Model ids come from reviewed tables, never from guessing. A record whose model string is not a plain ``org/name``
  id and has no entry there stops the script.

The scripts regenerate every file from the data and report each file they create, change or remove, so a hand edit
is never overwritten silently. ``--check`` writes nothing and exits 1 when a committed file differs from what the
script would write (CI drift check, run by tests/test_record_profiles.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pytest_llmsizer.calculator.coefficients import CUDA_GRAPHS_IN_BUDGET_SINCE  # noqa: E402
from pytest_llmsizer.calculator.versions import parse_vllm_version, version_from_log_format  # noqa: E402
from pytest_llmsizer.catalog.gpus import vendor_from_name  # noqa: E402
from pytest_llmsizer.profile.model import Profile  # noqa: E402
from pytest_llmsizer.safe_io import UnsafePathError, atomic_replace, check_output  # noqa: E402
from pytest_llmsizer.units import GiB, to_bytes  # noqa: E402

SHARED_LOGS = REPO_ROOT.parent / "shared" / "data" / "vllm-startup-logs"
PROFILES = REPO_ROOT / "profiles"

# ----------------------------------------------------------------------------------------------------------
# What each source file is
# ----------------------------------------------------------------------------------------------------------


class ImportProblem(Exception):
    """The data needs a curation decision the script will not make by itself."""


@dataclass(frozen=True)
class Curation:
    """The reviewed decisions of one source file (each entry carries a comment in its script saying why)."""

    model_ids: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(record source, raw model string) -> model.id, for raw strings that are not a plain ``org/name`` id."""
    gpu_names: Mapping[str, str] = field(default_factory=dict)
    """Raw gpu_name -> hardware.gpu_name, for names carrying a note that is not part of the device name."""
    kv_cache_dtypes: Mapping[str, str] = field(default_factory=dict)
    """Raw kv_cache_dtype -> engine.kv_cache_dtype, for values carrying a note that is not vLLM's setting."""
    duplicates: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(record source, raw model string) -> why the record is not imported (the same log in another file)."""


@dataclass(frozen=True)
class SourceFile:
    """One shared JSONL file and where its profiles go."""

    name: str
    """The file name in ../shared/data/vllm-startup-logs, e.g. "issue-threads.jsonl"."""
    folder: str
    """The profile folder under profiles/, e.g. "vllm-issue-threads"."""
    schema: str
    """"log" (issue-threads / notebooks-and-docs fields) or "vme" (vme-dev fields)."""
    curation: Curation = field(default_factory=Curation)
    script: str = ""
    """The importer script, for messages."""

    @property
    def data(self) -> Path:
        return SHARED_LOGS / self.name

    @property
    def out(self) -> Path:
        return PROFILES / self.folder

    @property
    def original_format(self) -> str:
        return f"vllm-startup-log ({self.name} record)"


@dataclass(frozen=True)
class Skipped:
    """A record that does not become a profile, and why."""

    line: int
    source: str
    model: str
    reason: str


# ----------------------------------------------------------------------------------------------------------
# Shared tables
# ----------------------------------------------------------------------------------------------------------

# Quantization method: the first pattern found in the lower-cased record string wins (nvfp4 before the
# "modelopt" wrapper, compressed-tensors before its w8a8 scheme, fp8 last since several strings mention it).
QUANT_METHODS: tuple[tuple[str, str], ...] = (
    ("nvfp4", "nvfp4"),
    ("mxfp4", "mxfp4"),
    ("compressed-tensors", "compressed-tensors"),
    ("awq", "awq"),
    ("gptq", "gptq"),
    ("bitsandbytes", "bitsandbytes"),
    ("auto_round", "auto-round"),
    ("autoround", "auto-round"),
    ("auto-round", "auto-round"),
    ("modelopt", "modelopt"),
    ("fp8", "fp8"),
)
QUANT_BITS = re.compile(r"(\d+)-bit|\bint(\d+)\b|\bw(\d+)a\d+\b", re.IGNORECASE)
"""Bit width, only where the record's quantization string states it: "4-bit", "int4", "W4A16"."""

PLAIN_HF_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")

# Log-line patterns per component; group "n" is the number in GiB (vLLM's "GB" on the weights line is GiB too).
COMPONENT_PATTERNS: dict[str, tuple[str, ...]] = {
    "weights": (
        r"Loading model weights took (?P<n>-?\d+(?:\.\d+)?) GB",
        r"Model loading took (?P<n>-?\d+(?:\.\d+)?) (?:GiB|GB)",
        r"model weights take\s+(?P<n>-?\d+(?:\.\d+)?) ?GiB",
        r"Weights (?P<n>-?\d+(?:\.\d+)?) GiB",
    ),
    "kv_cache": (
        r"Available KV cache memory: (?P<n>-?\d+(?:\.\d+)?) GiB",
        r"available KV cache memory \((?P<n>-?\d+(?:\.\d+)?) GiB\)",
        r"reserved for KV Cache is (?P<n>-?\d+(?:\.\d+)?) ?GiB",
        r"kv_cache_size=(?P<n>-?\d+(?:\.\d+)?)GiB",
        r"available_kv_cache_memory\s+(?P<n>-?\d+(?:\.\d+)?)GiB",
        r"Current kv cache memory in use is (?P<n>-?\d+(?:\.\d+)?) GiB",
        r"\| KV pool \| (?P<n>-?\d+(?:\.\d+)?) GiB \|",
        r"\| KV pool \| [\d.]+ GiB \| (?P<n>-?\d+(?:\.\d+)?) GiB \|",
    ),
    "activations": (
        r"PyTorch activation peak memory takes (?P<n>-?\d+(?:\.\d+)?) ?GiB",
        r"PyTorch activation peak memory\s+(?P<n>-?\d+(?:\.\d+)?) ?GiB",
        r"(?P<n>-?\d+(?:\.\d+)?) GiB for peak activation",
    ),
    "non_torch": (
        r"non_torch_memory=(?P<n>-?\d+(?:\.\d+)?)GiB",
        r"non_torch_memory takes (?P<n>-?\d+(?:\.\d+)?) ?GiB",
        r"non_torch_memory\s+(?P<n>-?\d+(?:\.\d+)?) ?GiB",
    ),
    "cuda_graphs": (
        r"Graph capturing finished in \d+ secs, took (?P<n>-?\d+(?:\.\d+)?) GiB",
        r"(?P<n>-?\d+(?:\.\d+)?) GiB for CUDAGraph memory",
        r"CUDA graph pool memory: (?P<n>-?\d+(?:\.\d+)?) GiB \(actual\)",
        r"Estimated CUDA graph memory: (?P<n>-?\d+(?:\.\d+)?) GiB total",
    ),
}

LOG_FIELDS: dict[str, str] = {
    "weights": "weights_gib",
    "kv_cache": "kv_cache_gib",
    "activations": "activation_peak_gib",
    "non_torch": "non_torch_gib",
    "cuda_graphs": "cuda_graph_gib",
}
"""Profile component -> field of a "log" record (GiB, per GPU). Nothing else becomes a measured component."""

VME_FIELDS: dict[str, tuple[str, str]] = {
    "weights": ("weights_gib", 'vLLM "Model loading took X GiB"'),
    "kv_cache": ("available_kv_cache_gib", 'vLLM "Available KV cache memory"'),
    "cuda_graphs": ("cuda_graphs_gib", 'vLLM "Graph capturing finished ... took X GiB"'),
}
"""Profile component -> (vme-dev field, the log line it holds); field meanings in ../shared/data/README.md."""

VME_REFERENCE = "ashishkamra/vllm-memory-estimator test_data/validation_db.json"
"""The estimator's public validation set that vme-dev.jsonl comes from (its records name it in ``source``)."""

VME_ACCELERATORS = {"H200": "NVIDIA H200", "B200": "NVIDIA B200", "MI300X": "AMD Instinct MI300X"}
"""vme-dev ``accelerator`` -> the device name as nvidia-smi / amd-smi print it (the GPU catalog's names)."""

VME_ENGINE_ARGS: dict[str, str] = {
    "max-num-seqs": "max_num_seqs",
    "max-num-batched-tokens": "max_num_batched_tokens",
    "block-size": "block_size",
}
"""vme-dev runtime_args that map onto an ``engine`` field (integers); the rest go to ``engine.extra_args`` verbatim,
except those the record also holds as its own field (tensor-parallel-size, gpu-memory-utilization, max-model-len,
kv-cache-dtype, dtype)."""
VME_ARGS_IN_FIELDS = ("tensor-parallel-size", "gpu-memory-utilization", "max-model-len", "kv-cache-dtype")


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL file, in file order (blank lines ignored)."""
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ImportProblem(f"{path}:{number}: not JSON: {e}") from None
                if not isinstance(record, dict):
                    raise ImportProblem(f"{path}:{number}: expected a JSON object")
                records.append(record)
    return records


def skip_reason(record: dict[str, Any], schema: str) -> str | None:
    """Why a record cannot become a profile; None when it qualifies (model AND (GPU name OR GPU memory))."""
    if not record.get("model"):
        return "the record does not name its model"
    gpu, memory = ("accelerator", "gpu_total_gib") if schema == "vme" else ("gpu_name", "total_gpu_memory_gib")
    if not record.get(gpu) and record.get(memory) is None:
        return (
            f"the record names neither the GPU ({gpu}) nor its memory ({memory}), "
            "so a calculator has no device to size against"
        )
    return None


def model_id(curation: Curation, source: str, raw: str) -> str:
    """The curated model.id for a record's raw model string."""
    curated = curation.model_ids.get((source, raw))
    if curated is not None:
        return curated
    if PLAIN_HF_ID.fullmatch(raw):
        return raw
    raise ImportProblem(
        f"{source}: model {raw!r} is not a plain org/name id and has no reviewed entry in MODEL_IDS; "
        "add one (with a comment saying why) before importing this record"
    )


def quantization(raw: str | None) -> dict[str, Any] | None:
    """model.quantization from the record's quantization string (method normalised, raw string in detail)."""
    if raw is None:
        return None
    lowered = raw.lower()
    method = next((name for needle, name in QUANT_METHODS if needle in lowered), None)
    if method is None:
        raise ImportProblem(f"unknown quantization string {raw!r}: add its method to QUANT_METHODS")
    out: dict[str, Any] = {"method": method, "detail": raw}
    bits = QUANT_BITS.search(raw)
    if bits is not None:
        out["bits"] = int(next(g for g in bits.groups() if g is not None))
    return out


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def find_log_quote(log_lines: list[str], component: str, value: float) -> tuple[int, str] | None:
    """(index, quoted text) of the log line that printed ``value`` for ``component``; None when no line did.

    An exact match wins over one that agrees only to the printed decimals (e.g. "0.93GiB" for 0.9273).
    """
    patterns = [re.compile(p) for p in COMPONENT_PATTERNS[component]]
    rounded: tuple[int, str] | None = None
    for index, line in enumerate(log_lines):
        for pattern in patterns:
            for match in pattern.finditer(line):
                printed = match.group("n")
                if float(printed) == value:
                    return index, match.group(0).strip()
                if rounded is None and round(value, _decimals(printed)) == float(printed):
                    rounded = (index, match.group(0).strip())
    return rounded


def _engine_component(value: float, note: str) -> dict[str, Any]:
    return {"bytes": to_bytes(value, "GiB"), "provenance": "engine", "confidence": "high", "unit_read": "GiB",
            "note": note}


def log_component(record: dict[str, Any], name: str, file: str) -> dict[str, Any] | None:
    """One per-GPU component from a "log" record's GiB field, with a note naming the log line it came from."""
    field_name = LOG_FIELDS[name]
    value = record.get(field_name)
    if value is None:
        return None
    quote = find_log_quote(record.get("log_lines") or [], name, value)
    if quote is None:
        where = "the log line is not among the record's log_lines (see source.notes)"
    else:
        where = f'source.log_lines[{quote[0]}]: "{quote[1]}"'
    note = f"{file} field {field_name} = {value} GiB per GPU; {where}."
    if name == "weights" and record.get("weights_unit") == "GB":
        note += ' vLLM printed "GB" but the value is bytes / 2^30 (GiB), as it always has been.'
    return _engine_component(value, note)


# ----------------------------------------------------------------------------------------------------------
# The derived total
# ----------------------------------------------------------------------------------------------------------

TOTAL_FORMULA = "gpu_memory_utilization x total_gpu_memory + CUDA graph pool where it sits outside that budget"
"""What "total" means for a vLLM-log profile: the engine's budget.

vLLM sizes its KV pool so that weights + activation peak + non-torch + KV cache = gpu_memory_utilization x
total_gpu_memory (notes/memory-physics.md 2.1). Before v0.21 the CUDA graph pool is captured after that, on top of
the budget; from v0.21 its estimate is charged inside it. The CUDA context and other processes are outside both.
"""


def derived_total(*, utilization: float | None, memory_gib: float | None, version: str | None,
                  enforce_eager: bool | None, graphs_gib: float | None,
                  graphs_line: str | None) -> tuple[dict[str, Any] | None, str]:
    """The derived ``total`` component from logged figures alone, or None and why it cannot be computed.

    ``graphs_line`` is the log line (or record field) the graph figure came from; the figure counts only when it is
    the pool vLLM actually captured ("took X GiB" / "(actual)"), not a pre-capture estimate.
    """
    if utilization is None or memory_gib is None:
        return None, "gpu_memory_utilization or the logged total_gpu_memory is missing"
    budget = utilization * memory_gib
    inputs = f"gpu_memory_utilization {utilization:g} x total_gpu_memory {memory_gib:g} GiB = {budget:.4f} GiB"
    parsed = parse_vllm_version(version)
    if enforce_eager:
        value, graphs = budget, "enforce_eager: no CUDA graphs"
    elif parsed is not None and parsed >= CUDA_GRAPHS_IN_BUDGET_SINCE:
        value, graphs = budget, (f"vLLM {parsed[0]}.{parsed[1]} charges its CUDA graph estimate inside the budget "
                                 "(on by default since 0.21)")
    elif parsed is None:
        return None, "the vLLM version is not recorded, so whether CUDA graphs sit inside the budget is unknown"
    elif graphs_gib is None or graphs_line is None:
        return None, "CUDA graphs sit outside the budget before vLLM 0.21 and the log gives no captured graph figure"
    elif graphs_gib < 0:
        value, graphs = budget, (f"the logged graph figure {graphs_gib:g} GiB is negative (capturing released "
                                 "cached allocator blocks), counted as 0")
    else:
        value, graphs = budget + graphs_gib, (f"+ CUDA graph pool {graphs_gib:g} GiB ({graphs_line}; captured "
                                              f"after the KV cache was sized, outside the budget before vLLM 0.21)")
    note = (f"DERIVED, not measured: total = {TOTAL_FORMULA}. {inputs}; {graphs}; total {value:.4f} GiB per GPU. "
            "The engine's budget, from logged figures only; the CUDA context and other processes are not in it.")
    component = {"bytes": round(value * GiB), "provenance": "derived", "confidence": "high", "unit_read": "GiB",
                 "note": note}
    return component, ""


def _log_graphs_line(record: dict[str, Any]) -> str | None:
    """The quoted log line of a "log" record's graph figure when it is the captured pool, else None."""
    value = record.get("cuda_graph_gib")
    if value is None:
        return None
    quote = find_log_quote(record.get("log_lines") or [], "cuda_graphs", value)
    if quote is None or quote[1].startswith("Estimated"):
        return None
    return f'log line "{quote[1]}"'


# ----------------------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------------------


def _with_note(notes: str | None, addition: str) -> str:
    return f"{notes} {addition}" if notes else addition


def convert_log(record: dict[str, Any], source_file: SourceFile) -> Profile:
    """A native profile from one qualifying issue-threads / notebooks-and-docs record."""
    curation = source_file.curation
    source = record["source"]
    raw_model = record["model"]
    raw_gpu = record.get("gpu_name")
    gpu_name = curation.gpu_names.get(raw_gpu, raw_gpu) if raw_gpu else None

    notes = record.get("notes")
    if gpu_name != raw_gpu:
        notes = _with_note(notes, f"[importer] hardware.gpu_name cleaned from the record's gpu_name {raw_gpu!r}.")
    raw_kv = record.get("kv_cache_dtype")
    kv_dtype = curation.kv_cache_dtypes.get(raw_kv, raw_kv) if raw_kv else None
    if kv_dtype != raw_kv:
        notes = _with_note(notes, f"[importer] engine.kv_cache_dtype cleaned from the record's {raw_kv!r}.")

    version = record.get("vllm_version")
    if not version and (version := version_from_log_format(record.get("log_lines"))):
        notes = _with_note(notes, f"[importer] engine.version {version!r}: not stated by the record; the log's "
                                  "format was printed by that release only (vllm-log-formats.md 3).")

    tp = record.get("tensor_parallel_size") or 1
    pp = record.get("pipeline_parallel_size") or 1
    visible = record.get("gpu_count_visible")
    gpu_count = max(visible, tp * pp) if visible else tp * pp
    total_gib = record.get("total_gpu_memory_gib")

    components = {name: c for name in LOG_FIELDS
                  if (c := log_component(record, name, source_file.name)) is not None}
    total, _ = derived_total(
        utilization=record.get("gpu_memory_utilization"), memory_gib=total_gib, version=version,
        enforce_eager=record.get("enforce_eager"), graphs_gib=record.get("cuda_graph_gib"),
        graphs_line=_log_graphs_line(record))
    if total is not None:
        components["total"] = total
    data: dict[str, Any] = {
        "source": {
            "reference": source,
            "kind": "vllm-log",
            "original_format": source_file.original_format,
            "notes": notes,
            "log_lines": record.get("log_lines"),
        },
        "model": {
            "id": model_id(curation, source, raw_model),
            "dtype": record.get("dtype"),
            "quantization": quantization(record.get("quantization")),
            "name_in_source": raw_model,
        },
        "hardware": {
            "gpu_name": gpu_name,
            "vendor": vendor_from_name(gpu_name),
            "gpu_count": gpu_count,
            "memory_per_gpu_bytes": None if total_gib is None else to_bytes(total_gib, "GiB"),
        },
        "engine": {
            "name": "vllm",
            "version": version,
            "tensor_parallel_size": tp,
            "pipeline_parallel_size": pp,
            "gpu_memory_utilization": record.get("gpu_memory_utilization"),
            "max_model_len": record.get("max_model_len"),
            "max_num_seqs": record.get("max_num_seqs"),
            "max_num_batched_tokens": record.get("max_num_batched_tokens"),
            "block_size": record.get("block_size"),
            "kv_cache_dtype": kv_dtype,
            "enforce_eager": record.get("enforce_eager"),
        },
        "measurements": {
            "components": components,
            "kv_cache_tokens": record.get("kv_cache_tokens"),
            "max_concurrency": record.get("max_concurrency"),
            "num_gpu_blocks": record.get("num_gpu_blocks"),
        },
    }
    return Profile.model_validate(data)


def runtime_args(text: str | None) -> dict[str, str]:
    """vme-dev ``runtime_args`` ("key: value; key: value") as a dict, values verbatim."""
    args: dict[str, str] = {}
    for part in (text or "").split(";"):
        key, _, value = part.partition(":")
        if key.strip():
            args[key.strip()] = value.strip()
    return args


def convert_vme(record: dict[str, Any], source_file: SourceFile) -> Profile:
    """A native profile from one vme-dev record (the estimator's validation set: no log lines, named fields)."""
    args = runtime_args(record.get("runtime_args"))
    accelerator = record["accelerator"]
    gpu_name = VME_ACCELERATORS.get(accelerator, accelerator)
    tp = record.get("tensor_parallel_size") or 1
    pp = record.get("pipeline_parallel_size") or 1
    dp = record.get("data_parallel_size") or 1
    memory_gib = record.get("gpu_total_gib")
    components: dict[str, Any] = {}
    for name, (field_name, line) in VME_FIELDS.items():
        value = record.get(field_name)
        if value is not None:
            components[name] = _engine_component(
                value, f"{source_file.name} field {field_name} = {value} GiB per GPU ({line}).")
    graphs = record.get("cuda_graphs_gib")
    total, _ = derived_total(
        utilization=record.get("gpu_memory_utilization"), memory_gib=memory_gib, version=record.get("vllm_version"),
        enforce_eager=record.get("enforce_eager"), graphs_gib=graphs,
        graphs_line=None if graphs is None else f"field cuda_graphs_gib, {VME_FIELDS['cuda_graphs'][1]}")
    if total is not None:
        components["total"] = total
    engine: dict[str, Any] = {
        "name": "vllm",
        "version": record.get("vllm_version"),
        "tensor_parallel_size": tp,
        "pipeline_parallel_size": pp,
        "data_parallel_size": dp,
        "gpu_memory_utilization": record.get("gpu_memory_utilization"),
        "max_model_len": record.get("max_model_len"),
        "kv_cache_dtype": record.get("kv_cache_dtype"),
        "enforce_eager": record.get("enforce_eager"),
    }
    extra: dict[str, Any] = {}
    for key, value in args.items():
        if key in VME_ENGINE_ARGS:
            engine[VME_ENGINE_ARGS[key]] = int(value)
        elif key not in VME_ARGS_IN_FIELDS and key != "dtype":
            extra[key] = value
    if extra:
        engine["extra_args"] = extra
    dtype = args.get("dtype")
    concurrency = record.get("max_concurrency")
    concurrency_tokens = record.get("max_concurrency_tokens")
    notes = (f"Record {record['id']} of the vLLM memory estimator's public validation set (vme-dev.jsonl, "
             f"{record.get('source')}); accelerator {accelerator}, gpu_total_gib {memory_gib} (torch-visible total "
             f"per GPU). runtime_args: {record.get('runtime_args')}. The record holds the weights, KV pool, KV "
             "capacity and CUDA graph figures of the log, not its activation or non-torch lines.")
    if record.get("quantization"):
        notes += f" vLLM reported quantization={record['quantization']}."
    if dtype is None:
        notes += f" The record's resolved dtype is {record.get('dtype')} (no --dtype given)."
    if concurrency is not None and concurrency_tokens not in (None, record.get("max_model_len")):
        notes += f" max_concurrency is quoted for {concurrency_tokens} tokens, not max_model_len: not imported."
        concurrency = None
    data: dict[str, Any] = {
        "source": {
            "reference": f"{VME_REFERENCE}, record {record['id']}",
            "kind": "vllm-log",
            "original_format": source_file.original_format,
            "notes": notes,
        },
        "model": {
            "id": model_id(source_file.curation, record.get("source") or "", record["model"]),
            "dtype": dtype,
            "quantization": quantization(record.get("quantization")),
            "name_in_source": record["model"],
        },
        "hardware": {
            "gpu_name": gpu_name,
            "vendor": vendor_from_name(gpu_name),
            "gpu_count": tp * pp * dp,
            "memory_per_gpu_bytes": None if memory_gib is None else to_bytes(memory_gib, "GiB"),
        },
        "engine": engine,
        "measurements": {
            "components": components,
            "kv_cache_tokens": record.get("kv_cache_tokens"),
            "max_concurrency": concurrency,
        },
    }
    return Profile.model_validate(data)


CONVERTERS: dict[str, Callable[[dict[str, Any], SourceFile], Profile]] = {"log": convert_log, "vme": convert_vme}


# ----------------------------------------------------------------------------------------------------------
# File names
# ----------------------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    """Lower-case, [a-z0-9.-] only, no leading/trailing/doubled dashes."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9.]+", "-", text.lower())).strip("-.")


def short_source(reference: str) -> str:
    """"vllm-project/vllm#10517" -> "vllm-10517"; a URL -> its host without "www."; "org/repo:path/file.ipynb" ->
    "repo--file" (a file in a repository)."""
    issue = re.fullmatch(r"[^/\s]+/([^/#\s]+)#(\d+)", reference)
    if issue:
        return slug(f"{issue.group(1)}-{issue.group(2)}")
    url = re.match(r"https?://(?:www\.)?([^/]+)", reference)
    if url:
        return slug(url.group(1))
    in_repo = re.fullmatch(r"[^/\s]+/([^/:\s]+):(.+)", reference)
    if in_repo:
        parts = [p for p in in_repo.group(2).split("/") if p]
        stem = Path(parts[-1]).stem if parts else ""
        if stem.lower() == "readme" and len(parts) > 1:
            stem = parts[-2]
        return f"{slug(in_repo.group(1))}--{slug(stem)[:60].strip('-.')}"
    return slug(reference)


def file_base(profile: Profile, record: dict[str, Any], schema: str) -> str:
    """The file name (without .json) of a record's profile."""
    model = slug(profile.model.id.rsplit("/", 1)[-1])
    if schema == "vme":
        accelerator = slug(str(record["accelerator"]))
        return f"{accelerator}-tp{profile.engine.tensor_parallel_size}--{model}--{slug(str(record['id']))[:8]}"
    return f"{short_source(record['source'])}--{model}"


PROFILE_MARKERS = (b'{\n  "format": "llmsizer-profile"',)
"""How every file ``profile_text`` writes begins: only such files are replaced or removed."""


def profile_text(profile: Profile) -> str:
    """The file content: indent 2, field order of the model, trailing newline."""
    data = profile.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def build(records: Iterable[dict[str, Any]], source_file: SourceFile
          ) -> tuple[dict[str, tuple[Profile, str]], list[Skipped]]:
    """File name -> (profile, file text) for every qualifying record, plus the skipped records.

    A second record with the same file base gets "--2", a third "--3", ..., in file order, so adding a record never
    renames an existing file.
    """
    convert = CONVERTERS[source_file.schema]
    curation = source_file.curation
    files: dict[str, tuple[Profile, str]] = {}
    skipped: list[Skipped] = []
    used_ids: set[tuple[str, str]] = set()
    used_duplicates: set[tuple[str, str]] = set()
    for line, record in enumerate(records, start=1):
        key = (str(record.get("source")), str(record.get("model")))
        reason = skip_reason(record, source_file.schema)
        if reason is None and key in curation.duplicates:
            reason = curation.duplicates[key]
            used_duplicates.add(key)
        if reason is not None:
            skipped.append(Skipped(line, key[0], key[1], reason))
            continue
        profile = convert(record, source_file)
        used_ids.add(key)
        base = file_base(profile, record, source_file.schema)
        name, n = f"{base}.json", 1
        while name in files:
            n += 1
            name = f"{base}--{n}.json"
        files[name] = (profile, profile_text(profile))
    stale = sorted((set(curation.model_ids) - used_ids) | (set(curation.duplicates) - used_duplicates))
    if stale:
        raise ImportProblem(
            "curated entries that match no qualifying record (remove or fix them): "
            + "; ".join(f"{s} / {m!r}" for s, m in stale)
        )
    return files, skipped


# ----------------------------------------------------------------------------------------------------------
# README table
# ----------------------------------------------------------------------------------------------------------


def holds(profile: Profile) -> str:
    """Which components and capacities a profile holds, for the README table ("total*" = derived)."""
    parts = [name + ("*" if c.provenance.value == "derived" else "")
             for name, c in profile.measurements.components.present().items()]
    m = profile.measurements
    parts += [
        label
        for label, value in (
            ("kv_cache_tokens", m.kv_cache_tokens),
            ("max_concurrency", m.max_concurrency),
            ("num_gpu_blocks", m.num_gpu_blocks),
        )
        if value is not None
    ]
    return ", ".join(parts)


def summary_table(files: dict[str, tuple[Profile, str]]) -> str:
    """A grouped markdown table (model, GPU, TP, vLLM versions, profiles) for a folder too large to list by file."""
    groups: dict[tuple[str, str, int], list[Profile]] = {}
    for profile, _ in files.values():
        key = (profile.model.id, profile.hardware.gpu_name or "not named", profile.engine.tensor_parallel_size)
        groups.setdefault(key, []).append(profile)
    rows = ["| model | GPU | TP | vLLM | profiles | holds |", "|---|---|---|---|---|---|"]
    for (model, gpu, tp), profiles in sorted(groups.items()):
        versions = sorted({p.engine.version or "-" for p in profiles})
        held = sorted({part for p in profiles for part in holds(p).split(", ")}, key=holds(profiles[0]).find)
        cells = [f"`{model}`", gpu, str(tp), ", ".join(versions), str(len(profiles)), ", ".join(held)]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def readme_table(files: dict[str, tuple[Profile, str]]) -> str:
    """The markdown table of profiles/README.md for one folder."""
    rows = [
        "| file | source | model | GPU | TP | vLLM | holds |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in sorted(files):
        p = files[name][0]
        gpu = p.hardware.gpu_name or "not named"
        if p.hardware.memory_per_gpu_bytes is not None:
            gpu += f" ({p.hardware.memory_per_gpu_bytes / 2**30:.2f} GiB)"
        tp = str(p.engine.tensor_parallel_size)
        if p.engine.pipeline_parallel_size > 1:
            tp += f" (PP {p.engine.pipeline_parallel_size})"
        if p.hardware.gpu_count > p.engine.tensor_parallel_size * p.engine.pipeline_parallel_size:
            tp += f" ({p.hardware.gpu_count} GPUs)"
        reference = p.source.reference.replace(f"{VME_REFERENCE}, ", "")
        cells = [f"`{name}`", reference, f"`{p.model.id}`", gpu, tp, p.engine.version or "-", holds(p)]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def sync(files: dict[str, tuple[Profile, str]], out: Path, check: bool, script: str) -> int:
    """Write (or, with ``check``, compare) the files; report every difference. Returns the exit status."""
    existing = {p.name: p for p in out.glob("*.json")} if out.is_dir() else {}
    differences = []
    for name, (_, text) in sorted(files.items()):
        path = out / name
        if name not in existing:
            differences.append(f"new      {_display(path)}")
        elif path.read_text(encoding="utf-8") != text:
            differences.append(
                f"differs  {_display(path)} (not what the data produces: a hand edit? make it in the data "
                "or in the importer's curated tables)"
            )
    for name in sorted(set(existing) - set(files)):
        differences.append(f"stale    {_display(existing[name])} (no record produces it)")

    if check:
        if differences:
            print(f"--check: {len(differences)} file(s) out of date; run {script}:")
            for d in differences:
                print(f"  {d}")
            return 1
        print(f"--check: all {len(files)} profiles in {_display(out)} match the data")
        return 0

    # never write through a link or over, nor delete, a file this importer did not write (``--out`` may name a
    # folder that holds other JSON files): every path is checked before anything changes
    try:
        for name in sorted(files):
            check_output(out / name, what="profile", markers=PROFILE_MARKERS, force_option="another --out")
    except UnsafePathError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    removable = []
    for name in sorted(set(existing) - set(files)):
        try:
            check_output(existing[name], what="profile", markers=PROFILE_MARKERS, force_option="another --out")
            removable.append(existing[name])
        except UnsafePathError as e:
            differences.remove(f"stale    {_display(existing[name])} (no record produces it)")
            print(f"left alone: {e}")
    out.mkdir(parents=True, exist_ok=True)
    for name, (_, text) in sorted(files.items()):
        atomic_replace(out / name, text)
    for path in removable:
        path.unlink()
    for d in differences:
        action = {"new": "wrote", "differs": "overwrote", "stale": "removed"}[d.split()[0]]
        print(f"{action}: {d.split(None, 1)[1]}")
    print(f"{len(files)} profiles in {_display(out)} ({len(differences)} created, changed or removed)")
    return 0


def main(source_file: SourceFile, argv: list[str] | None = None) -> int:
    """The command line every importer script shares."""
    parser = argparse.ArgumentParser(
        description=f"Turn {source_file.name} records into native profiles under profiles/{source_file.folder}."
    )
    parser.add_argument("--data", type=Path, default=None,
                        help=f"{source_file.name} (default: ../shared/data/vllm-startup-logs/{source_file.name})")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: profiles/{source_file.folder} in the repo)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any committed file differs from the data")
    parser.add_argument("--readme-table", action="store_true",
                        help="print the profiles/README.md table and write nothing")
    args = parser.parse_args(argv)
    data: Path = args.data if args.data is not None else source_file.data
    out: Path = args.out if args.out is not None else source_file.out

    try:
        records = read_records(data)
        files, skipped = build(records, source_file)
    except (OSError, ValueError, ImportProblem) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    if args.readme_table:
        print((summary_table if source_file.schema == "vme" else readme_table)(files), end="")
        return 0

    print(f"{len(records)} records in {data}: {len(files)} profiles, {len(skipped)} skipped")
    for s in skipped:
        print(f"skipped: record {s.line} {s.source} ({s.model}): {s.reason}")
    return sync(files, out, args.check, source_file.script)
