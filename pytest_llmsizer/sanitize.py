"""Making user-supplied text safe to show: in a terminal, in a report, in a spreadsheet.

File names, model ids, engine versions and calculator messages come from files and programs we do not control.
Echoed raw, an ANSI escape sequence recolours or clears the user's terminal, a 20 MB value floods it, and a CSV cell
starting with ``=`` runs as a formula when the record is opened in a spreadsheet. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from typing import Any

SHOWN_CHARS = 300
"""Default length at which an echoed user string is shortened (with an ellipsis)."""

ELLIPSIS = "…"

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 control characters (tab and newline excepted: see ``clean``), line/paragraph separators and bidi
overrides (which reorder what a terminal shows)."""
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
"""ANSI escape sequences (CSI, OSC, two-character): removed whole, so no ``[31m`` residue is left."""


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character or escape (a cheap test before ``clean``)."""
    return _CONTROL.search(text) is not None


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis and the full length when it was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}{ELLIPSIS} ({len(text):,} characters)"


def clean(text: Any, limit: int | None = SHOWN_CHARS, *, keep_newlines: bool = False) -> str:
    """``text`` without escape sequences and control characters (each shown as ``\\xNN``), shortened to ``limit``.

    Newlines and tabs are kept only with ``keep_newlines`` (multi-line messages); otherwise they become spaces.
    """
    text = safe_str(text)
    cut = limit is not None and len(text) > 4 * limit + 64
    if cut and limit is not None:
        text = text[: 4 * limit + 64]  # bound the work on a huge value; it is shortened below anyway
    text = _ANSI.sub("", text)
    if not keep_newlines:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    else:
        text = text.replace("\r\n", "\n")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else
                        f"\\u{ord(m.group()):04x}", text)
    if limit is not None and (cut or len(text) > limit):
        return text[:limit] + ELLIPSIS
    return text


class SafeTextStream:
    """A text stream that escapes control characters and drops terminal escape sequences on the way through
    (newlines and tabs pass): the ``llmsizer`` command writes through it, so nothing a file or a calculator says
    can drive the user's terminal."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(clean(text, None, keep_newlines=True))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def clean_block(text: Any, *, line_limit: int = 2000, max_lines: int = 400) -> str:
    """A multi-line message made safe: every line cleaned and shortened, at most ``max_lines`` lines."""
    lines = safe_str(text).split("\n")
    out = [clean(line, line_limit) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        out.append(f"{ELLIPSIS} ({len(lines) - max_lines:,} more lines)")
    return "\n".join(out)


def clean_tree(value: Any, limit: int = 20_000) -> Any:
    """A copy of JSON-like data whose strings (values and keys) went through ``clean`` (newlines kept): what a
    report stores of user-supplied text."""
    if isinstance(value, str):
        return clean(value, limit, keep_newlines=True)
    if isinstance(value, dict):
        return {clean_tree(k, limit) if isinstance(k, str) else k: clean_tree(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_tree(v, limit) for v in value]
    return value


def safe_str(value: Any) -> str:
    """``str(value)``, even for an object whose ``__str__`` raises or returns a non-string."""
    if isinstance(value, str):
        return value
    try:
        text = str(value)
        if isinstance(text, str):
            return text
    except Exception as e:  # a hostile or broken __str__ must not turn a failure message into a crash
        return f"<{type(value).__name__} object; str() raised {type(e).__name__}>"
    return f"<{type(value).__name__} object>"


def describe_exception(e: BaseException) -> str:
    """``Type: message`` of an exception, whatever its ``__str__`` does."""
    return f"{type(e).__name__}: {safe_str(e)}"


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """A CSV cell neutralised against formula injection (OWASP "CSV Injection"): a cell starting with ``=``, ``+``,
    ``-``, ``@``, tab or carriage return gets a leading single quote, so a spreadsheet shows it as text. Numbers
    (``-3.040``, ``+1e9``) stay numbers. Control characters are escaped and the cell is shortened to 2,000
    characters."""
    if not value:
        return value
    if len(value) <= 40 and _NUMBER.fullmatch(value):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    if len(value) > 2000 or _CONTROL.search(value) or "\x1b" in value or "\n" in value:
        value = clean(value, 2000)
    return value


def plain_data_problem(value: Any, path: str = "$", *, depth: int = 0) -> str | None:
    """Where ``value`` is not plain data (dict with str keys, list/tuple, str, int, float, bool, None), or None.

    Records travel from xdist workers to the controller through execnet, which serialises only builtins: anything
    else there would be an INTERNALERROR of the whole run rather than the failure of one profile.
    """
    if depth > 64:
        return f"{path}: nested more than 64 levels"
    if value is None or type(value) in (str, int, float, bool):
        return None
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"{path}: key {safe_str(key)[:40]!r} is a {type(key).__name__}, not a string"
            problem = plain_data_problem(item, f"{path}.{key}", depth=depth + 1)
            if problem:
                return problem
        return None
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            problem = plain_data_problem(item, f"{path}[{i}]", depth=depth + 1)
            if problem:
                return problem
        return None
    return f"{path}: a {type(value).__name__} object, not plain data (str, int, float, bool, None, list, dict)"
