"""Memory units.

Everything inside the package is an integer number of bytes. GB (10**9 bytes) and GiB (2**30 bytes) exist only at
the edges: when a reader ingests a number printed by some tool, and when a report prints one. Every printed number
says which unit it is in, because the original LLM Sizer tools mixed the two (about 7.4% apart).
"""

from __future__ import annotations

import math

GB = 10**9
GiB = 2**30
MiB = 2**20
MB = 10**6

UNIT_BYTES: dict[str, int] = {"B": 1, "MB": MB, "MiB": MiB, "GB": GB, "GiB": GiB}


def to_bytes(value: float, unit: str) -> int:
    """Convert ``value`` expressed in ``unit`` (B, MB, MiB, GB, GiB) to integer bytes, rounding to nearest."""
    try:
        factor = UNIT_BYTES[unit]
    except KeyError:
        raise ValueError(f"unknown memory unit {unit!r}; expected one of {sorted(UNIT_BYTES)}") from None
    if not math.isfinite(value):
        raise ValueError(f"memory value must be finite, got {value!r}")
    return round(value * factor)


def gib(n_bytes: float) -> float:
    """Bytes to GiB (2**30)."""
    return n_bytes / GiB


def gb(n_bytes: float) -> float:
    """Bytes to GB (1e9)."""
    return n_bytes / GB


def fmt_gib(n_bytes: float | None, digits: int = 2) -> str:
    """Format bytes as ``'12.34 GiB'``; ``'-'`` for a missing value."""
    return "-" if n_bytes is None else f"{n_bytes / GiB:.{digits}f} GiB"


def fmt_gb(n_bytes: float | None, digits: int = 2) -> str:
    """Format bytes as ``'12.34 GB'``; ``'-'`` for a missing value."""
    return "-" if n_bytes is None else f"{n_bytes / GB:.{digits}f} GB"
