"""vLLM versions: parsing the strings logs and users write, and the ranges whose memory behaviour differs."""

from __future__ import annotations

import re

from pytest_llmsizer.calculator import coefficients as k

_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


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


LOG_FORMAT_VERSIONS: tuple[tuple[str, str], ...] = (
    ("Memory profiling results: total_gpu_memory=", "~0.6.4 (from the log's one-line profiling format)"),
)
"""Log lines that only one vLLM release printed (``../shared/notes/vllm-log-formats.md`` section 3: the one-line
``Memory profiling results: total_gpu_memory=... peak_torch_memory=...`` summary is ~0.6.4, Nov 2024; vllm#10360
prints it from the 0.6.4.post1 image) -> the version string a log without a stated version gets. The string says
it is inferred; the calculator reads its (major, minor) like any other."""


def version_from_log_format(log_lines: list[str] | None) -> str | None:
    """The vLLM version a log's format implies, or None when no line is specific to one release."""
    for line in log_lines or ():
        for marker, version in LOG_FORMAT_VERSIONS:
            if marker in line:
                return version
    return None
