"""The native profile format (version 1): one real measurement of GPU memory during LLM inference.

Design rules, each a lesson from the original LLM Sizer (see the project's design notes):

* Bytes inside, as integers. A reader converts GB (1e9) or GiB (2^30) exactly once, when it ingests a number, and
  records the unit it read in ``unit_read`` so the conversion can be audited.
* Per GPU. Every component is the memory on one GPU (one tensor-parallel rank). Where ranks differ, ``per_gpu_bytes``
  holds each rank's value; a summed total over GPUs never lands in a per-GPU field.
* Provenance on every number: reported by the engine (vLLM's own memory profiling log), measured on the device
  (NVML, amd-smi, torch allocator), or derived by a formula. A derived number is not ground truth: it is shown and
  compared, but it does not fail or pass anything unless the tolerances say so.
* Missing stays missing (``None``), never 0.
"""

from __future__ import annotations

import math
import types
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

FORMAT_NAME: Literal["llmsizer-profile"] = "llmsizer-profile"
FORMAT_VERSION: Literal[1] = 1

NonNegativeBytes = Annotated[int, Field(ge=0, le=2**50, description="bytes (integer)")]
SignedBytes = Annotated[int, Field(ge=-(2**50), le=2**50, description="bytes (integer); may be negative")]


class Provenance(str, Enum):
    """Where a number came from. Only ``engine`` and ``device`` are measurements."""

    ENGINE = "engine"  # the inference engine's own accounting, e.g. vLLM "Model loading took X GiB"
    DEVICE = "device"  # read from the device: nvidia-smi / NVML, amd-smi, rocm-smi, torch allocator
    DERIVED = "derived"  # computed by a formula or split by a fixed percentage: not ground truth


