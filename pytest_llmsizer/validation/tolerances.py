"""``tolerances.yaml``: per-component tolerances, overrides by selector, and the known-failures list.

A component passes when |profiled - calculated| <= max(abs, rel x |profiled|). ``abs`` is written in GiB
(``abs_gib``) because that is how engines print memory; it is held in bytes inside. Overrides apply in file order
(later ones win) to profiles whose model, engine, GPU, TP size and quantization match. Known failures name a profile
(path glob) or a selector, always with a reason, and turn the profile's accuracy item into an xfail.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_llmsizer.errors import ConfigError
from pytest_llmsizer.profile.errors_fmt import json_path
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.safe_io import UnsafePathError, max_config_bytes, read_regular
from pytest_llmsizer.safe_yaml import BoundedSafeLoader
from pytest_llmsizer.units import GiB

QUANTITIES = (
    "weights", "kv_cache", "activations", "non_torch", "cuda_graphs", "framework_overhead", "multi_gpu_overhead",
    "total", "kv_cache_tokens", "max_concurrency",
)
"""Everything a profile can be compared on: the memory components, then KV capacity in tokens and concurrency."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tolerance(_Strict):
    rel: float = Field(default=0.0, ge=0, le=10, description="relative to |profiled| (0.05 = 5%)")
    abs_gib: float = Field(default=0.0, ge=0, le=1024, description="absolute, GiB (2^30 bytes)")
    abs: float = Field(default=0.0, ge=0, description="absolute, in the quantity's own unit (tokens, x)")

    def allowed(self, quantity: str, profiled: float) -> float:
        """The largest |difference| that passes, in the quantity's unit (bytes for memory)."""
        absolute = self.abs_gib * GiB if quantity not in ("kv_cache_tokens", "max_concurrency") else self.abs
        return max(absolute, self.rel * abs(profiled))


class Selector(_Strict):
    """Matches profiles. Strings are case-insensitive globs; every given field must match."""

    model: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    gpu: str | None = None
    tp: int | None = Field(default=None, ge=1)
    quantization: str | None = None
    profile: str | None = Field(default=None, description="glob on the profile path (relative, / separators)")

    def matches(self, profile: Profile, path: str) -> bool:
        def glob(pattern: str | None, value: str | None) -> bool:
            return pattern is None or (value is not None and fnmatch.fnmatch(value.lower(), pattern.lower()))

        quant = profile.model.quantization.method if profile.model.quantization else "none"
        return (
            glob(self.model, profile.model.id)
            and glob(self.engine, profile.engine.name)
            and glob(self.engine_version, profile.engine.version)
            and glob(self.gpu, profile.hardware.gpu_name)
            and (self.tp is None or self.tp == profile.engine.tensor_parallel_size)
            and glob(self.quantization, quant)
            and glob(self.profile, path.replace("\\", "/"))
        )


class Override(_Strict):
    match: Selector
    tolerances: dict[str, Tolerance]
    reason: str | None = None


class KnownFailure(_Strict):
    match: Selector
    reason: str = Field(min_length=3, description="why this profile cannot pass today")
    strict: bool = Field(default=True, description="an unexpected pass fails the run, so the list stays honest")


Severity = Literal["fail", "warn", "off"]


class CheckConfig(_Strict):
    """One integrity check: its severity and threshold (the meaning of ``threshold`` is the check's own)."""

    severity: Severity = "fail"
    threshold: float = Field(default=0.0, ge=0)


INTEGRITY_DEFAULTS: dict[str, CheckConfig] = {
    # peak must exceed baseline by more than this share of the baseline (the guide's readiness rule: > 40%)
    "peak_vs_baseline": CheckConfig(severity="fail", threshold=0.40),
    # (max - min) / mean of per-GPU values across tensor-parallel ranks
    "tp_imbalance": CheckConfig(severity="warn", threshold=0.10),
    # |sum of components - total| / total
    "components_sum": CheckConfig(severity="warn", threshold=0.20),
    # |weights + activations + non-torch + KV - utilization x memory| / (utilization x memory), vLLM profiles
    "vllm_budget_identity": CheckConfig(severity="fail", threshold=0.02),
    # weights above the peak, a negative KV pool
    "impossible_values": CheckConfig(severity="fail", threshold=0.0),
    # |weights / (parameters / ranks x bytes per parameter) - 1|
    "weights_vs_parameters": CheckConfig(severity="warn", threshold=0.25),
    # memory in use before the run, GiB per GPU
    "contaminated_baseline": CheckConfig(severity="warn", threshold=2.0),
    # lowest confidence accepted: 2 = high, 1 = medium, 0 = low (the guide asks for "high" everywhere)
    "confidence": CheckConfig(severity="warn", threshold=2),
}
"""Integrity checks and their defaults. Thresholds are fractions except contaminated_baseline (GiB) and confidence
(a level)."""


class GateConfig(_Strict):
    """Aggregate accuracy targets (the original validation guide's success metrics)."""

    enabled: bool = True
    mean_total_error_pct_max: float = Field(default=5.0, ge=0)
    good_or_better_pct_min: float = Field(default=80.0, ge=0, le=100)
    poor_pct_max: float = Field(default=5.0, ge=0, le=100)
    weights_error_pct_max: float = Field(default=3.0, ge=0)
    kv_cache_error_pct_max: float = Field(default=5.0, ge=0)
    min_profiles: int = Field(default=1, ge=0, description="fewer profiles in the gate than this fails it")


