"""Device memory readers: what one GPU has in use, read from the driver, not from the engine.

A reader answers two questions: which GPUs are visible (name, runtime-visible total, driver) and how many bytes each
has in use right now. The profiler samples ``used_bytes()`` from before the engine starts until after it exits, so
a reader must be cheap and thread-safe for one sampling thread.

Readers:

* ``nvml``: NVIDIA, through nvidia-ml-py (``pip install "pytest-llmsizer[profile]"``). Memory info version 2 is read
  where the driver offers it: its ``used`` is what nvidia-smi shows and ``total - reserved`` is the total CUDA (and
  therefore torch and vLLM) sees (shared/data/gpus.md: "CUDA total = smi total - Reserved"). With version 1 only,
  ``used`` includes the reserved memory and the runtime total is unknown (left to the GPU catalog).
* ``amdsmi``: AMD, through ROCm's ``amdsmi`` Python package when it is importable (it ships with ROCm, not on PyPI).
* anything else: ``module:attribute`` naming a callable that returns a ``DeviceReader`` (tests plug a scripted
  stand-in this way; a site with another vendor can plug its own).

Visible devices follow ``CUDA_VISIBLE_DEVICES`` / ``HIP_VISIBLE_DEVICES`` / ``ROCR_VISIBLE_DEVICES`` (indices or
UUIDs), in that order, because that is how the engine numbers them: the engine's rank 0 is the first listed device.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pytest_llmsizer.errors import LlmsizerError


@dataclass(frozen=True)
class DeviceInfo:
    """One visible GPU, as the driver describes it."""

    index: int
    """index among the visible devices (the engine's device number)"""
    name: str
    vendor: str
    """"nvidia", "amd" or "other" (the profile's ``hardware.vendor``)"""
    runtime_total_bytes: int | None
    """total memory the CUDA/HIP runtime sees (None when the driver does not say)"""
    smi_total_bytes: int | None
    """total memory as nvidia-smi / amd-smi prints it"""
    driver: str | None = None
    uuid: str | None = None


@runtime_checkable
class DeviceReader(Protocol):
    tool: str
    """what the numbers come from, written into the profile (e.g. "nvml (nvidia-ml-py 12.535.161, memory info v2)")"""

    def devices(self) -> Sequence[DeviceInfo]: ...

    def used_bytes(self) -> list[int]:
        """Bytes in use on each visible device, in ``devices()`` order."""
        ...

    def close(self) -> None: ...


class DeviceReaderUnavailable(LlmsizerError):
    """No reader can run here (library missing, no driver, no GPU): the message says what to install or check."""


def _visible_filter() -> list[str] | None:
    for name in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
        value = os.environ.get(name)
        if value is not None:
            return [v.strip() for v in value.split(",") if v.strip()]
    return None


def select_visible(count: int, uuids: Sequence[str | None], wanted: list[str] | None) -> list[int]:
    """Physical device indices in the order the runtime numbers them, given a *_VISIBLE_DEVICES list."""
    if wanted is None:
        return list(range(count))
    chosen: list[int] = []
    for item in wanted:
        if item.isdigit():
            i = int(item)
            if i >= count:
                break  # CUDA stops at the first invalid entry
            chosen.append(i)
            continue
        matches = [i for i, u in enumerate(uuids) if u and (u == item or u.startswith(item))]
        if not matches:
            break
        chosen.append(matches[0])
    return chosen


def _package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


class _NvmlMemory(Protocol):
    """What ``nvmlDeviceGetMemoryInfo`` returns (``c_nvmlMemory_t`` / ``c_nvmlMemory_v2_t``): bytes as ints; v2 adds
    ``reserved`` (read with getattr, since v1 lacks it)."""

    total: int
    used: int
    free: int


class NvmlReader:
    """NVIDIA GPUs through NVML (nvidia-ml-py)."""

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise DeviceReaderUnavailable(
                "reading NVIDIA GPU memory needs nvidia-ml-py: pip install \"pytest-llmsizer[profile]\""
            ) from None
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise DeviceReaderUnavailable(f"NVML cannot start (no NVIDIA driver or GPU here?): {e}") from None
        count = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = [_text(pynvml.nvmlDeviceGetUUID(h)) for h in handles]
        order = select_visible(count, uuids, _visible_filter())
        self._handles = [handles[i] for i in order]
        self._v2 = hasattr(pynvml, "nvmlMemory_v2")
        if self._v2:
            try:
                pynvml.nvmlDeviceGetMemoryInfo(self._handles[0], version=pynvml.nvmlMemory_v2) if order else None
            except (pynvml.NVMLError, TypeError):
                self._v2 = False
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        infos = []
        for n, (phys, h) in enumerate(zip(order, self._handles, strict=False)):
            mem = self._memory(h)
            reserved = getattr(mem, "reserved", None) if self._v2 else None
            infos.append(DeviceInfo(
                index=n, name=_text(pynvml.nvmlDeviceGetName(h)), vendor="nvidia",
                runtime_total_bytes=int(mem.total - reserved) if reserved is not None else None,
                smi_total_bytes=int(mem.total), driver=driver, uuid=uuids[phys],
            ))
        self._infos = infos
        info = "v2: used as nvidia-smi shows it" if self._v2 else "v1: used includes driver-reserved memory"
        self.tool = f"nvml (nvidia-ml-py {_package_version('nvidia-ml-py')}, memory info {info})"

    def _memory(self, handle: object) -> _NvmlMemory:
        if self._v2:
            return self._nvml.nvmlDeviceGetMemoryInfo(handle, version=self._nvml.nvmlMemory_v2)
        return self._nvml.nvmlDeviceGetMemoryInfo(handle)

    def devices(self) -> Sequence[DeviceInfo]:
        return self._infos

    def used_bytes(self) -> list[int]:
        return [int(self._memory(h).used) for h in self._handles]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()


class AmdSmiReader:
    """AMD GPUs through ROCm's amdsmi Python package (ships with ROCm; not on PyPI). Not exercised in CI."""

    def __init__(self) -> None:
        try:
            import amdsmi
        except ImportError:
            raise DeviceReaderUnavailable(
                "reading AMD GPU memory needs ROCm's amdsmi Python package (installed with ROCm)"
            ) from None
        self._smi = amdsmi
        try:
            amdsmi.amdsmi_init()
            handles = list(amdsmi.amdsmi_get_processor_handles())
        except Exception as e:
            raise DeviceReaderUnavailable(f"amdsmi cannot start (no ROCm driver or GPU here?): {e}") from None
        uuids: list[str | None] = []
        for h in handles:
            try:
                uuids.append(str(amdsmi.amdsmi_get_gpu_device_uuid(h)))
            except Exception:
                uuids.append(None)
        order = select_visible(len(handles), uuids, _visible_filter())
        self._handles = [handles[i] for i in order]
        vram = amdsmi.AmdSmiMemoryType.VRAM
        self._vram = vram
        infos = []
        for n, (phys, h) in enumerate(zip(order, self._handles, strict=False)):
            total = int(amdsmi.amdsmi_get_gpu_memory_total(h, vram))
            infos.append(DeviceInfo(
                index=n, name=_amd_name(amdsmi, h), vendor="amd", runtime_total_bytes=total, smi_total_bytes=total,
                driver=_amd_driver(amdsmi, h), uuid=uuids[phys],
            ))
        self._infos = infos
        self.tool = f"amdsmi ({_package_version('amdsmi')}): VRAM usage"

    def devices(self) -> Sequence[DeviceInfo]:
        return self._infos

    def used_bytes(self) -> list[int]:
        return [int(self._smi.amdsmi_get_gpu_memory_usage(h, self._vram)) for h in self._handles]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._smi.amdsmi_shut_down()


def _amd_name(amdsmi: object, handle: object) -> str:
    try:
        info = amdsmi.amdsmi_get_gpu_asic_info(handle)  # type: ignore[attr-defined]
        name = info.get("market_name")
        if name and name != "N/A":
            return str(name)
    except Exception:
        pass
    try:
        return str(amdsmi.amdsmi_get_gpu_board_info(handle)["product_name"])  # type: ignore[attr-defined]
    except Exception:
        return "AMD GPU"


def _amd_driver(amdsmi: object, handle: object) -> str | None:
    try:
        return str(amdsmi.amdsmi_get_gpu_driver_info(handle)["driver_version"])  # type: ignore[attr-defined]
    except Exception:
        return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def open_reader(spec: str = "auto") -> DeviceReader:
    """The reader ``spec`` names: "auto" (NVML, else amdsmi), "nvml", "amdsmi" or "module:attribute"."""
    if spec == "nvml":
        return NvmlReader()
    if spec == "amdsmi":
        return AmdSmiReader()
    if spec == "auto":
        reasons = []
        for kind in (NvmlReader, AmdSmiReader):
            try:
                reader = kind()
            except DeviceReaderUnavailable as e:
                reasons.append(str(e))
                continue
            if reader.devices():
                return reader
            reader.close()
            reasons.append(f"{kind.__name__}: no visible GPU")
        raise DeviceReaderUnavailable("no GPU memory reader works here: " + "; ".join(reasons))
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise LlmsizerError(f"--device-reader {spec!r}: expected auto, nvml, amdsmi or module:attribute")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as e:
        raise LlmsizerError(f"--device-reader {spec!r}: cannot load it: {e}") from None
    reader = factory()
    if not isinstance(reader, DeviceReader):
        raise LlmsizerError(f"--device-reader {spec!r}: {type(reader).__name__} is not a DeviceReader "
                            "(needs tool, devices(), used_bytes(), close())")
    return reader


class NullReader:
    """No device at all: for a child that samples its own GPU (a transformers run in a campaign)."""

    tool = "none (the child process reads its own GPU)"

    def devices(self) -> Sequence[DeviceInfo]:
        return ()

    def used_bytes(self) -> list[int]:
        return []

    def close(self) -> None:
        pass
