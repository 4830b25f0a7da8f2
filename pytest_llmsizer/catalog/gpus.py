"""GPU catalog: the memory each GPU's runtime actually sees, looked up by the names tools print.

Why torch-visible memory and not the marketing figure: vLLM sizes everything from the CUDA/HIP total that
``torch.cuda.mem_get_info()`` returns (its ``total_gpu_memory``). It requests
``gpu_memory_utilization x total`` and fills what weights, activations and the runtime leave of that budget
with KV cache. An "80 GB" H100 hands a process 79.18 GiB and a "192 GB" MI300X 191.98 GiB, so a calculator
that starts from the nominal figure mis-sizes the KV pool by several percent before any formula runs. Every
entry therefore stores ``memory_bytes``, the per-device total a process sees, and ``memory_basis``, how it
was obtained.

How ``memory_bytes`` was chosen (data/gpus.json; every number comes from shared/data/gpus.md):

* ``cuda_total_read``: a read CUDA/HIP total (deviceQuery bytes, or torch ``total_memory=NMB``, MB being
  MiB). Where several were read, the one that reproduces the vLLM-logged total is used (the driver reserve,
  and so the total, varies by a few tens of MiB between machines).
* ``runtime_gib_read``: a runtime total in GiB (vLLM ``total_gpu_memory``, PyTorch/HIP OOM "total
  capacity"), where no CUDA total was read or the only one is a documentation example.
* ``hip_total_from_rocm_smi``: AMD only; rocm-smi's VRAM total, which equals the HIP total on AMD (both
  were read for MI300X and MI250X).
* ``opencl_total_read``: OpenCL's device memory total, where nothing closer was read (GH200).
* ``smi_minus_sibling_reserve``: derived, not read: the nvidia-smi total minus the driver reserve read on a
  sibling with the same chip or the same smi total; the entry names the sibling.

Name matching is deliberately strict. The original LLM Sizer matched GPUs by VRAM (a B200 became an MI300X,
every 80 GB CUDA card an H100 SXM) and by substrings; here a name resolves only to the entry it names.
Lookup order: the normalised id/name/alias (case, separators and vendor words ignored), then the same tokens
in any order, then a name that nvidia-smi cut short with ``...``. A trailing memory note such as
``"(96 GB)"`` is accepted only when it agrees with the entry. Names that fit several entries (``"A100"``,
``"V100"``) raise with the candidates; where the catalog resolves a short name to one variant (``"H100"`` ->
SXM), that entry's ``notes`` says why.

``compute_capability`` is the device's instruction-set generation, as each vendor's runtime names it, because
engines branch on it (vLLM runs its FlashInfer autotune warm-up only where ``has_device_capability(90)``; its ROCm
FP8 is fnuz only where the arch name holds ``gfx94``). NVIDIA: ``"major.minor"`` as CUDA reports it
(``torch.cuda.get_device_capability``; H100 9.0, L4 8.9, B200 10.0, RTX 5090 12.0). AMD: the gfx target
(``gcnArchName``; MI300X gfx942). One field with a per-vendor format rather than HIP's major.minor, because HIP
reports gfx942 as 9.4 and gfx1100 as 11.0, numbers on another scale that a ``>= 9.0`` test would wrongly take for
Hopper (vLLM's ROCm platform does exactly that comparison; only the missing FlashInfer keeps it from mattering).
These values do NOT come from shared/data/gpus.md, which gives none for NVIDIA (it names gfx942, gfx950 and gfx1100
for MI300X, MI350X/MI355X and RX 7900 XTX, and those agree): NVIDIA's from its CUDA GPUs compute-capability table
(developer.nvidia.com/cuda-gpus), AMD's from the ROCm GPU hardware-specifications table (rocm.docs.amd.com); each
entry's ``source`` says so.
"""
from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pytest_llmsizer.errors import CatalogError, UnknownGpuError
from pytest_llmsizer.units import GB, GiB, MiB

__all__ = [
    "CATALOG_FORMAT",
    "GpuNameError",
    "GpuSpec",
    "cuda_capability",
    "list_gpu_ids",
    "load_gpu_catalog",
    "parse_gpu_catalog",
    "resolve_gpu",
]

CATALOG_FORMAT = "llmsizer-gpus/1"
_DATA_PACKAGE = "pytest_llmsizer.catalog"
_DATA_FILE = "data/gpus.json"

MemoryBasis = Literal[
    "cuda_total_read",
    "runtime_gib_read",
    "hip_total_from_rocm_smi",
    "opencl_total_read",
    "smi_minus_sibling_reserve",
]