class Confidence(str, Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


COMPONENT_NAMES: tuple[str, ...] = (
    "weights",
    "kv_cache",
    "activations",
    "non_torch",
    "cuda_graphs",
    "framework_overhead",
    "multi_gpu_overhead",
    "total",
)
"""Every component a profile may hold, in display order. All are per GPU."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    @field_validator("*", mode="before")
    @classmethod
    def _json_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        """Numbers must be JSON numbers and booleans JSON booleans.

        pydantic's lax mode reads ``"123"`` as 123, ``true`` as 1 and ``"yes"`` as true, so a tool that quotes its
        numbers, or writes a boolean for a count, would pass unnoticed although the JSON Schema says number. Done
        here rather than with annotated types, which would change the generated schema.
        """
        kind = _scalar_kind(cls, info.field_name) if info.field_name else None
        if kind is None or value is None:
            return value
        if kind == "list" and isinstance(value, list):
            items = []
            for i, item in enumerate(value):
                try:
                    items.append(_json_scalar(item, "int"))
                except ValueError as e:
                    raise ValueError(f"item [{i}]: {e}") from None
            return items
        return _json_scalar(value, kind)


def _json_scalar(value: Any, kind: str) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {_json_type(value)}")
        return value
    if isinstance(value, (bool, str)):
        hint = "; write the number without quotes" if isinstance(value, str) else ""
        raise ValueError(f"expected a number, got {_json_type(value)}{hint}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        if kind == "int" and value.is_integer():
            # JSON has one number type: 8.03e9 and 1e30 are the integers they denote, so that the range check
            # reports 1e30 rather than an obscure conversion error.
            return int(value)
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


@cache
def _scalar_kind(model: type[BaseModel], field: str) -> str | None:
    """"int", "float", "bool" or "list" (of integers) for a field of that type, optional or not; else None."""
    info = model.model_fields.get(field)
    if info is None:
        return None
    annotation = info.annotation
    options = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    for option in options:
        if get_origin(option) is Annotated:
            option = get_args(option)[0]
        if option is bool:
            return "bool"
        if option in (int, float):
            return option.__name__
        if get_origin(option) is list:
            (item,) = get_args(option)
            if (get_args(item)[0] if get_origin(item) is Annotated else item) is int:
                return "list"
    return None


class Component(_Strict):
    """One measured (or derived) memory component on one GPU."""

    bytes: SignedBytes = Field(description="per-GPU bytes; negative only for engine-reported values that can be so")
    provenance: Provenance
    confidence: Confidence = Field(description="required: a reader must say how sure the number is")
    per_gpu_bytes: list[SignedBytes] | None = Field(
        default=None, description="one value per GPU (rank order) when ranks were read separately"
    )
    unit_read: Literal["B", "MB", "MiB", "GB", "GiB"] | None = Field(
        default=None, description="the unit the source printed, before conversion to bytes"
    )
    note: str | None = Field(default=None, max_length=2000, description="where exactly the number came from")


class Components(_Strict):
    weights: Component | None = None
    kv_cache: Component | None = Field(default=None, description="KV cache memory (vLLM: the available KV pool)")
    activations: Component | None = Field(default=None, description="activation peak (vLLM: torch peak increase)")
    non_torch: Component | None = None
    cuda_graphs: Component | None = None
    framework_overhead: Component | None = None
    multi_gpu_overhead: Component | None = None
    total: Component | None = Field(default=None, description="total memory used on one GPU")

    def present(self) -> dict[str, Component]:
        """The components this profile holds, in display order."""
        return {name: c for name in COMPONENT_NAMES if (c := getattr(self, name)) is not None}


class DeviceReadings(_Strict):
    """Whole-device memory in use, one value per GPU, at three moments of the run."""

    tool: str | None = Field(default=None, description="nvidia-smi, amd-smi, rocm-smi, torch, ...")
    baseline_bytes: list[NonNegativeBytes] | None = Field(default=None, description="before the engine started")
    peak_bytes: list[NonNegativeBytes] | None = Field(default=None, description="highest reading during the run")
    final_bytes: list[NonNegativeBytes] | None = Field(default=None, description="after the run")
    unit_read: Literal["B", "MB", "MiB", "GB", "GiB"] | None = None
    provenance: Provenance = Provenance.DEVICE


class Measurements(_Strict):
    components: Components = Field(default_factory=Components)
    device: DeviceReadings | None = None
    kv_cache_tokens: int | None = Field(default=None, ge=0, description="engine-wide KV capacity in tokens")
    max_concurrency: float | None = Field(default=None, ge=0, description="requests of max_model_len that fit")
    num_gpu_blocks: int | None = Field(default=None, ge=0)


class Quantization(_Strict):
    method: str = Field(description="awq, gptq, fp8, bitsandbytes, mxfp4, nvfp4, compressed-tensors, ...")
    bits: int | None = Field(default=None, ge=1, le=32)
    group_size: int | None = Field(default=None, ge=-1)
    detail: str | None = Field(default=None, max_length=500)


class ModelInfo(_Strict):
    id: str = Field(min_length=1, max_length=300, description="Hugging Face id (org/name) or a catalog id")
    num_parameters: int | None = Field(default=None, ge=0, description="total parameter count, if known")
    dtype: str | None = Field(default=None, description="weight dtype: bfloat16, float16, float32, auto, ...")
    quantization: Quantization | None = None
    config: dict[str, Any] | None = Field(
        default=None, description="subset of the model's HF config.json, when the id is not in the catalog"
    )
    name_in_source: str | None = Field(default=None, description="the model name exactly as the source wrote it")


class Hardware(_Strict):
    gpu_name: str | None = Field(default=None, description="as nvidia-smi / amd-smi prints it")
    vendor: Literal["nvidia", "amd", "intel", "other"] | None = None
    gpu_count: int = Field(default=1, ge=1, le=4096, description="GPUs the run used (TP x PP x DP)")
    memory_per_gpu_bytes: NonNegativeBytes | None = Field(
        default=None, description="total memory of one GPU as the runtime sees it (torch / CUDA total)"
    )
    driver: str | None = Field(default=None, max_length=200, description="GPU driver version, as the device reports it")


class Engine(_Strict):
    name: Literal["vllm", "transformers", "sglang", "tensorrt-llm", "other"] = "vllm"
    version: str | None = None
    tensor_parallel_size: int = Field(default=1, ge=1, le=1024)
    pipeline_parallel_size: int = Field(default=1, ge=1, le=1024)
    data_parallel_size: int = Field(default=1, ge=1, le=1024)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    max_model_len: int | None = Field(default=None, ge=1)
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    block_size: int | None = Field(default=None, ge=1)
    kv_cache_dtype: str | None = None
    enforce_eager: bool | None = None
    extra_args: dict[str, Any] | None = Field(default=None, description="other engine settings, verbatim")


class Workload(_Strict):
    batch_size: int = Field(ge=1)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)


class Source(_Strict):
    reference: str = Field(min_length=1, description="where the numbers came from: issue URL, run id, file")
    kind: Literal["vllm-log", "llmsizer-profiler", "measured-run", "other"] = "other"
    original_format: str | None = Field(default=None, description="the format a reader converted from")
    collected: str | None = Field(default=None, description="date of the run or of the source")
    notes: str | None = Field(default=None, max_length=5000)
    log_lines: list[str] | None = Field(default=None, description="verbatim lines the numbers were read from")
    software: dict[str, str] | None = Field(
        default=None, description="versions of the engine, libraries and tools that produced the numbers"
    )
    failure: str | None = Field(
        default=None, max_length=5000,
        description="set only when the run failed (crash, out of memory, timeout, no memory growth): why; the numbers "
                    "are partial and are not ground truth",
    )


def _files_must_name_the_format(schema: dict[str, Any]) -> None:
    # Python code may omit them (defaults), but a file must carry both: loaders detect the format by them.
    schema["required"] = sorted({*schema.get("required", []), "format", "format_version"})


class Profile(_Strict):
    """A real measurement of GPU memory during one inference deployment. Every memory number is per GPU."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_files_must_name_the_format)

    format: Literal["llmsizer-profile"] = Field(
        default=FORMAT_NAME, description="always 'llmsizer-profile': loaders detect the format by it"
    )
    format_version: Literal[1] = Field(default=FORMAT_VERSION, description="version of this format")
    synthetic: bool = Field(default=False, description="true only for clearly marked synthetic edge cases")
    source: Source
    model: ModelInfo
    hardware: Hardware = Field(default_factory=Hardware)
    engine: Engine = Field(default_factory=Engine)
    workload: Workload | None = None
    measurements: Measurements = Field(default_factory=Measurements)

    @field_validator("format_version", mode="before")
    @classmethod
    def _known_version(cls, value: object) -> object:
        # ``true == 1`` in Python, and Literal[1] would accept it: a boolean is no version number.
        if isinstance(value, bool) or value != FORMAT_VERSION:
            shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
            raise ValueError(f"unsupported format_version {shown}; this reader knows version {FORMAT_VERSION}")
        return value

    @model_validator(mode="after")
    def _per_gpu_lists_match_gpu_count(self) -> Profile:
        gpus = self.hardware.gpu_count
        problems = []
        for name, comp in self.measurements.components.present().items():
            if comp.per_gpu_bytes is not None and len(comp.per_gpu_bytes) != gpus:
                problems.append(
                    f"measurements.components.{name}.per_gpu_bytes has {len(comp.per_gpu_bytes)} values "
                    f"but hardware.gpu_count is {gpus}"
                )
        device = self.measurements.device
        if device is not None:
            for field in ("baseline_bytes", "peak_bytes", "final_bytes"):
                values = getattr(device, field)
                if values is not None and len(values) != gpus:
                    problems.append(
                        f"measurements.device.{field} has {len(values)} values but hardware.gpu_count is {gpus}"
                    )
        parallel = self.engine.tensor_parallel_size * self.engine.pipeline_parallel_size
        if parallel > gpus:
            problems.append(
                f"engine.tensor_parallel_size x pipeline_parallel_size = {parallel} exceeds hardware.gpu_count {gpus}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- conveniences used by the plugin, the CLI and the checks ------------------------------------------------
    @property
    def tp(self) -> int:
        return self.engine.tensor_parallel_size

    def physical_problems(self) -> list[tuple[str, str]]:
        """Values no measurement can have, as (JSON path, what is wrong); see :func:`physical_problems`."""
        return physical_problems(self)

    def keywords(self) -> set[str]:
        """Words ``pytest -k`` can select this profile by: model, GPU, engine, TP size, quantization."""
        words = {self.model.id, self.model.id.split("/")[-1], self.engine.name, f"tp{self.tp}"}
        if self.hardware.gpu_name:
            words.add(self.hardware.gpu_name)
        if self.model.quantization:
            words.add(self.model.quantization.method)
        if self.engine.kv_cache_dtype:
            words.add(f"kv-{self.engine.kv_cache_dtype}")
        return {w.replace(" ", "_") for w in words if w}


SIGNED_COMPONENTS = ("kv_cache", "cuda_graphs")
"""Components an engine may report below zero: vLLM logs CUDA-graph capture as "took -0.8 GiB" when capturing
released cached blocks, and an "available KV cache memory" below zero when it cannot start (the integrity check
``impossible_values`` fails that profile). Every other component is an amount of memory: never negative."""


def physical_problems(profile: Profile) -> list[tuple[str, str]]:
    """Values that no real measurement can hold, as (JSON path of the native profile, what is wrong): a negative
    amount of memory (outside ``SIGNED_COMPONENTS``), or a per-GPU amount above the GPU's memory. The loader
    rejects such a profile (``llmsizer check`` and both pytest items report it) and the ``impossible_values``
    integrity check flags one built in code."""
    problems: list[tuple[str, str]] = []
    memory = profile.hardware.memory_per_gpu_bytes
    for name, comp in profile.measurements.components.present().items():
        where = f"$.measurements.components.{name}"
        values = [(f"{where}.bytes", comp.bytes)]
        values += [(f"{where}.per_gpu_bytes[{i}]", v) for i, v in enumerate(comp.per_gpu_bytes or [])]
        for path, value in values:
            if value < 0 and name not in SIGNED_COMPONENTS:
                problems.append((path, f"{value} bytes: a memory amount cannot be negative (expected >= 0)"))
            elif memory and value > memory:
                problems.append((path, f"{value} bytes on one GPU exceeds the GPU's memory "
                                       f"hardware.memory_per_gpu_bytes = {memory} (expected <= {memory}; is it a "
                                       "total over GPUs, or in another unit?)"))
    device = profile.measurements.device
    if device is not None and memory:
        for field in ("baseline_bytes", "peak_bytes", "final_bytes"):
            for i, value in enumerate(getattr(device, field) or []):
                if value > memory:
                    problems.append((f"$.measurements.device.{field}[{i}]",
                                     f"{value} bytes exceeds the GPU's memory hardware.memory_per_gpu_bytes = "
                                     f"{memory} (expected <= {memory})"))
    return problems
