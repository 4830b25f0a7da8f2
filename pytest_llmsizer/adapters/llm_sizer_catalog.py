"""LLM Sizer's own catalogs, and finding a profile's model and GPU in them. Pure: no I/O.

Its ``src/data/models.json`` lists 108 models by its own id, a Hugging Face id and ``parameters_billions``; its
``src/data/gpus.json`` lists 42 GPUs with their nominal ``vram_gb`` (``../shared/notes/llm-sizer-origin.md`` 4.1,
4.2). ``llm_sizer_run.read_catalog`` reads them from the user's checkout; nothing of them is copied here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_VENDOR_WORDS = frozenset({"nvidia", "amd", "geforce", "tesla", "instinct", "radeon"})

_QUANT_SUFFIX = re.compile(
    r"[-_.](awq|gptq|int4|int8|fp8|fp8-dynamic|fp8-kv|dynamic|w4a16|w8a8|w8a16|w4a4|nvfp4|mxfp4|bnb-4bit|"
    r"unsloth-bnb-4bit|4bit|8bit|autoround|auto-round|gguf)$",
    re.IGNORECASE,
)
"""One trailing quantization tag of a checkpoint name (``Qwen2.5-32B-Instruct-AWQ``); stripped repeatedly."""


class Decline(Exception):
    """LLM Sizer cannot answer for this profile; the message says why (it becomes the protocol's ``error``)."""


@dataclass(frozen=True)
class SizerModel:
    id: str
    hf_model_id: str | None
    parameters_billions: float
    multimodal: bool


@dataclass(frozen=True)
class SizerGpu:
    id: str
    name: str
    vram_gb: float


@dataclass(frozen=True)
class SizerCatalog:
    """LLM Sizer's model and GPU catalogs, as its data files hold them."""

    models: tuple[SizerModel, ...]
    gpus: tuple[SizerGpu, ...]
    source: str = "src/data"


def _field(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def catalog_from_json(models_doc: Any, gpus_doc: Any, source: str = "src/data") -> SizerCatalog:
    """Build the catalog from the parsed ``models.json`` and ``gpus.json``; a malformed entry raises ``ValueError``
    naming its JSON path."""
    if not isinstance(models_doc, Mapping) or not isinstance(models_doc.get("models"), list):
        raise ValueError(f"{source}/models.json: expected an object with a 'models' array")
    if not isinstance(gpus_doc, Mapping) or not isinstance(gpus_doc.get("gpus"), list):
        raise ValueError(f"{source}/gpus.json: expected an object with a 'gpus' array")
    models = []
    for i, m in enumerate(models_doc["models"]):
        where = f"{source}/models.json: models[{i}]"
        if not isinstance(m, Mapping):
            raise ValueError(f"{where}: expected an object")
        hf = m.get("hf_model_id")
        models.append(SizerModel(
            id=_field(m, "id", str, where), hf_model_id=hf if isinstance(hf, str) and hf else None,
            parameters_billions=float(_field(m, "parameters_billions", (int, float), where)),
            multimodal=m.get("modality") == "multimodal" and bool(m.get("vision_config"))
            and bool(m.get("multimodal_config")),
        ))
    gpus = []
    for i, g in enumerate(gpus_doc["gpus"]):
        where = f"{source}/gpus.json: gpus[{i}]"
        if not isinstance(g, Mapping):
            raise ValueError(f"{where}: expected an object")
        gpus.append(SizerGpu(id=_field(g, "id", str, where), name=_field(g, "name", str, where),
                             vram_gb=float(_field(g, "vram_gb", (int, float), where))))
    return SizerCatalog(tuple(models), tuple(gpus), source)


# ---------------------------------------------------------------------------------------------------------------
# model


def _base(name: str) -> str:
    return name.rsplit("/", 1)[-1].casefold()


def _strip_quant_tags(name: str) -> str:
    while True:
        stripped = _QUANT_SUFFIX.sub("", name)
        if stripped == name:
            return name
        name = stripped


def _unique(found: list[SizerModel], model_id: str, how: str) -> SizerModel | None:
    ids = list(dict.fromkeys(m.id for m in found))
    if len(ids) > 1:
        raise Decline(f"model {model_id!r} matches several LLM Sizer catalog entries {how}: {', '.join(ids)}")
    return found[0] if found else None


def match_model(model_id: str, catalog: SizerCatalog, *, quantized: bool) -> tuple[SizerModel, str]:
    """LLM Sizer's catalog entry for a profile's model id, and how it was found.

    By name only, never by size: its Hugging Face id, then its own id, then the name after the organisation (a
    re-upload such as ``Gensyn/Qwen2.5-0.5B-Instruct``), then, for a quantized checkpoint, the base model's name
    once the quantization tags are stripped (``Qwen2.5-32B-Instruct-AWQ`` -> ``Qwen2.5-32B-Instruct``: what a user
    picks in its UI before choosing the quantization). Ambiguity or no match declines.
    """
    key = model_id.casefold()
    found = [m for m in catalog.models if m.hf_model_id and m.hf_model_id.casefold() == key]
    if (hit := _unique(found, model_id, "by Hugging Face id")) is not None:
        return hit, f"by Hugging Face id {hit.hf_model_id}"
    found = [m for m in catalog.models if m.id.casefold() == key]
    if (hit := _unique(found, model_id, "by id")) is not None:
        return hit, "by id"
    base = _base(model_id)
    found = [m for m in catalog.models if base in {_base(m.id), _base(m.hf_model_id or "")}]
    if (hit := _unique(found, model_id, f"by name {base!r}")) is not None:
        return hit, f"by name {base!r} ({hit.hf_model_id or hit.id})"
    stripped = _strip_quant_tags(base)
    if stripped != base:
        found = [m for m in catalog.models if stripped in {_base(m.id), _base(m.hf_model_id or "")}]
        hit = _unique(found, model_id, f"by base name {stripped!r}")
        if hit is not None:
            if not quantized:
                raise Decline(f"model {model_id!r} looks like a quantized checkpoint of LLM Sizer's {hit.id!r}, "
                              "but the profile does not say its quantization")
            return hit, f"as the base model {stripped!r} ({hit.hf_model_id or hit.id}) of a quantized checkpoint"
    raise Decline(f"model {model_id!r} not in LLM Sizer's catalog ({catalog.source}/models.json, "
                  f"{len(catalog.models)} entries; matched by Hugging Face id, id or name, never by size)")


# ---------------------------------------------------------------------------------------------------------------
# GPU


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", name.casefold()) if t} - _VENDOR_WORDS


def _model_token(tokens: set[str], name: str) -> str | None:
    for t in re.split(r"[^a-z0-9]+", name.casefold()):
        if t in tokens and any(c.isdigit() for c in t):
            return t
    return None


def match_gpu(gpu_name: str | None, memory_per_gpu_bytes: int | None,
              catalog: SizerCatalog) -> tuple[SizerGpu, str]:
    """LLM Sizer's GPU id for a profile's GPU name, and how it was found.

    Its GPU changes no memory figure (only ``totalVRAM`` and the speed estimate), so an unknown GPU is not a
    reason to decline: its ``custom`` entry stands in, and the answer says so.
    """
    gpus = [g for g in catalog.gpus if g.id != "custom"]
    custom = next((g for g in catalog.gpus if g.id == "custom"), None) or SizerGpu("custom", "Custom GPU", 0)
    unknown = "its GPU enters no memory figure, only totalVRAM"
    if not gpu_name:
        return custom, f"not named in the profile: LLM Sizer's 'custom' GPU ({unknown})"
    have = _tokens(gpu_name)
    full = [g for g in gpus if _tokens(g.name) and _tokens(g.name) <= have]
    if full:
        best = max(full, key=lambda g: len(_tokens(g.name)))  # "RTX 3090 Ti" over "RTX 3090" when both fit
        return best, f"{gpu_name!r} -> {best.id} by name"
    family = [g for g in gpus if (t := _model_token(_tokens(g.name), g.name)) is not None and t in have]
    if family:
        sizes = {int(m.group(1)) for t in have if (m := re.fullmatch(r"(\d+)gb", t))}
        if sizes:
            family = [g for g in family if round(g.vram_gb) in sizes] or family
        elif memory_per_gpu_bytes:
            gib = memory_per_gpu_bytes / 2**30  # runtime-visible GiB sit close to the nominal GB figure
            nearest = min(abs(g.vram_gb - gib) for g in family)
            family = [g for g in family if abs(g.vram_gb - gib) == nearest]
        pick = family[0]
        others = f" (also {', '.join(g.id for g in family[1:])}; {unknown})" if len(family) > 1 else ""
        return pick, f"{gpu_name!r} -> {pick.id} by model number{others}"
    return custom, f"{gpu_name!r} not in LLM Sizer's catalog: its 'custom' GPU ({unknown})"