# Words that tools put in front of the same GPU inconsistently ("Tesla T4" / "NVIDIA T4", "GeForce RTX 3090" /
# "NVIDIA GeForce RTX 3090", "AMD Instinct MI300X" / "MI300X"), so they carry no identity.
_VENDOR_WORDS = frozenset({"nvidia", "amd", "geforce", "tesla", "instinct", "radeon"})

# "(96 GB)", "(48G)", "(95 GiB)" at the end of a name, as issue templates and logs append them.
_MEMORY_NOTE = re.compile(r"\(\s*(\d+(?:\.\d+)?)\s*(?:gib|gb|g)\s*\)\s*$", re.IGNORECASE)

# Remarks people append to names in issues: "(repo target)", "(Colab gpuType metadata)". For suggestions only.
_PARENTHESES = re.compile(r"\([^()]*\)")

# Tokens that make the number before them a memory size ("80 gb"), not a model number.
_MEMORY_UNITS = frozenset({"g", "gb", "gib"})

# nvidia-smi cuts long names: "NVIDIA RTX PRO 6000 Blac...".
_TRUNCATION = re.compile(r"(?:\.\.\.|…)\s*$")

# A memory note agrees with an entry when it is within this fraction of one of the entry's memory figures
# (nominal GB, the runtime total in GiB or GB, the smi total in GiB or GB); 4% absorbs GB/GiB mix-ups and
# rounding ("95 GB" for a 96 GB card) but not the next size class.
_NOTE_TOLERANCE = 0.04

# Sanity band for memory_bytes / (nominal GB per device): catches a GiB figure typed as GB or a per-card
# figure stored for a per-GCD device. Real entries range from about 0.98 (T4) to 1.074 (MI300X: its "192 GB"
# is GiB).
_NOMINAL_RATIO = (0.85, 1.10)

_MAX_SUGGESTIONS = 5

# The compute-capability spelling per vendor (see the module docstring): CUDA "major.minor", AMD "gfx" + the target's
# hex digits (gfx90a, gfx942, gfx1100).
_CAPABILITY_FORMAT = {
    "nvidia": (re.compile(r"[1-9][0-9]?\.[0-9]"), "'major.minor' as CUDA reports it, e.g. '9.0' or '12.0'"),
    "amd": (re.compile(r"gfx[0-9]{1,2}[0-9a-f]{2}"), "the gfx target as ROCm names it, e.g. 'gfx942' or 'gfx90a'"),
}


class GpuSpec(BaseModel):
    """One GPU as the runtime sees it: one device (one GCD on multi-die AMD cards), memory in bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", description="lowercase slug, e.g. 'h100-sxm'")
    name: str = Field(min_length=1, description="canonical name as nvidia-smi / amd-smi / torch print it")
    vendor: Literal["nvidia", "amd"]
    platform: Literal["cuda", "rocm"]
    nominal_gb: float = Field(gt=0, description="marketing capacity per package, as marketed")
    memory_bytes: int = Field(gt=0, strict=True, description="CUDA/HIP total one process sees, per device")
    memory_basis: MemoryBasis
    smi_total_mib: int | None = Field(default=None, gt=0, strict=True, description="nvidia-/rocm-smi total")
    bandwidth_gbps: float | None = Field(default=None, gt=0, description="per package, GB/s")
    compute_capability: str = Field(description="NVIDIA: CUDA 'major.minor' (9.0); AMD: the gfx target (gfx942)")
    devices_per_package: int = Field(default=1, ge=1, description="runtime devices per card (MI250X: 2 GCDs)")
    aliases: tuple[str, ...] = ()
    source: str = Field(min_length=1, description="where the numbers come from: gpus.md, and for the compute "
                                                   "capability the vendor's public table")
    notes: str = Field(default="", description="choices and doubts: default aliases, disagreeing readings")

    @property
    def memory_gib(self) -> float:
        """The runtime-visible total in GiB, the unit vLLM and PyTorch print."""
        return self.memory_bytes / GiB

    @model_validator(mode="after")
    def _consistent(self) -> GpuSpec:
        """Reject entries whose numbers contradict each other, so a typo in the data cannot pass silently."""
        expected_platform = "cuda" if self.vendor == "nvidia" else "rocm"
        if self.platform != expected_platform:
            raise ValueError(
                f"vendor {self.vendor!r} runs on platform {expected_platform!r}, not {self.platform!r}"
            )
        # each vendor's own spelling, so that a HIP '9.4' cannot pass for an NVIDIA 9.x part (module docstring)
        pattern, expected = _CAPABILITY_FORMAT[self.vendor]
        if not pattern.fullmatch(self.compute_capability):
            raise ValueError(f"compute_capability {self.compute_capability!r} is not an {self.vendor} compute "
                             f"capability: expected {expected}")
        if self.smi_total_mib is not None and self.memory_bytes > self.smi_total_mib * MiB:
            # The driver reserve only ever takes memory away from what smi shows.
            raise ValueError(
                f"memory_bytes ({self.memory_bytes}) exceeds the smi total ({self.smi_total_mib} MiB)"
            )
        ratio = self.memory_bytes / (self.nominal_gb / self.devices_per_package * GB)
        low, high = _NOMINAL_RATIO
        if not low <= ratio <= high:
            raise ValueError(
                f"memory_bytes is {ratio:.3f} x the nominal {self.nominal_gb} GB per device; "
                f"expected {low}-{high} (GB/GiB mix-up, or per-card vs per-device?)"
            )
        if any(not alias.strip() for alias in self.aliases):
            raise ValueError("aliases must be non-empty strings")
        return self


class _CatalogFile(BaseModel):
    """The whole data file: a format tag, so a future layout change is detected rather than misread."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["llmsizer-gpus/1"]
    gpus: tuple[GpuSpec, ...] = Field(min_length=1)


