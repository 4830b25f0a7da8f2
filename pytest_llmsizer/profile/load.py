"""Load a profile file of any supported format into the native ``Profile``.

Format detection is by keys, never by file name (the original tools guessed from names and paths and got it wrong).
Every reader reports all the problems it finds, each with a JSON path, so a user fixes a file in one pass.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_llmsizer.errors import Problem, ProfileError
from pytest_llmsizer.profile import legacy
from pytest_llmsizer.profile.errors_fmt import json_path, problems_from_validation, quote
from pytest_llmsizer.profile.model import FORMAT_NAME, Profile
from pytest_llmsizer.safe_io import UnsafePathError, max_profile_bytes, read_regular

Reader = Callable[[dict[str, Any], str], Profile]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


_MAX_INT_DIGITS = len(str(int(sys.float_info.max)))  # 309


def _parse_int(text: str) -> int:
    """Integers must fit the range of a double (RFC 8259 section 6: larger numbers are not interoperable).

    Without this a 400-digit count loads, then overflows the calculator's float arithmetic; and an integer beyond
    Python's 4300-digit conversion limit would fail with advice to call ``sys.set_int_max_str_digits``.
    """
    digits = len(text) - text.startswith("-")
    if digits > _MAX_INT_DIGITS or abs(value := int(text)) > sys.float_info.max:
        raise ValueError(f"a number with {digits} digits is out of range (JSON numbers must fit a double, "
                         "about 1.8e308)")
    return value


def _parse_float(text: str) -> float:
    """``1e400`` parses to ``inf`` (not through ``parse_constant``): reject it like ``Infinity``."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range (JSON numbers must fit a double, about 1.8e308)")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {quote(key[:60])} in one object (which value is meant is ambiguous)")
        out[key] = value
    return out


def parse_json_text(text: str, file: str) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys. Errors name the line and column."""
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float,
                          object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise ProfileError(file, [Problem("$", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}")]) from None
    except ValueError as e:  # from the hooks above
        raise ProfileError(file, [Problem("$", f"invalid JSON: {e}")]) from None
    except RecursionError:
        raise ProfileError(file, [Problem("$", "invalid JSON: nested too deeply")]) from None
    if _SURROGATE_ESCAPE.search(text):
        _reject_lone_surrogates(data, file)
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""``\\ud800``-style escapes: JSON allows them, but a lone one is no Unicode text (it cannot be printed or encoded)."""


def _reject_lone_surrogates(data: Any, file: str) -> None:
    """A lone UTF-16 surrogate (``"\\ud800"`` without its pair) decodes to a Python string that cannot be encoded:
    printing it in a failure message, or sending it to an xdist controller, would crash the run. Walks iteratively
    (a recursive walk could exhaust the stack on nesting the parser accepted)."""
    stack: list[tuple[str, Any]] = [("$", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not _encodable(key):
                    raise ProfileError(file, [Problem(path, f"key {quote(key[:40])} holds a lone UTF-16 surrogate: "
                                                            "not valid Unicode text")])
                stack.append((json_path([key], path), item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str) and not _encodable(value):
            raise ProfileError(file, [Problem(path, "string holds a lone UTF-16 surrogate (such as \\ud800 "
                                                    "without its pair): not valid Unicode text")])


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_json_file(path: Path) -> Any:
    """Read a file as UTF-8 JSON (a BOM is tolerated), with size and encoding checks."""
    file = str(path)
    try:
        raw = read_regular(path, limit=max_profile_bytes(), what="profiles", setting="LLMSIZER_MAX_PROFILE_MIB")
    except UnsafePathError as e:
        raise ProfileError(file, [Problem("$", e.reason)]) from None
    except OSError as e:
        raise ProfileError(file, [Problem("$", f"cannot read file: {e.strerror or e}")]) from None
    if not raw.strip():
        raise ProfileError(file, [Problem("$", "file is empty; expected a JSON object")])
    for bom, encoding in _OTHER_BOMS:
        if raw.startswith(bom):
            raise ProfileError(file, [Problem("$", f"{encoding} text (byte order mark {bom.hex(' ').upper()}); "
                                                   "profiles must be UTF-8: save the file as UTF-8")])
    if (nul := raw.find(b"\x00")) >= 0:
        # UTF-8 allows NUL bytes, but JSON text never holds one raw: this is UTF-16/32 without a BOM, or binary.
        raise ProfileError(file, [Problem("$", f"NUL byte at byte {nul}: UTF-16/UTF-32 or binary data, not UTF-8 "
                                               "JSON text")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ProfileError(file, [Problem("$", f"not UTF-8 text (byte {e.start}): expected a JSON file")]) from None
    if not text.strip():  # a byte order mark and nothing else
        raise ProfileError(file, [Problem("$", "file is empty; expected a JSON object")])
    return parse_json_text(text, file)


_OTHER_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
"""Byte order marks of encodings other than UTF-8 (whose BOM is tolerated), for a message that says what to do."""


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
        raise ProfileError(file, [Problem("$", f"expected a JSON object, got {_json_type(data)}")])
    fmt = detect_format(data)
    reader = _readers().get(fmt)
    if reader is None:
        raise ProfileError(
            file,
            [Problem("$", "unknown profile format: expected a native llmsizer profile "
                          f"(\"format\": \"{FORMAT_NAME}\") or an original LLM Sizer profiler file "
                          "(legacy torch, legacy API, bench v1, v2.0, v3.0)")],
        )
    profile = reader(data, file)
    impossible = profile.physical_problems()
    if impossible:
        converted = "" if fmt == "native" else f" (in the native profile converted from the {fmt} format)"
        raise ProfileError(file, [Problem(path, f"physically impossible: {message}{converted}")
                                  for path, message in impossible])
    return profile


def load_profile(path: str | Path) -> Profile:
    """Read and validate one profile file. Raises ``ProfileError`` listing every problem found."""
    p = Path(path)
    return profile_from_data(read_json_file(p), str(p))


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages (``list`` is an array to whoever wrote the file)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names = {list: "an array", str: "a string", type(None): "null", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
