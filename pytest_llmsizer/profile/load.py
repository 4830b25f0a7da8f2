"""Load a profile file of any supported format into the native ``Profile``.

Format detection is by keys, never by file name (the original tools guessed from names and paths and got it wrong).
Every reader reports all the problems it finds, each with a JSON path, so a user fixes a file in one pass.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_llmsizer.errors import Problem, ProfileError
from pytest_llmsizer.profile import legacy
from pytest_llmsizer.profile.errors_fmt import problems_from_validation
from pytest_llmsizer.profile.model import FORMAT_NAME, Profile

MAX_PROFILE_BYTES = 64 * 2**20
"""Profiles are small; anything bigger is not a profile (and would make every xdist worker parse it)."""

Reader = Callable[[dict[str, Any], str], Profile]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r} in one object (which value is meant is ambiguous)")
        out[key] = value
    return out


def parse_json_text(text: str, file: str) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys. Errors name the line and column."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise ProfileError(file, [Problem("$", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}")]) from None
    except ValueError as e:
        raise ProfileError(file, [Problem("$", f"invalid JSON: {e}")]) from None
    except RecursionError:
        raise ProfileError(file, [Problem("$", "invalid JSON: nested too deeply")]) from None


def read_json_file(path: Path) -> Any:
    """Read a file as UTF-8 JSON (a BOM is tolerated), with size and encoding checks."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_PROFILE_BYTES:
            raise ProfileError(
                file, [Problem("$", f"file is {size / 2**20:.1f} MiB; profiles are expected to be under "
                                    f"{MAX_PROFILE_BYTES / 2**20:.0f} MiB")]
            )
        raw = path.read_bytes()
    except OSError as e:
        raise ProfileError(file, [Problem("$", f"cannot read file: {e.strerror or e}")]) from None
    if not raw.strip():
        raise ProfileError(file, [Problem("$", "file is empty; expected a JSON object")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ProfileError(file, [Problem("$", f"not UTF-8 text (byte {e.start}): expected a JSON file")]) from None
    return parse_json_text(text, file)


def detect_format(data: dict[str, Any]) -> str:
    """Name of the format of a parsed JSON object, decided by its keys (see llm-sizer-origin.md section 1.7)."""
    if data.get("format") == FORMAT_NAME or "format_version" in data:
        return "native"
    return legacy.detect_legacy_format(data)


READERS: dict[str, Reader] = {}


def _readers() -> dict[str, Reader]:
    if not READERS:
        READERS["native"] = read_native
        READERS.update(legacy.LEGACY_READERS)
    return READERS


def read_native(data: dict[str, Any], file: str) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as e:
        raise ProfileError(file, problems_from_validation(e)) from None


def profile_from_data(data: Any, file: str) -> Profile:
    """Validate already-parsed JSON of any supported format."""
    if not isinstance(data, dict):
        raise ProfileError(file, [Problem("$", f"expected a JSON object, got {type(data).__name__}")])
    fmt = detect_format(data)
    reader = _readers().get(fmt)
    if reader is None:
        raise ProfileError(
            file,
            [Problem("$", "unknown profile format: expected a native llmsizer profile "
                          f"(\"format\": \"{FORMAT_NAME}\") or an original LLM Sizer profiler file "
                          "(legacy torch, legacy API, bench v1, v2.0, v3.0)")],
        )
    return reader(data, file)


def load_profile(path: str | Path) -> Profile:
    """Read and validate one profile file. Raises ``ProfileError`` listing every problem found."""
    p = Path(path)
    return profile_from_data(read_json_file(p), str(p))


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