class GpuNameError(UnknownGpuError):
    """A GPU name that did not resolve for a reason worth saying: it fits several entries, or its memory note
    disagrees with the entry it names. Still an :class:`UnknownGpuError`, so callers need catch only that."""

    def __init__(self, query: str, suggestions: list[str], reason: str):
        super().__init__(query, suggestions)
        self.reason = reason
        hint = f": {', '.join(suggestions)}" if suggestions else ""
        self.args = (f"GPU {query!r} {reason}{hint}; pass --gpu-memory-gib to give the memory directly",)


# --------------------------------------------------------------------------------------------- normalising


def _tokens(text: str) -> tuple[str, ...]:
    """Lowercase letter and digit runs, vendor words dropped: 'NVIDIA A100-SXM4-80GB' -> a,100,sxm,4,80,gb.

    Splitting letters from digits makes 'RTX3090', 'RTX 3090' and 'rtx_3090' the same, and lets word order
    differ ('A100 80GB PCIe' vs 'A100 PCIe 80GB') without any substring matching.
    """
    return tuple(t for t in re.findall(r"[a-z]+|[0-9]+", text.lower()) if t not in _VENDOR_WORDS)


def _key(tokens: tuple[str, ...]) -> str:
    return "".join(tokens)


def _bag(tokens: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(tokens))


@dataclass(frozen=True)
class _Index:
    """Lookup tables built once from the validated catalog, eagerly, so collisions fail at load time."""

    gpus: tuple[GpuSpec, ...]
    by_key: dict[str, GpuSpec]
    by_bag: dict[tuple[str, ...], GpuSpec]
    # (key, token multiset, spec) for every id, name and alias
    names: tuple[tuple[str, Counter[str], GpuSpec], ...]


def _spellings(spec: GpuSpec) -> tuple[str, ...]:
    return (spec.id, spec.name, *spec.aliases)


def _build_index(gpus: tuple[GpuSpec, ...], origin: str) -> _Index:
    """Index every spelling; refuse duplicate ids and any spelling that would point to two GPUs."""
    problems: list[str] = []
    seen_ids: set[str] = set()
    by_key: dict[str, GpuSpec] = {}
    by_bag: dict[tuple[str, ...], GpuSpec] = {}
    names: list[tuple[str, Counter[str], GpuSpec]] = []
    for spec in gpus:
        if spec.id in seen_ids:
            problems.append(f"duplicate id {spec.id!r}")
        seen_ids.add(spec.id)
        for spelling in _spellings(spec):
            tokens = _tokens(_TRUNCATION.sub("", spelling))
            if not tokens:
                problems.append(f"{spec.id}: spelling {spelling!r} has nothing left after normalising")
                continue
            for other in (by_key.setdefault(_key(tokens), spec), by_bag.setdefault(_bag(tokens), spec)):
                if other.id != spec.id:
                    problems.append(f"{spelling!r} of {spec.id!r} also matches {other.id!r}")
            names.append((_key(tokens), Counter(tokens), spec))
    if problems:
        unique = list(dict.fromkeys(problems))
        raise CatalogError(f"{origin}: invalid GPU catalog: " + "; ".join(unique))
    return _Index(gpus=gpus, by_key=by_key, by_bag=by_bag, names=tuple(names))


