"""Run the engine as a child process with its log captured to a file, device memory sampled, and a time limit.

The child gets its own process group, so a timeout or Ctrl-C ends the engine and every worker it started (vLLM
starts one process per rank), never anything else. Its stdout and stderr go, merged in order, to one log file that
is kept beside the profile: the profile's numbers can always be traced back to the lines they came from.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profiler.devices import DeviceReader
from pytest_llmsizer.profiler.sampler import MemoryTrace, Sampler, read_baseline, summarize
from pytest_llmsizer.safe_io import check_output, max_log_bytes, read_regular
from pytest_llmsizer.sanitize import clean_block

GRACE_SECONDS = 10.0
"""After SIGTERM, how long the engine has to exit before SIGKILL."""

OOM_PATTERNS = re.compile(
    r"CUDA out of memory|HIP out of memory|OutOfMemoryError|torch\.OutOfMemoryError|CUDA error: out of memory"
    r"|No available memory for the cache blocks|larger than the available KV cache memory"
    r"|larger than the maximum number of tokens that can be stored in KV cache"
)
"""Lines by which torch and vLLM say the model or its KV cache did not fit (notes/vllm-log-formats.md 4)."""


@dataclass(frozen=True)
class ChildRun:
    command: list[str]
    returncode: int | None
    """None when it was killed for the time limit"""
    timed_out: bool
    seconds: float
    log_path: Path
    trace: MemoryTrace

    def log_text(self) -> str:
        return self._log_text

    @functools.cached_property
    def _log_text(self) -> str:
        """The log, read once (the failure reason, the OOM line, the tail and the profile all need it) and only as
        a regular file under the cap of ``import vllm-log`` (``LLMSIZER_MAX_LOG_MIB``)."""
        data = read_regular(self.log_path, limit=max_log_bytes(), what="engine logs", setting="LLMSIZER_MAX_LOG_MIB")
        return data.decode("utf-8", errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines, each cleaned and cut at 2000 characters: the tail is echoed to the terminal and
        stored in campaign-log.jsonl, and one engine line can be megabytes long."""
        return clean_block("\n".join(self.log_text().splitlines()[-lines:]))

    def out_of_memory_line(self) -> str | None:
        for line in self.log_text().splitlines():
            if OOM_PATTERNS.search(line):
                return line.strip()
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after the grace period."""
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _end_stragglers(pgid: int) -> None:
    """End what the engine left running in its process group when it exited (an orphaned vLLM worker would hold
    GPU memory into the next run's baseline). Called after the final reading, which therefore still shows such
    memory. Nothing is left in the usual case, and the first ``killpg`` says so at once."""
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)


def run_child(command: Sequence[str], *, log_path: Path, reader: DeviceReader, hz: float, timeout: float | None,
              env: Mapping[str, str] | None = None) -> ChildRun:
    """Baseline, launch, sample until exit (or the time limit), final reading. Ctrl-C ends the child, then re-raises.

    Raises ``LlmsizerError`` when the program cannot be started (not found, not executable).
    """
    command = list(command)
    if shutil.which(command[0]) is None and not Path(command[0]).is_file():
        raise LlmsizerError(f"the engine command {command[0]!r} was not found on PATH; install it (vLLM: "
                            "pip install vllm) or name another launcher with --engine-cmd")
    baseline = read_baseline(reader, hz)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # the caller decided the log may be replaced; a symlink, FIFO or device in its place is still refused
    check_output(log_path, what="engine log", force=True)
    sampler = Sampler(reader, hz)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with open(os.open(log_path, flags, 0o666), "wb") as log:
        try:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=dict(env) if env is not None else None)
        except OSError as e:
            raise LlmsizerError(f"cannot start {command[0]!r}: {e.strerror or e}") from None
        sampler.start()
        start = time.monotonic()
        timed_out = False
        try:
            while proc.poll() is None:
                if timeout is not None and time.monotonic() - start > timeout:
                    timed_out = True
                    _kill_group(proc)
                    break
                time.sleep(0.05)
        except BaseException:
            _kill_group(proc)
            sampler.stop()
            raise
        seconds = time.monotonic() - start
        samples = sampler.stop()
    final = reader.used_bytes()
    if not timed_out:
        _end_stragglers(proc.pid)
    trace = summarize(baseline, samples, final)
    return ChildRun(command=command, returncode=None if timed_out else proc.returncode, timed_out=timed_out,
                    seconds=seconds, log_path=log_path, trace=trace)
