"""Versions of what produced a profile's numbers: the engine, its libraries, the device reader, this package."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from pytest_llmsizer import __version__

_LIBRARIES = {
    "vllm": ("vllm", "torch", "transformers"),
    "transformers": ("torch", "transformers", "accelerate"),
}


def installed(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def software_versions(*, engine: str, engine_cmd: tuple[str, ...] | None = None) -> dict[str, str]:
    """Versions installed in this Python environment. With another launcher (``--engine-cmd``, e.g. a container)
    the engine's own libraries may differ; the engine version itself is then read from its log."""
    out = {"pytest-llmsizer": __version__, "python": platform.python_version()}
    for dist in ("nvidia-ml-py", "amdsmi"):
        if (v := installed(dist)) is not None:
            out[dist] = v
    if engine_cmd is None:
        for dist in _LIBRARIES.get(engine, ()):
            if (v := installed(dist)) is not None:
                out[dist] = v
    else:
        out["engine-command"] = " ".join(engine_cmd)
    return out
