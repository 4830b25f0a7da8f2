"""vLLM versions: parsing the strings logs and users write, and the ranges whose memory behaviour differs."""

from __future__ import annotations

import re

from pytest_llmsizer.calculator import coefficients as k

_VERSION_RE = re.compile(r"(\d{1,9})\.(\d{1,9})(?:\.(\d{1,9}))?")
r"""Bounded repeats: with ``\d+`` a long run of digits (a 1 MB "version") made the search quadratic (hours)."""


def parse_vllm_version(text: str | None) -> tuple[int, int] | None:
    """(major, minor) from strings such as '0.6.4.post1', '~0.11.0 (Oct 2025)', 'dev (Dec 2024, ~0.6.5)'."""
    if not text:
        return None
    m = _VERSION_RE.search(text)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2))


def version_bucket(version: tuple[int, int]) -> str:
    """The name of the ``VERSION_BUCKETS`` range holding ``version``."""
    for name, (low, high) in k.VERSION_BUCKETS.items():
        if low <= version < high:
            return name
    return next(reversed(k.VERSION_BUCKETS))