# --------------------------------------------------------------------------------------------- loading


def _parse(text: str, origin: str) -> _Index:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{origin}: not valid JSON: {exc}") from None
    try:
        catalog = _CatalogFile.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"$.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise CatalogError(f"{origin}: invalid GPU catalog: {details}") from None
    return _build_index(catalog.gpus, origin)


def parse_gpu_catalog(text: str, origin: str = "<string>") -> tuple[GpuSpec, ...]:
    """Validate a catalog document (format ``llmsizer-gpus/1``) and return its GPUs.

    Public so tests and tools can check a candidate data file without installing it; raises ``CatalogError``
    naming ``origin`` and every problem (schema errors, duplicate ids, spellings that point to two GPUs).
    """
    return _parse(text, origin).gpus


@lru_cache(maxsize=1)
def _packaged_index() -> _Index:
    text = resources.files(_DATA_PACKAGE).joinpath(_DATA_FILE).read_text(encoding="utf-8")
    return _parse(text, f"{_DATA_PACKAGE}/{_DATA_FILE}")


def load_gpu_catalog() -> tuple[GpuSpec, ...]:
    """All packaged GPUs in file order, validated once and cached (the data ships with the package)."""
    return _packaged_index().gpus


def list_gpu_ids() -> list[str]:
    """The ids ``resolve_gpu`` always accepts, in catalog order (for --help text and error messages)."""
    return [spec.id for spec in load_gpu_catalog()]


# --------------------------------------------------------------------------------------------- resolving


def _lookup(text: str, index: _Index) -> GpuSpec | None:
    """Exact matches only: the normalised spelling, the same tokens in any order, or a truncated name."""
    truncated = bool(_TRUNCATION.search(text))
    tokens = _tokens(_TRUNCATION.sub("", text))
    if not tokens:
        return None
    spec = index.by_key.get(_key(tokens)) or index.by_bag.get(_bag(tokens))
    if spec is not None or not truncated:
        return spec
    prefix = _key(tokens)
    if len(prefix) < 6:  # too short to say anything: 'RTX...' fits half the catalog
        return None
    hits = {s.id: s for key, _, s in index.names if key.startswith(prefix)}
    return next(iter(hits.values())) if len(hits) == 1 else None


def _note_agrees(spec: GpuSpec, value: float) -> bool:
    """Whether a memory note like '(80 GB)' fits the entry, whichever of GB/GiB/nominal the writer meant."""
    per_device = spec.nominal_gb / spec.devices_per_package
    figures = [spec.nominal_gb, per_device, spec.memory_gib, spec.memory_bytes / GB]
    if spec.smi_total_mib is not None:
        figures += [spec.smi_total_mib * MiB / GiB, spec.smi_total_mib * MiB / GB]
    return any(abs(value - f) <= _NOTE_TOLERANCE * f for f in figures)


def _names_a_model(tokens: tuple[str, ...]) -> bool:
    """Whether the tokens hold a model number ('100' in 'a 100'), not only words or a memory size (80 gb)."""
    return any(
        t.isdigit() and (i + 1 == len(tokens) or tokens[i + 1] not in _MEMORY_UNITS)
        for i, t in enumerate(tokens)
    )


def _candidates(tokens: tuple[str, ...], index: _Index) -> list[str]:
    """Ids of GPUs whose spellings contain all the query's tokens (e.g. every A100 for 'A100').

    Used only to explain an ambiguous name or to suggest, never to pick a GPU. The query must hold a model
    number, so that 'NVIDIA', 'RTX' or '80GB' alone are not reported as ambiguous between half the catalog
    (a memory size is not a GPU name).
    """
    if not _names_a_model(tokens):
        return []
    wanted = Counter(tokens)
    return list(dict.fromkeys(spec.id for _, bag, spec in index.names if wanted <= bag))


def _suggest(text: str, index: _Index, first: list[str]) -> list[str]:
    """Up to five ids: the given ones first, then what the name without remarks in parentheses names or fits
    ('NVIDIA GeForce RTX 3090 (repo target)' suggests rtx-3090 first), then the closest spellings."""
    plain = _PARENTHESES.sub(" ", _TRUNCATION.sub("", text)).strip()
    if plain and plain != text:
        named = _lookup(plain, index)
        first = [*first, *([named.id] if named else []), *_candidates(_tokens(plain), index)]
    key = _key(_tokens(plain or text)) or text.lower()
    keys = [k for k, _, _ in index.names]
    close = difflib.get_close_matches(key, keys, n=len(keys), cutoff=0.5)
    ids = list(dict.fromkeys([*first, *(index.by_key[k].id for k in close)]))
    return ids[:_MAX_SUGGESTIONS]


