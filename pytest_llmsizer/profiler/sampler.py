"""Sample device memory from before the engine starts until after it exits; reduce to baseline / peak / final.

The original profilers read the "peak" after ``vllm bench`` had returned (v2.0), or summed every GPU of the machine
(v3.0 on CUDA): notes/llm-sizer-origin.md 6.2. Here the baseline is read before launch, the peak is the highest
reading of each GPU while the engine lives (sampled on a thread at ``hz``), and the final reading is taken after
it exited. Every number is one GPU's.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profiler.devices import DeviceReader


@dataclass(frozen=True)
class MemoryTrace:
    """Per-GPU readings of one run, bytes."""

    baseline: list[int]
    peak: list[int]
    final: list[int]
    samples: int
    seconds: float
    peak_at_s: list[float] = field(default_factory=list)
    """seconds after launch at which each GPU's peak was first read"""
    peak_from_s: float = 0.0
    """readings taken before this many seconds after launch were not peak candidates (0: every reading was)"""

    def grew(self, gpus: Sequence[int]) -> bool:
        """Whether any of these GPUs rose above its baseline during the run."""
        return any(self.peak[i] > self.baseline[i] for i in gpus)


def summarize(baseline: list[int], samples: Sequence[tuple[float, list[int]]], final: list[int], *,
              after_s: float = 0.0) -> MemoryTrace:
    """Reduce readings to a trace. ``samples`` are (seconds after launch, used bytes per GPU); the final reading
    counts towards the peak (memory still held at exit is memory the run used). Readings before ``after_s`` are
    not peak candidates: a stand-in phase of the run that a real deployment does not have (a model built from its
    config, ``transformers_run.measure``)."""
    n = len(baseline)
    peak = list(baseline)
    peak_at = [0.0] * n
    seen = [*samples, (samples[-1][0] if samples else 0.0, final)]
    for t, values in seen:
        if len(values) != n:
            raise ValueError(f"a reading has {len(values)} GPUs, the baseline {n}")
        if t < after_s:
            continue
        for i, v in enumerate(values):
            if v > peak[i]:
                peak[i], peak_at[i] = v, t
    seconds = samples[-1][0] if samples else 0.0
    return MemoryTrace(baseline=list(baseline), peak=peak, final=list(final), samples=len(samples),
                       seconds=seconds, peak_at_s=peak_at, peak_from_s=after_s)


def read_baseline(reader: DeviceReader, hz: float, reads: int = 3) -> list[int]:
    """Median of a few readings before launch, so one transient reading does not set the baseline."""
    values = []
    for k in range(reads):
        values.append(reader.used_bytes())
        if k + 1 < reads:
            time.sleep(1.0 / hz)
    return [int(statistics.median(column)) for column in zip(*values, strict=False)]


class Sampler:
    """Reads ``reader.used_bytes()`` every 1/hz seconds on a daemon thread between ``start()`` and ``stop()``."""

    def __init__(self, reader: DeviceReader, hz: float) -> None:
        if hz <= 0:
            raise ValueError("sample rate must be positive")
        self._reader, self._period = reader, 1.0 / hz
        self._samples: list[tuple[float, list[int]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self.error: BaseException | None = None

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="llmsizer-memory-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                values = self._reader.used_bytes()
            except Exception as e:
                self.error = e
                return
            self._samples.append((time.monotonic() - self._t0, values))
            next_at += self._period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> list[tuple[float, list[int]]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise LlmsizerError(f"reading device memory failed during the run: {type(self.error).__name__}: "
                                f"{self.error}") from self.error
        return list(self._samples)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._t0
