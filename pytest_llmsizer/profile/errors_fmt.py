"""Turn pydantic validation errors into the project's ``Problem`` list with JSON paths (``$.a.b[0]``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import ValidationError

from pytest_llmsizer.errors import Problem

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,79}")
MAX_KEY_CHARS = 60


def json_path(loc: Iterable[str | int], root: str = "$") -> str:
    """``('a', 0, 'b')`` -> ``'$.a[0].b'``.

    Keys come from the file, and an unknown key is echoed in the message: a key that is not a plain name is written
    quoted and escaped (``$["\\u001b[2J"]``), so control characters, terminal escape sequences or lone surrogates
    in a hostile file never reach the terminal raw, and a long one is cut.
    """
    out = root
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(str(part)):
            out += f".{part}"
        else:
            text = str(part)
            cut = "..." if len(text) > MAX_KEY_CHARS else ""
            out += f"[{quote(text[:MAX_KEY_CHARS])}{cut}]"
    return out


def quote(text: str) -> str:
    """``text`` in double quotes, JSON style, with every unprintable character (controls, terminal escapes, bidi
    overrides, lone surrogates) escaped; printable non-ASCII stays readable."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def problems_from_validation(err: ValidationError, root: str = "$") -> list[Problem]:
    """Every error of a pydantic ``ValidationError`` as a ``Problem``, without URLs or echoed input."""
    problems = []
    for e in err.errors(include_url=False, include_input=False):
        # model validators report loc=(); their message already names the fields.
        loc = [p for p in e["loc"] if p not in ("function-after",)]
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (not part of the format; check the spelling)"
        problems.append(Problem(json_path(loc, root), msg))
    return problems
