"""Turn the vLLM startup-log records of ``issue-threads.jsonl`` into committed native profiles.

Input: ``../shared/data/vllm-startup-logs/issue-threads.jsonl``: logs that people pasted into public GitHub
issues, PRs and blog posts (field meanings in ``../shared/notes/vllm-log-formats.md``). Only this file may
become committed profiles; the other files in that folder are read at run time only and never copied here.

Output: one native profile per record that names its model AND its GPU (``gpu_name``) or its GPU memory
(``total_gpu_memory_gib``), written to ``profiles/vllm-issue-threads/``. Records lacking both are skipped,
and the script prints which and why.

Rules (see profiles/README.md):

* Every memory number is per GPU, in integer bytes: ``round(GiB x 2**30)``. vLLM's old "GB" label on the
  weights line means GiB (bytes / 2**30); the component's note says so.
* Missing stays missing: nothing is derived that the record does not hold, and engine settings the record
  leaves null stay null (tensor/pipeline parallel sizes default to 1, as the format requires).
* Model ids come from the reviewed ``MODEL_IDS`` table below, never from guessing. A record whose model
  string is not a plain ``org/name`` id and has no entry there stops the script.

The script regenerates every file from the data and reports each file it creates, changes or removes, so a
hand edit is never overwritten silently. ``--check`` writes nothing and exits 1 when any committed file
differs from what the script would write (CI drift check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pytest_llmsizer.catalog.gpus import vendor_from_name  # noqa: E402
from pytest_llmsizer.profile.model import Profile  # noqa: E402
from pytest_llmsizer.units import to_bytes  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "vllm-startup-logs" / "issue-threads.jsonl"
DEFAULT_OUT = REPO_ROOT / "profiles" / "vllm-issue-threads"

ORIGINAL_FORMAT = "vllm-startup-log (issue-threads.jsonl record)"

# ----------------------------------------------------------------------------------------------------------
# Curated data. Each entry below was reviewed against the record (its model string, notes and log lines).
# ----------------------------------------------------------------------------------------------------------

MODEL_IDS: dict[tuple[str, str], str] = {
    # The record writes the HF id in parentheses; kept as written (the record does not say "-hf").
    ("vllm-project/vllm#2031", "Llama2-7B (meta-llama/Llama-2-7b)"): "meta-llama/Llama-2-7b",
    # Same PR, same reasoning: the HF id the record states, without an added "-hf".
    ("vllm-project/vllm#2031", "Llama2-70B (meta-llama/Llama-2-70b)"): "meta-llama/Llama-2-70b",
    # Local path only, no organisation anywhere in the record: strip the "(local ...)" decoration, add
    # nothing.
    (
        "vllm-project/vllm#5248",
        "deepseek-coder-6.7b-instruct (local /cm/deepseek-coder-6.7b-instruct/)",
    ): "deepseek-coder-6.7b-instruct",
    # Local path, but the record's notes quote the issue title, which names the HF id
    # "meta-llama/Meta-Llama-3.1-405B-Instruct-FP8".
    (
        "vllm-project/vllm#6746",
        "Meta-Llama-3.1-405B-Instruct-FP8 (local /models/Meta-Llama-3.1-405B-Instruct-FP8)",
    ): "meta-llama/Meta-Llama-3.1-405B-Instruct-FP8",
    # The local path "./Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8" is the HF org/name layout, written out in the
    # record.
    (
        "vllm-project/vllm#34076",
        "Qwen3-Coder-30B-A3B-Instruct-FP8 (local ./Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8)",
    ): "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8",
    # Local path and a --served-model-name without an organisation: strip the decoration, add no org.
    (
        "vllm-project/recipes#12",
        "Qwen3-Coder-480B-A35B-Instruct-FP8 (local /tmp/model/Qwen3-Coder-480B-A35B-Instruct-FP8)",
    ): "Qwen3-Coder-480B-A35B-Instruct-FP8",
    # A local quantized copy with no HF id in the record: the local directory name, as the log prints it.
    (
        "noonghunna/club-3090#295",
        "qwen3.6-27b-autoround-int4 (local ~/.cache/huggingface/qwen3.6-27b-autoround-int4)",
    ): "qwen3.6-27b-autoround-int4",
    # Same local checkpoint as club-3090#295, on a different machine.
    (
        "noonghunna/club-3090#46",
        "qwen3.6-27b-autoround-int4 (local ~/.cache/huggingface/qwen3.6-27b-autoround-int4)",
    ): "qwen3.6-27b-autoround-int4",
    # Local directory name; "Qwen3.6-35B-A3B NVFP4" in the record is a description, not an HF id.
    (
        "noonghunna/club-3090#612",
        "qwen3.6-35b-a3b-nvfp4 (local ~/.cache/huggingface/qwen3.6-35b-a3b-nvfp4; Qwen3.6-35B-A3B NVFP4)",
    ): "qwen3.6-35b-a3b-nvfp4",
    # Local directory name; no HF id in the record.
    (
        "noonghunna/club-3090#594",
        "qwen3.6-27b-fp8 (local ~/.cache/huggingface/qwen3.6-27b-fp8)",
    ): "qwen3.6-27b-fp8",
    # Name from the issue title; the parenthetical is a description. No HF id in the record.
    ("noonghunna/club-3090#1087", "qwen3.8-27b-fp8 (Qwen3.8-27B FP8, per issue title)"): "qwen3.8-27b-fp8",
    # Name from the issue title; no HF id in the record.
    ("noonghunna/club-3090#104", "Qwen3.6-27B-AutoRound (per issue title)"): "Qwen3.6-27B-AutoRound",
    # The record gives the canonical casing "Qwen/..."; the command line used the lower-case alias "qwen/...".
    (
        "QwenLM/Qwen3#16",
        "Qwen/Qwen1.5-7B-Chat-GPTQ-Int4 (as qwen/Qwen1.5-7B-Chat-GPTQ-Int4)",
    ): "Qwen/Qwen1.5-7B-Chat-GPTQ-Int4",
    # Local path; the record writes the HF id "unsloth/QwQ-32B-unsloth-bnb-4bit".
    (
        "vllm-project/vllm#14452",
        "QwQ-32B-unsloth-bnb-4bit (local /models/QwQ-32B-unsloth-bnb-4bit; unsloth/QwQ-32B-unsloth-bnb-4bit)",
    ): "unsloth/QwQ-32B-unsloth-bnb-4bit",
    # The record writes the HF id in parentheses (the script itself loaded a local "DeepSeek-V4-Flash").
    (
        "vllm-project/vllm#44376",
        "DeepSeek-V4-Flash (deepseek-ai/DeepSeek-V4-Flash)",
    ): "deepseek-ai/DeepSeek-V4-Flash",
    # Local path only, no organisation in the record: strip the decoration.
    (
        "syv-ai/qwen38-27b-rtx3090#39",
        "Qwen3.8-27B-W4A16-AutoRound (local /models/Qwen3.8-27B-W4A16-AutoRound)",
    ): "Qwen3.8-27B-W4A16-AutoRound",
    # Name from the issue title. Not an HF repo as written (Qwen publishes -Instruct / -Thinking variants and
    # the record does not say which), so the bare name is kept.
    ("vllm-project/vllm#26612", "Qwen3-VL-30B-A3B (per issue title)"): "Qwen3-VL-30B-A3B",
    # The record writes the HF id in parentheses (the command line used a local "Qwen2.5-32B-Instruct-AWQ").
    (
        "vllm-project/vllm#10360",
        "Qwen2.5-32B-Instruct-AWQ (Qwen/Qwen2.5-32B-Instruct-AWQ)",
    ): "Qwen/Qwen2.5-32B-Instruct-AWQ",
}
"""(record source, raw model string) -> model.id. Raw strings that are already a plain ``org/name`` id (e.g.
"meta-llama/Llama-3.1-8B-Instruct") need no entry and are kept exactly as the record wrote them."""

GPU_NAMES: dict[str, str] = {
    # "(96 GB)" is the reporter's memory note, not part of the device name.
    "NVIDIA GH200 (96 GB)": "NVIDIA GH200",
    # "(95 GiB)" is the memory the record noted, not part of the device name.
    "NVIDIA H20 (95 GiB)": "NVIDIA H20",
    # "(48G)" is the reporter's memory note, not part of the device name.
    "NVIDIA RTX A6000 (48G)": "NVIDIA RTX A6000",
    # "(repo target)" says the GPU is the repository's target machine rather than one the log printed.
    "NVIDIA GeForce RTX 3090 (repo target)": "NVIDIA GeForce RTX 3090",
}
"""Raw gpu_name -> hardware.gpu_name, for names carrying a parenthetical note that is not part of the device
name. Names not listed are kept as written (including the mixed-GPU string of vllm#34076). A cleaned name's
raw form is recorded in source.notes."""

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
    ("fp8", "fp8"),
)
QUANT_BITS = re.compile(r"(\d+)-bit|\bint(\d+)\b|\bw(\d+)a\d+\b", re.IGNORECASE)
"""Bit width, only where the record's quantization string states it: "4-bit", "int4", "W4A16"."""

PLAIN_HF_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")

# Log-line patterns per component; group "n" is the number in GiB (vLLM's "GB" on the weights line is GiB
# too).
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

COMPONENT_FIELDS: dict[str, str] = {
    "weights": "weights_gib",
    "kv_cache": "kv_cache_gib",
    "activations": "activation_peak_gib",
    "non_torch": "non_torch_gib",
    "cuda_graphs": "cuda_graph_gib",
}
"""Profile component -> record field (GiB, per GPU). Nothing else becomes a component."""


# ----------------------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------------------


class ImportProblem(Exception):
    """The data needs a curation decision the script will not make by itself."""


@dataclass(frozen=True)
class Skipped:
    """A record that does not become a profile, and why."""

    line: int
    source: str
    model: str
    reason: str


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL file, in file order (blank lines ignored)."""
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ImportProblem(f"{path}:{number}: expected a JSON object")
                records.append(record)
    return records


def skip_reason(record: dict[str, Any]) -> str | None:
    """Why a record cannot become a profile; None when it qualifies (model AND (GPU name OR GPU memory))."""
    if not record.get("model"):
        return "the record does not name its model"
    if not record.get("gpu_name") and record.get("total_gpu_memory_gib") is None:
        return (
            "the record names neither the GPU (gpu_name) nor its memory (total_gpu_memory_gib), "
            "so a calculator has no device to size against"
        )
    return None


def model_id(source: str, raw: str) -> str:
    """The curated model.id for a record's raw model string."""
    curated = MODEL_IDS.get((source, raw))
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


def component(record: dict[str, Any], name: str) -> dict[str, Any] | None:
    """One per-GPU component from the record's GiB field, with a note naming the log line it came from."""
    field = COMPONENT_FIELDS[name]
    value = record.get(field)
    if value is None:
        return None
    quote = find_log_quote(record.get("log_lines") or [], name, value)
    where = "the log line is not among the record's log_lines (see source.notes)"
    if quote is not None:
        where = f'source.log_lines[{quote[0]}]: "{quote[1]}"'
    note = f"issue-threads.jsonl field {field} = {value} GiB per GPU; {where}."
    if name == "weights" and record.get("weights_unit") == "GB":
        note += ' vLLM printed "GB" but the value is bytes / 2^30 (GiB), as it always has been.'
    return {
        "bytes": to_bytes(value, "GiB"),
        "provenance": "engine",
        "confidence": "high",
        "unit_read": "GiB",
        "note": note,
    }


def convert(record: dict[str, Any]) -> Profile:
    """A native profile from one qualifying record. Nothing the record does not hold is invented."""
    source = record["source"]
    raw_model = record["model"]
    raw_gpu = record.get("gpu_name")
    gpu_name = GPU_NAMES.get(raw_gpu, raw_gpu) if raw_gpu else None

    notes = record.get("notes")
    if gpu_name != raw_gpu:
        addition = f"[importer] hardware.gpu_name cleaned from the record's gpu_name {raw_gpu!r}."
        notes = f"{notes} {addition}" if notes else addition

    tp = record.get("tensor_parallel_size") or 1
    pp = record.get("pipeline_parallel_size") or 1
    visible = record.get("gpu_count_visible")
    gpu_count = max(visible, tp * pp) if visible else tp * pp
    total_gib = record.get("total_gpu_memory_gib")

    components = {name: c for name in COMPONENT_FIELDS if (c := component(record, name)) is not None}
    data: dict[str, Any] = {
        "source": {
            "reference": source,
            "kind": "vllm-log",
            "original_format": ORIGINAL_FORMAT,
            "notes": notes,
            "log_lines": record.get("log_lines"),
        },
        "model": {
            "id": model_id(source, raw_model),
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
            "version": record.get("vllm_version"),
            "tensor_parallel_size": tp,
            "pipeline_parallel_size": pp,
            "gpu_memory_utilization": record.get("gpu_memory_utilization"),
            "max_model_len": record.get("max_model_len"),
            "max_num_seqs": record.get("max_num_seqs"),
            "max_num_batched_tokens": record.get("max_num_batched_tokens"),
            "block_size": record.get("block_size"),
            "kv_cache_dtype": record.get("kv_cache_dtype"),
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


def slug(text: str) -> str:
    """Lower-case, [a-z0-9.-] only, no leading/trailing/doubled dashes."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9.]+", "-", text.lower())).strip("-.")


def short_source(reference: str) -> str:
    """"vllm-project/vllm#10517" -> "vllm-10517"; a URL -> its host without "www."."""
    issue = re.fullmatch(r"[^/\s]+/([^/#\s]+)#(\d+)", reference)
    if issue:
        return slug(f"{issue.group(1)}-{issue.group(2)}")
    url = re.match(r"https?://(?:www\.)?([^/]+)", reference)
    if url:
        return slug(url.group(1))
    return slug(reference)


def profile_text(profile: Profile) -> str:
    """The file content: indent 2, field order of the model, trailing newline."""
    data = profile.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def build(records: Iterable[dict[str, Any]]) -> tuple[dict[str, tuple[Profile, str]], list[Skipped]]:
    """File name -> (profile, file text) for every qualifying record, plus the skipped records.

    A second record with the same source and model slug gets "--2", a third "--3", ..., in file order, so
    adding a record never renames an existing file.
    """
    files: dict[str, tuple[Profile, str]] = {}
    skipped: list[Skipped] = []
    used_keys: set[tuple[str, str]] = set()
    for line, record in enumerate(records, start=1):
        reason = skip_reason(record)
        if reason is not None:
            skipped.append(Skipped(line, str(record.get("source")), str(record.get("model")), reason))
            continue
        profile = convert(record)
        used_keys.add((record["source"], record["model"]))
        base = f"{short_source(record['source'])}--{slug(profile.model.id.rsplit('/', 1)[-1])}"
        name, n = f"{base}.json", 1
        while name in files:
            n += 1
            name = f"{base}--{n}.json"
        files[name] = (profile, profile_text(profile))
    stale = sorted(set(MODEL_IDS) - used_keys)
    if stale:
        raise ImportProblem(
            "MODEL_IDS entries that match no qualifying record (remove or fix them): "
            + "; ".join(f"{s} / {m!r}" for s, m in stale)
        )
    return files, skipped


# ----------------------------------------------------------------------------------------------------------
# README table
# ----------------------------------------------------------------------------------------------------------


def holds(profile: Profile) -> str:
    """Which components and capacities a profile holds, for the README table."""
    parts = list(profile.measurements.components.present())
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


def readme_table(files: dict[str, tuple[Profile, str]]) -> str:
    """The markdown table of profiles/README.md."""
    rows = [
        "| file | source | model | GPU | TP | holds |",
        "|---|---|---|---|---|---|",
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
        cells = [f"`{name}`", p.source.reference, f"`{p.model.id}`", gpu, tp, holds(p)]
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


def sync(files: dict[str, tuple[Profile, str]], out: Path, check: bool) -> int:
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
                "or in this script's curated tables)"
            )
    for name in sorted(set(existing) - set(files)):
        differences.append(f"stale    {_display(existing[name])} (no record produces it)")

    if check:
        if differences:
            print(f"--check: {len(differences)} file(s) out of date; run scripts/import_issue_threads.py:")
            for d in differences:
                print(f"  {d}")
            return 1
        print(f"--check: all {len(files)} profiles in {_display(out)} match the data")
        return 0

    out.mkdir(parents=True, exist_ok=True)
    for name, (_, text) in sorted(files.items()):
        (out / name).write_text(text, encoding="utf-8", newline="\n")
    for name in sorted(set(existing) - set(files)):
        existing[name].unlink()
    for d in differences:
        action = {"new": "wrote", "differs": "overwrote", "stale": "removed"}[d.split()[0]]
        print(f"{action}: {d.split(None, 1)[1]}")
    print(f"{len(files)} profiles in {_display(out)} ({len(differences)} created, changed or removed)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Turn issue-threads.jsonl records into native profiles under profiles/vllm-issue-threads."
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="issue-threads.jsonl (default: ../shared/data/vllm-startup-logs/issue-threads.jsonl, from the "
        "repo root)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: profiles/vllm-issue-threads in the repo)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if any committed file differs from the data",
    )
    parser.add_argument(
        "--readme-table", action="store_true", help="print the profiles/README.md table and write nothing"
    )
    args = parser.parse_args(argv)
    data: Path = args.data if args.data is not None else DEFAULT_DATA
    out: Path = args.out if args.out is not None else DEFAULT_OUT

    try:
        records = read_records(data)
        files, skipped = build(records)
    except (OSError, ValueError, ImportProblem) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    if args.readme_table:
        print(readme_table(files), end="")
        return 0

    print(f"{len(records)} records in {data}: {len(files)} profiles, {len(skipped)} skipped")
    for s in skipped:
        print(f"skipped: record {s.line} {s.source} ({s.model}): {s.reason}")
    return sync(files, out, args.check)


if __name__ == "__main__":
    sys.exit(main())