def resolve_gpu(name: str) -> GpuSpec:
    """The catalog entry that ``name`` names: an id, an nvidia-smi / amd-smi / torch name, or a short name.

    Raises :class:`UnknownGpuError` (with up to five suggestions) when the name is unknown, names several
    GPUs ("A100": 40 or 80 GB?), or carries a memory note that contradicts the GPU it names. It never falls
    back to matching by memory size.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownGpuError(str(name), [])
    outcome = _resolve_cached(name)
    if isinstance(outcome, GpuSpec):
        return outcome
    raise outcome.error(name)


@dataclass(frozen=True)
class _Unresolved:
    """Why a name did not resolve, kept so that the error can be raised afresh on every call (an exception
    instance raised twice would pile up tracebacks)."""

    suggestions: tuple[str, ...]
    reason: str | None  # None: plain UnknownGpuError; else the GpuNameError reason

    def error(self, name: str) -> UnknownGpuError:
        if self.reason is None:
            return UnknownGpuError(name, list(self.suggestions))
        return GpuNameError(name, list(self.suggestions), self.reason)


@lru_cache(maxsize=1024)
def _resolve_cached(name: str) -> GpuSpec | _Unresolved:
    """``resolve_gpu`` as a pure function of the packaged catalog, computed once per name and process: specs are
    frozen, and a failure (whose suggestions cost a difflib pass over every spelling) is kept as its parts."""
    try:
        return _resolve(name)
    except GpuNameError as e:
        return _Unresolved(tuple(e.suggestions), e.reason)
    except UnknownGpuError as e:
        return _Unresolved(tuple(e.suggestions), None)


def _resolve(name: str) -> GpuSpec:
    index = _packaged_index()
    text = name.strip()

    spec = _lookup(text, index)
    if spec is not None:
        return spec

    base = text
    note = _MEMORY_NOTE.search(text)
    if note is not None:
        base = text[: note.start()].strip()
        value = float(note.group(1))
        # The note may be what tells variants apart ("A100 (80 GB)" = "A100 80GB"), so try it as part of the
        # name first, then the name alone; either way the entry must agree with the note.
        named = _lookup(f"{base} {note.group(1)}GB", index) or _lookup(base, index)
        if named is not None:
            if _note_agrees(named, value):
                return named
            raise GpuNameError(
                name,
                _suggest(base, index, [named.id]),
                f"names {named.id} ({named.nominal_gb:g} GB, {named.memory_gib:.2f} GiB visible), "
                f"which does not agree with the memory note {note.group(0)!r}; closest known GPUs",
            )

    tokens = _tokens(_TRUNCATION.sub("", base))
    ambiguous = _candidates(tokens, index)
    if len(ambiguous) > 1:
        raise GpuNameError(
            name,
            ambiguous[:_MAX_SUGGESTIONS],
            "is ambiguous: name the variant (e.g. the memory size or SXM/PCIe); candidates",
        )
    raise UnknownGpuError(name, _suggest(base, index, ambiguous))


def vendor_from_name(gpu_name: str | None) -> Literal["nvidia", "amd", "intel"] | None:
    """GPU vendor from a name as tools print it ("NVIDIA H100", "AMD Instinct MI300X", "Tesla T4"), or None when the
    name does not say. Used where a GPU is not in the catalog (a log's GPU, an unknown card)."""
    if not gpu_name:
        return None
    if re.search(r"NVIDIA|GeForce|Tesla|Quadro", gpu_name, re.IGNORECASE):
        return "nvidia"
    if re.search(r"\bAMD\b|Instinct|Radeon|\bMI\d{3}", gpu_name, re.IGNORECASE):
        return "amd"
    if re.search(r"Intel|Gaudi|\bArc\b", gpu_name, re.IGNORECASE):
        return "intel"
    return None


def cuda_capability(compute_capability: str | None) -> tuple[int, int] | None:
    """(major, minor) of an NVIDIA compute capability ("9.0" -> (9, 0)), the form vLLM compares
    (``has_device_capability``); None for None or an AMD gfx target, which is on no comparable scale."""
    if compute_capability is None or not _CAPABILITY_FORMAT["nvidia"][0].fullmatch(compute_capability):
        return None
    major, minor = compute_capability.split(".")
    return int(major), int(minor)
