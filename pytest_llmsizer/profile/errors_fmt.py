"""Turn pydantic validation errors into the project's ``Problem`` list with JSON paths (``$.a.b[0]``)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from pytest_llmsizer.errors import Problem


def json_path(loc: Iterable[str | int], root: str = "$") -> str:
    """``('a', 0, 'b')`` -> ``'$.a[0].b'``."""
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


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
