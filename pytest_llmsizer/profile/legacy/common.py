"""Shared machinery of the readers for the original LLM Sizer profiler formats.

The original files are loose: numbers arrive as strings, keys go missing, and units hide behind ``*_gb``
names that mean GB for one measuring tool and GiB for another (llm-sizer-origin.md section 1.1). Every reader
therefore goes through the helpers here, which (1) read typed values and record a ``Problem`` with the exact
JSON path instead of raising, so a user sees every fault of a file at once; (2) decide the unit a number was
really printed in; (3) build components with provenance, confidence and a note on where the number came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from pytest_llmsizer.errors import Problem, ProfileError
from pytest_llmsizer.profile.errors_fmt import problems_from_validation
from pytest_llmsizer.profile.model import Component, Confidence, Profile, Provenance, Source
from pytest_llmsizer.units import UNIT_BYTES

Unit = Literal["GB", "GiB"]

MAX_GB = 1e6
"""No GPU holds a petabyte: a bigger number is a unit or typing error (and breaks the native byte bound)."""

ROCM_SMI_DEFAULT_TOTAL_GB = 206.0
"""On their rocm-smi path the profilers hard-coded the per-GPU total to 206.0 ("MI300X default")."""

_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _type_name(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Node:
    """A JSON object together with its JSON path, so every value read from it can be blamed precisely."""

    data: dict[str, Any]
    path: str

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"


class Fields:
    """Typed, path-aware reads from a legacy JSON tree.

    Nothing here raises: a bad or missing value is recorded as a ``Problem`` and ``None`` is returned, so the
    reader carries on and reports all faults of the file in one ``ProfileError`` (see ``run_reader``). A
    ``None`` node (its parent was missing or broken, already reported) yields ``None`` silently.
    """

    def __init__(self, data: dict[str, Any]):
        self.problems: list[Problem] = []
        self.root = Node(data, "$")

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def _get(self, node: Node | None, key: str, required: bool, nullable: bool) -> tuple[bool, Any]:
        """(found, value), recording missing/null problems; ``found`` is False if there is nothing to read."""
        if node is None:
            return False, None
        if key not in node.data:
            if required:
                self.problem(node.at(key), "missing required key")
            return False, None
        value = node.data[key]
        if value is None:
            if required and not nullable:
                self.problem(node.at(key), "is null; expected a value")
            return False, None
        return True, value

    def obj(self, node: Node | None, key: str, *, required: bool = False) -> Node | None:
        found, value = self._get(node, key, required, nullable=False)
        if not found:
            return None
        assert node is not None
        if not isinstance(value, dict):
            self.problem(node.at(key), f"expected an object, got {_type_name(value)}")
            return None
        return Node(value, node.at(key))

    def objects(self, node: Node | None, key: str, *, required: bool = False) -> list[Node] | None:
        """A list of objects; a non-object element is reported and skipped."""
        found, value = self._get(node, key, required, nullable=False)
        if not found:
            return None
        assert node is not None
        if not isinstance(value, list):
            self.problem(node.at(key), f"expected an array, got {_type_name(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            path = f"{node.at(key)}[{i}]"
            if isinstance(item, dict):
                out.append(Node(item, path))
            else:
                self.problem(path, f"expected an object, got {_type_name(item)}")
        return out

    def number(
        self,
        node: Node | None,
        key: str,
        *,
        required: bool = False,
        nullable: bool = False,
        minimum: float | None = 0.0,
        maximum: float | None = None,
    ) -> float | None:
        found, value = self._get(node, key, required, nullable)
        if not found:
            return None
        assert node is not None
        path = node.at(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = f" ({value[:40]!r}); write the number without quotes" if isinstance(value, str) else ""
            self.problem(path, f"expected a number, got {_type_name(value)}{hint}")
            return None
        if not math.isfinite(value):
            self.problem(path, f"expected a finite number, got {value!r}")
            return None
        if minimum is not None and value < minimum:
            self.problem(path, f"must be >= {minimum:g}, got {value!r}")
            return None
        if maximum is not None and value > maximum:
            self.problem(path, f"must be <= {maximum:g}, got {value!r}")
            return None
        return float(value)

    def gb(
        self, node: Node | None, key: str, *, required: bool = False, nullable: bool = False
    ) -> float | None:
        """A memory amount in the file's ``*_gb`` sense (GB or GiB: the caller decides), finite, 0 to 1 PB."""
        value = self.number(node, key, required=required, nullable=nullable)
        if value is not None and value > MAX_GB:
            assert node is not None
            self.problem(node.at(key), f"{value!r} GB is implausibly large for one GPU (> {MAX_GB:g})")
            return None
        return value

    def integer(
        self, node: Node | None, key: str, *, required: bool = False, nullable: bool = False, minimum: int = 0
    ) -> int | None:
        """An integer; integral floats (``8.03e9`` parameter counts) are accepted, fractional ones are not."""
        value = self.number(
            node, key, required=required, nullable=nullable, minimum=minimum, maximum=2.0**63
        )
        if value is None:
            return None
        if not value.is_integer():
            assert node is not None
            self.problem(node.at(key), f"expected a whole number, got {value!r}")
            return None
        return int(value)

    def text(
        self, node: Node | None, key: str, *, required: bool = False, nullable: bool = False
    ) -> str | None:
        found, value = self._get(node, key, required, nullable)
        if not found:
            return None
        assert node is not None
        if not isinstance(value, str):
            self.problem(node.at(key), f"expected a string, got {_type_name(value)}")
            return None
        if required and not value.strip():
            self.problem(node.at(key), "is empty")
            return None
        return value

    def flag(self, node: Node | None, key: str) -> bool | None:
        found, value = self._get(node, key, required=False, nullable=True)
        if not found:
            return None
        assert node is not None
        if not isinstance(value, bool):
            self.problem(node.at(key), f"expected true or false, got {_type_name(value)}")
            return None
        return value


