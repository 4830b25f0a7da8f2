"""The calculator's fitted coefficients as data: the built-in set (``calculator/data/coefficients.json``) and user
calibrations (``llmsizer calibrate -o calibration.yaml``), in one format.

Why data and not code: a fitted number must say where it came from (the profiles, the date, its cross-validated
error) and must be reproducible by the code a user runs, so ``llmsizer calibrate`` and ``benchmarks/fit.py`` write
this format and the calculator reads it. ``coefficients.py`` keeps its names (``NON_TORCH_GIB`` and friends) for the
built-in set; an ``EstimateRequest`` may carry a :class:`CoefficientSet` (``calibration=``) to use another one.

An entry id is ``family/key/...``:

* ``sampler_bytes_per_seq_vocab/<bucket>`` (c_v, bytes per dummy sequence x vocab entry),
* ``non_torch_gib/<bucket>/<platform>/<gpus per replica>``,
* ``cuda_graph_pool_gib/<bucket>/<platform>/<term>`` (the CUDA-graph pool line at the reference capture count: term
  ``base``, ``per_layer`` or an attention backend class, ``mla``, ``mla_sparse``, ``mamba``, ``linear``;
  ``calculator/cuda_graphs.py``),
* ``cuda_graph_release/<bucket>/<platform>`` (rho: the allocator cache the first capture hands back, per byte of
  the pre-capture warm-up forward's dense part, beside the MoE kernel's per-call buffers and DeepGEMM's warm-up
  reserve: ``cuda_graphs.released_bytes``; dimensionless, 0 where absent),
* ``rocm_load/<term>`` and ``rocm_load_growth_gib/<gpus>`` (the ROCm "Model loading took" reserves and load growth;
  ``calculator/platform.py``),
* ``cuda_context_gib/<platform>`` (plain transformers engine: CUDA context and allocator overhead).

A calibration file may hold any subset; the entries it lacks come from the built-in set. Loading the built-in set
reads one small JSON file once per process.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_llmsizer.errors import ConfigError

FORMAT = "llmsizer-coefficients"
FORMAT_VERSION = 1
BUILTIN_NAME = "builtin"

FAMILIES: dict[str, tuple[str, ...]] = {
    "sampler_bytes_per_seq_vocab": ("bucket",),
    "non_torch_gib": ("bucket", "platform", "gpus"),
    "cuda_graph_pool_gib": ("bucket", "platform", "term"),
    "cuda_graph_release": ("bucket", "platform"),
    "rocm_load": ("term",),
    "rocm_load_growth_gib": ("gpus",),
    "cuda_context_gib": ("platform",),
}
"""Coefficient families and the keys that index them (the parts of an entry id after the family name)."""

GRAPH_POOL_TERMS = ("base", "per_layer", "mla", "mla_sparse", "mamba", "linear")
"""The terms of a CUDA-graph pool line: a base, a per-layer slope and one offset per attention backend class
(``cuda_graphs.attention_backend``)."""

RETIRED_TERMS = {"hybrid": "split into 'mamba' (Mamba-2 layers) and 'linear' (Gated DeltaNet) on 2026-12-04"}
"""Pool-line terms of older calibration files, refused with the reason rather than silently unused."""

BOUNDS: dict[str, tuple[float, float]] = {
    "sampler_bytes_per_seq_vocab": (0.0, 200.0),
    "non_torch_gib": (0.0, 16.0),
    "cuda_graph_pool_gib": (0.0, 32.0),
    "cuda_graph_release": (0.0, 8.0),
    "rocm_load": (0.0, 2.0),
    "rocm_load_growth_gib": (0.0, 8.0),
    "cuda_context_gib": (0.0, 4.0),
}
"""Physical bounds of each family. No overhead is negative (a negative "Graph capturing took" is cached blocks being
released, not graphs returning memory: the pool is >= 0 and the release is its own term, rho >= 0; a reserve is a
fraction of bytes that exist); the upper bounds are far above anything measured (memory-physics.md 2.3, 2.5, 3.4:
c_v 38.7 B, non-torch up to 5.3 GiB at TP 8 on MI300X, graph pools up to 8.9 GiB, context <= 1 GiB; architectures.md
7: ROCm reserves below one copy of the bytes processed; rho: the H200 probe benchmarks/gpu_graph_release.py released
1.6 x the per-layer forward bytes, the allocator can hold a few such copies)."""

DIGITS: dict[str, int] = {
    "sampler_bytes_per_seq_vocab": 1,
    "non_torch_gib": 2,
    "cuda_graph_pool_gib": 4,
    "cuda_graph_release": 3,
    "rocm_load": 3,
    "rocm_load_growth_gib": 2,
    "cuda_context_gib": 3,
}
"""Decimals a fitted value is written with: finer than its uncertainty, coarse enough that a re-fit on the same
profiles does not churn the file (10 MB of non-torch memory, 0.1 B of c_v are far below what the data resolves)."""

UNITS = {
    "sampler_bytes_per_seq_vocab": "B per (dummy sequence x vocab entry)",
    "non_torch_gib": "GiB per GPU",
    "cuda_graph_pool_gib": "GiB per GPU at the reference capture count (per layer for per_layer)",
    "cuda_graph_release": ("dimensionless: cached bytes the first capture releases per byte of the warm-up "
                           "forward's dense part"),
    "rocm_load": "fraction of the bytes processed after loading",
    "rocm_load_growth_gib": "GiB per GPU",
    "cuda_context_gib": "GiB per GPU",
}


@dataclass(frozen=True)
class Entry:
    """One coefficient: its value and where it came from."""

    id: str
    value: float
    provenance: dict[str, Any] = field(default_factory=dict)
    """Free-form but conventional keys: status (fitted / prior / unchanged), profiles, models, fitted (date),
    uncertainty (95% half-width), cv (held-out error before/after), method, source."""

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.id.split("/")[1:])


@dataclass(frozen=True)
class CoefficientSet:
    """A named set of coefficient entries plus the scope it was fitted on."""

    name: str
    entries: dict[str, Entry]
    source: str | None = None
    """The file it was read from (None for a set built in memory)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """created, produced_by, scope {engine_versions, platforms}, profiles, cross_validation, base."""

    def value(self, entry_id: str) -> float | None:
        entry = self.entries.get(entry_id)
        return None if entry is None else entry.value

    def table(self, family: str) -> dict[Any, Any]:
        """The family as the nested dict ``coefficients.py`` has always exposed (GPU counts as int keys)."""
        out: dict[Any, Any] = {}
        for entry in self.entries.values():
            if entry.family != family:
                continue
            keys: list[Any] = [int(key) if name == "gpus" else key
                               for name, key in zip(FAMILIES[family], entry.keys, strict=True)]
            node = out
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = entry.value
        return out

    @property
    def scope_versions(self) -> list[str]:
        return list((self.meta.get("scope") or {}).get("engine_versions") or [])

    @property
    def scope_platforms(self) -> list[str]:
        return list((self.meta.get("scope") or {}).get("platforms") or [])

    def describe(self) -> str:
        """One phrase naming the set: name, file, date, profile count."""
        parts = [f"coefficients {self.name!r}"]
        if self.source:
            parts.append(f"from {self.source}")
        created = self.meta.get("created")
        profiles = (self.meta.get("profiles") or {}).get("count")
        if created or profiles:
            parts.append("(" + ", ".join(p for p in (f"fitted {created}" if created else "",
                                                       f"{profiles} profiles" if profiles else "") if p) + ")")
        return " ".join(parts)

    def mismatch(self, engine_version: tuple[int, int] | None, platform: str) -> str | None:
        """Why this set may not fit a deployment (an engine version or platform outside its scope), or None."""
        problems = []
        versions = self.scope_versions
        if versions and engine_version is not None:
            wanted = f"{engine_version[0]}.{engine_version[1]}"
            if wanted not in versions:
                problems.append(f"vLLM {wanted} (fitted on {', '.join(versions)})")
        platforms = self.scope_platforms
        if platforms and platform not in platforms:
            problems.append(f"platform {platform} (fitted on {', '.join(platforms)})")
        if not problems:
            return None
        return (f"{self.describe()} was fitted on other deployments than this one: {'; '.join(problems)}; its "
                "coefficients are extrapolated here (or, where it had no information, the base set's)")

    def merged_over(self, base: CoefficientSet) -> CoefficientSet:
        """This set with every entry it lacks taken from ``base``."""
        return CoefficientSet(self.name, {**base.entries, **self.entries}, self.source, self.meta)

    def to_document(self) -> dict[str, Any]:
        """The file form (JSON or YAML)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            **self.meta,
            "coefficients": {e.id: {"value": e.value, **e.provenance} for e in
                             sorted(self.entries.values(), key=lambda e: _sort_key(e.id))},
        }


def _sort_key(entry_id: str) -> tuple[Any, ...]:
    family, *keys = entry_id.split("/")
    return (list(FAMILIES).index(family) if family in FAMILIES else 99, family,
            *[(0, int(k), "") if k.isdigit() else (1, 0, k) for k in keys])


def check_entry_id(entry_id: str, where: str) -> None:
    family, *keys = entry_id.split("/")
    if family not in FAMILIES:
        raise ConfigError(f"{where}: unknown coefficient family {family!r}; expected one of {', '.join(FAMILIES)}")
    if len(keys) != len(FAMILIES[family]) or not all(keys):
        raise ConfigError(f"{where}: expected {family}/{'/'.join('<' + k + '>' for k in FAMILIES[family])}")
    for name, key in zip(FAMILIES[family], keys, strict=True):
        if name == "gpus" and not key.isdigit():
            raise ConfigError(f"{where}: the GPU count {key!r} is not a positive integer")
    if family == "cuda_graph_pool_gib" and keys[-1] not in GRAPH_POOL_TERMS:
        why = f" (the {keys[-1]!r} term was {RETIRED_TERMS[keys[-1]]}; re-run `llmsizer calibrate`)" \
            if keys[-1] in RETIRED_TERMS else ""
        raise ConfigError(f"{where}: unknown CUDA-graph pool term {keys[-1]!r}; expected one of "
                          f"{', '.join(GRAPH_POOL_TERMS)}{why}")


def from_document(doc: Any, source: str | None) -> CoefficientSet:
    """Validate a parsed file; every problem is a ConfigError naming the file and the JSON path."""
    where = source or "coefficients"
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping with format {FORMAT!r}, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise ConfigError(f"{where}: $.format must be {FORMAT!r} (got {doc.get('format')!r}); "
                          "write one with `llmsizer calibrate`")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{where}: $.format_version must be {FORMAT_VERSION} (got {doc.get('format_version')!r})")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: $.name must be a non-empty string")
    raw = doc.get("coefficients")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: $.coefficients must be a mapping of entry id -> {{value: ...}}")
    entries = {}
    for entry_id, body in raw.items():
        path = f"{where}: $.coefficients[{entry_id!r}]"
        check_entry_id(str(entry_id), path)
        if not isinstance(body, dict) or "value" not in body:
            raise ConfigError(f"{path}: expected a mapping with 'value'")
        value = body["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{path}.value: expected a finite number, got {value!r}")
        low, high = BOUNDS[str(entry_id).split("/")[0]]
        if not low <= value <= high:
            raise ConfigError(f"{path}.value: {value} is outside the physical bounds [{low:g}, {high:g}]")
        entries[str(entry_id)] = Entry(str(entry_id), float(value), {k: v for k, v in body.items() if k != "value"})
    meta = {k: v for k, v in doc.items() if k not in ("format", "format_version", "name", "coefficients")}
    return CoefficientSet(name, entries, source, meta)


@cache
def builtin_set() -> CoefficientSet:
    """The built-in coefficients (read once per process)."""
    text = resources.files("pytest_llmsizer").joinpath("calculator/data/coefficients.json").read_text("utf-8")
    return from_document(json.loads(text), "pytest_llmsizer/calculator/data/coefficients.json")


def load_calibration(path: str | Path) -> CoefficientSet:
    """A calibration file (YAML or JSON), merged over the built-in set. Raises ConfigError naming the file."""
    p = Path(path)
    from pytest_llmsizer.safe_io import UnsafePathError, max_config_bytes, read_regular

    try:
        text = read_regular(p, limit=max_config_bytes(), what="calibration files",
                            setting="LLMSIZER_MAX_CONFIG_MIB").decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such calibration file (write one with `llmsizer calibrate`)") from None
    except UnsafePathError as e:
        raise ConfigError(str(e)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read the calibration file: {e}") from None
    import yaml

    from pytest_llmsizer.safe_yaml import safe_load

    try:
        doc = safe_load(text)  # nesting and alias expansion bounded
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML/JSON: {str(e).splitlines()[0]}") from None
    return from_document(doc, str(p)).merged_over(builtin_set())