class Tolerances(_Strict):
    version: int = 1
    defaults: dict[str, Tolerance]
    gate_derived: bool = Field(
        default=False, description="derived (formula) components fail items too; by default they are only shown"
    )
    overrides: list[Override] = Field(default_factory=list)
    known_failures: list[KnownFailure] = Field(default_factory=list)
    integrity: dict[str, CheckConfig] = Field(default_factory=lambda: dict(INTEGRITY_DEFAULTS))
    gate: GateConfig = Field(default_factory=GateConfig)

    def for_profile(self, profile: Profile, path: str) -> dict[str, Tolerance]:
        result = dict(self.defaults)
        for override in self.overrides:
            if override.match.matches(profile, path):
                result.update(override.tolerances)
        return result

    def known_failure(self, profile: Profile | None, path: str) -> KnownFailure | None:
        for entry in self.known_failures:
            sel = entry.match
            if profile is None:
                # an unreadable profile can only be matched by path
                only_path = sel.model_dump(exclude_none=True).keys() == {"profile"}
                if only_path and sel.profile and fnmatch.fnmatch(path.replace("\\", "/").lower(),
                                                                 sel.profile.lower()):
                    return entry
            elif sel.matches(profile, path):
                return entry
        return None


DEFAULT_TOLERANCES = Tolerances(
    defaults={
        "total": Tolerance(rel=0.05),
        "weights": Tolerance(rel=0.03),
        "kv_cache": Tolerance(rel=0.05),
        "activations": Tolerance(rel=0.25, abs_gib=0.5),
        "non_torch": Tolerance(rel=0.5, abs_gib=0.5),
        "cuda_graphs": Tolerance(rel=1.0, abs_gib=1.0),
        "framework_overhead": Tolerance(rel=0.5, abs_gib=0.5),
        "multi_gpu_overhead": Tolerance(rel=0.5, abs_gib=0.5),
        "kv_cache_tokens": Tolerance(rel=0.05),
        "max_concurrency": Tolerance(rel=0.05),
    }
)


class _LineLoader(BoundedSafeLoader):
    """Safe loader (no object-constructing tags; nesting and alias expansion bounded, see ``safe_yaml``) that
    remembers the line of every mapping key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    mapping["__lines__"] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != "__lines__"}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def _line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    line = None
    node = data
    for part in loc:
        if isinstance(node, dict):
            line = node.get("__lines__", {}).get(part, line)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    return line


def parse_tolerances(text: str, source: str) -> Tolerances:
    """Parse and validate tolerances YAML; errors name the file, line and key."""
    try:
        raw = yaml.load(text, Loader=_LineLoader)  # _LineLoader is a SafeLoader subclass: no object tags
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    clean = _strip_lines(raw)
    merged = {"defaults": {}} | clean
    merged["defaults"] = {k: v.model_dump() for k, v in DEFAULT_TOLERANCES.defaults.items()} | (
        merged.get("defaults") or {}
    )
    user_checks = merged.get("integrity") or {}
    if isinstance(user_checks, dict):
        unknown_checks = sorted(set(user_checks) - set(INTEGRITY_DEFAULTS))
        if unknown_checks:
            line = _line_of(raw, ("integrity", unknown_checks[0]))
            raise ConfigError(f"{source}{f':{line}' if line else ''}: unknown integrity check(s) {unknown_checks}; "
                              f"expected {sorted(INTEGRITY_DEFAULTS)}")
        # a check configured in the file keeps the defaults of the fields it does not set
        merged["integrity"] = {
            name: default.model_dump() | (given if isinstance(given := user_checks.get(name), dict) else {})
            for name, default in INTEGRITY_DEFAULTS.items()
        } | {k: v for k, v in user_checks.items() if not isinstance(v, dict)}
    try:
        tol = Tolerances.model_validate(merged)
    except ValidationError as e:
        msgs = []
        for err in e.errors(include_url=False, include_input=False):
            line = _line_of(raw, tuple(err["loc"]))
            where = f":{line}" if line else ""
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            msgs.append(f"{source}{where}: {json_path(err['loc'])}: {msg}")
        raise ConfigError("; ".join(msgs)) from None
    unknown = [k for k in tol.defaults if k not in QUANTITIES]
    for o in tol.overrides:
        unknown += [k for k in o.tolerances if k not in QUANTITIES]
    if unknown:
        raise ConfigError(f"{source}: unknown component(s) {sorted(set(unknown))}; expected {list(QUANTITIES)}")
    return tol


def load_tolerances(path: str | Path | None) -> Tolerances:
    """Read a tolerances file; ``None`` gives the built-in defaults."""
    if path is None:
        return DEFAULT_TOLERANCES
    p = Path(path)
    try:
        text = read_regular(p, limit=max_config_bytes(), what="tolerances files",
                            setting="LLMSIZER_MAX_CONFIG_MIB").decode("utf-8")
    except UnsafePathError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read tolerances file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: tolerances file is not UTF-8 text") from None
    return parse_tolerances(text, str(p))