# -- units and measuring back-ends -----------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """The tool that printed a device total, and the unit its ``*_gb`` numbers really are in."""

    tool: str | None
    unit: Unit
    note: str

    @property
    def known(self) -> bool:
        return self.tool is not None


ROCM_SMI = Backend("rocm-smi", "GB", "rocm-smi bytes / 1e9 (decimal GB)")
AMD_SMI = Backend("amd-smi", "GiB", "amd-smi MB (really MiB) / 1024 = GiB despite the _gb name")
NVIDIA_SMI = Backend("nvidia-smi", "GiB", "nvidia-smi MiB / 1024 = GiB despite the _gb name")
SYSFS = Backend("sysfs", "GB", "sysfs mem_info_vram_* bytes / 1e9 (decimal GB)")
ROCM_SMI_OR_SYSFS = Backend("rocm-smi or sysfs", "GB", "rocm-smi or sysfs bytes / 1e9 (decimal GB)")
UNKNOWN_SMI = Backend(
    None,
    "GB",
    "measuring tool unknown (gpu_type not rocm/cuda): assumed decimal GB, the rocm-smi/sysfs convention of "
    "the profilers' main (ROCm) path; if nvidia-smi or amd-smi printed it, the true value is 7.4% higher",
)


def all_default_rocm_totals(totals: Sequence[float | None]) -> bool:
    """True when every per-GPU total is rocm-smi's hard-coded 206.0: the numbers came through rocm-smi."""
    present = [t for t in totals if t is not None]
    return bool(present) and all(t == ROCM_SMI_DEFAULT_TOTAL_GB for t in present)


def smi_backend(
    gpu_type: str | None, totals: Sequence[float | None], rocm: Backend = ROCM_SMI
) -> Backend:
    """The back-end of a snapshot; ``rocm`` is what the profiler ran on ROCm (rocm-smi; amd-smi for v3)."""
    if all_default_rocm_totals(totals):
        return ROCM_SMI
    if gpu_type == "rocm":
        return rocm
    if gpu_type == "cuda":
        return NVIDIA_SMI
    return UNKNOWN_SMI


def vendor_of(gpu_type: str | None) -> Literal["nvidia", "amd"] | None:
    if gpu_type == "rocm":
        return "amd"
    if gpu_type == "cuda":
        return "nvidia"
    return None


def to_bytes(value: float, unit: Unit, share: int = 1) -> int:
    """``value`` in ``unit``, divided by ``share`` GPUs, as integer bytes (one rounding, at the end)."""
    return round(value * UNIT_BYTES[unit] / share)


# -- confidence ------------------------------------------------------------------------------------

CONFIDENCE_LABELS: dict[str, Confidence] = {
    "high": Confidence.HIGH,
    "medium": Confidence.MEDIUM,
    "low": Confidence.LOW,
    "adjusted": Confidence.MEDIUM,
    "high_from_vllm_logs": Confidence.HIGH,
    "high_from_params": Confidence.HIGH,
    "high_calculated": Confidence.HIGH,
    "low_estimated": Confidence.LOW,
    "estimated_from_residual": Confidence.LOW,
    "calculated_residual": Confidence.LOW,
}
"""The profilers' confidence labels mapped to ours: what the file states, not what we think of the formula."""

ENGINE_LABEL = "high_from_vllm_logs"


def confidence_of(label: str | None, default: Confidence = Confidence.LOW) -> Confidence:
    if label is None:
        return default
    return CONFIDENCE_LABELS.get(label, Confidence.LOW)


def label_note(label: str | None) -> str:
    if label is None:
        return "the file states no confidence"
    known = "" if label in CONFIDENCE_LABELS else " (unknown label, taken as low)"
    return f"file confidence '{label}'{known}"


# -- components ------------------------------------------------------------------------------------


def component(
    value: float,
    unit: Unit,
    provenance: Provenance,
    confidence: Confidence,
    note: str,
    *,
    share: int = 1,
    per_gpu: Sequence[float] | None = None,
) -> Component:
    """A native component from a file value; ``share`` > 1 marks a sum over GPUs split evenly (so derived)."""
    if share > 1:
        provenance = Provenance.DERIVED
        note = f"{note}; the file's value is a sum over {share} GPUs, divided by {share} for a per-GPU figure"
    return Component(
        bytes=to_bytes(value, unit, share),
        provenance=provenance,
        confidence=confidence,
        per_gpu_bytes=[to_bytes(v, unit) for v in per_gpu] if per_gpu is not None else None,
        unit_read=unit,
        note=note[:2000],
    )


def per_gpu_total(
    used: Sequence[float], backend: Backend, confidence: Confidence, note: str
) -> Component:
    """The native ``total``: the highest per-GPU reading, each rank's value kept in ``per_gpu_bytes``."""
    return component(
        max(used), backend.unit, Provenance.DEVICE, confidence, f"{note}; {backend.note}", per_gpu=list(used)
    )


def capacity_note(backend: Backend, totals: Sequence[float | None]) -> str | None:
    """The smi capacity goes into the notes, not ``hardware.memory_per_gpu_bytes``: that field is the
    runtime's (torch/CUDA) total, which differs from what nvidia-smi and amd-smi print, and rocm-smi's 206.0
    is not a reading at all."""
    present = [t for t in totals if t is not None]
    if not present or backend is ROCM_SMI or not backend.known:
        return None
    capacity = f"{max(present)} {backend.unit}"
    return f"Per-GPU capacity as {backend.tool} reports it: {capacity} (not the runtime's total)."


def select_tp_gpus(
    fields: Fields, details: list[Node] | None, tp: int
) -> tuple[list[Node], str] | None:
    """The per-GPU entries of the tensor-parallel GPUs, in device order, with a note on how they were chosen.

    The v2 snapshots list every GPU of the system. vLLM, started without ``*_VISIBLE_DEVICES``, uses devices
    0..TP-1, so those are taken when the list is longer than TP; ``None`` when the ranks cannot be identified.
    """
    if not details:
        return None
    if len(details) == tp:
        return details, "all listed GPUs are the tensor-parallel GPUs"
    if len(details) < tp:
        return None
    by_device: dict[int, Node] = {}
    for item in details:
        device = fields.integer(item, "device")
        if device is not None:
            by_device[device] = item
    if not all(d in by_device for d in range(tp)):
        return None
    return [by_device[d] for d in range(tp)], (
        f"the snapshot lists {len(details)} system GPUs; devices 0..{tp - 1} taken as vLLM's GPUs "
        "(its default without *_VISIBLE_DEVICES; not recorded in the file)"
    )


def used_values(fields: Fields, items: list[Node], key: str = "used_gb") -> list[float] | None:
    """``used_gb`` of each per-GPU entry; ``None`` if any is missing or bad (each such fault is reported)."""
    values = [fields.gb(item, key, required=True) for item in items]
    return None if any(v is None for v in values) else [v for v in values if v is not None]


# -- assembling the profile ------------------------------------------------------------------------


def join_notes(notes: Sequence[str | None], limit: int = 5000) -> str | None:
    text = " ".join(n.strip() for n in notes if n and n.strip())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text or None


def profiler_source(file: str, original_format: str, notes: Sequence[str | None],
                    timestamp: str | None = None) -> Source:
    """Where a converted profile came from: the file (and the run's timestamp when the format records one), which
    original profiler format, and the reader's notes, joined."""
    return Source(
        reference=f"{file} @ {timestamp}" if timestamp else file,
        kind="llmsizer-profiler",
        original_format=original_format,
        collected=timestamp,
        notes=join_notes(notes),
    )


def run_reader(
    file: str, data: dict[str, Any], body: Callable[[Fields], Profile | None]
) -> Profile:
    """Run one reader body and turn every fault into a single ``ProfileError``.

    The body records problems in ``Fields`` and returns ``None`` once it knows the file is broken. A pydantic
    error while building the native models means the file's values broke a native rule (say a TP size larger
    than the GPU count); it is reported too, labelled as such, never as a traceback.
    """
    fields = Fields(data)
    profile: Profile | None = None
    try:
        profile = body(fields)
    except ValidationError as e:
        fields.problems += [
            Problem(p.path, f"after conversion to the native format: {p.message}")
            for p in problems_from_validation(e)
        ]
    if fields.problems or profile is None:
        raise ProfileError(file, fields.problems or [Problem("$", "the file could not be converted")])
    return profile
