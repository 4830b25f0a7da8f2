"""Run a campaign unattended: skip what is done, time-limit each run, log every failure, never stop on one.

Layout of the output directory:

    DIR/<run-id>.json           one profile per sound run (its presence marks the run done: a rerun skips it)
    DIR/<run-id>.failed.json    a failed run's partial profile, only with keep_failed
    DIR/logs/<run-id>.log       the engine's log of each run
    DIR/campaign-log.jsonl      one JSON object per run attempt: time, run id, status, reason, seconds, GPUs

Ctrl-C stops the run in progress (its engine is killed) and the campaign; what finished stays, so the same command
resumes where it stopped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profiler.campaign import Campaign
from pytest_llmsizer.profiler.devices import DeviceReader
from pytest_llmsizer.profiler.plan import RunSpec
from pytest_llmsizer.profiler.runner import RunResult, profile_transformers_child, profile_vllm
from pytest_llmsizer.safe_io import check_output, locked_append

CAMPAIGN_LOG = "campaign-log.jsonl"


def profile_path(out_dir: Path, spec: RunSpec) -> Path:
    return out_dir / f"{spec.run_id}.json"


def plan_lines(campaign: Campaign, out_dir: Path | None) -> list[str]:
    """--dry-run: one line per planned run, marking those a real run would skip."""
    lines = []
    width = len(str(len(campaign.runs)))
    for n, spec in enumerate(campaign.runs, 1):
        done = out_dir is not None and profile_path(out_dir, spec).is_file()
        lines.append(f"{n:>{width}}. {'skip (done) ' if done else ''}{spec.describe()}  "
                     f"timeout={spec.timeout:g}s  line {spec.line}  -> {spec.run_id}.json")
    return lines


@dataclass
class CampaignSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    gpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"campaign: {self.done} done, {self.skipped} skipped (already in the output directory), "
               f"{self.failed} failed; GPU time {_hms(self.gpu_seconds)} (run seconds x GPUs), wall time "
               f"{_hms(self.wall_seconds)}"]
        out += [f"  failed: {run_id}: {reason}" for run_id, reason in self.failures]
        return out


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """A progress bar with an ETA on stderr: the mean duration of the runs done so far x the runs left."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24):
        self.total, self.stream, self.width = total, stream or sys.stderr, width
        self.durations: list[float] = []
        self.position = 0

    def eta(self) -> str:
        if not self.durations:
            return "ETA unknown"
        left = self.total - self.position
        return f"ETA {_hms(sum(self.durations) / len(self.durations) * left)}"

    def show(self, text: str) -> None:
        filled = int(self.width * self.position / self.total) if self.total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        print(f"[{bar}] {self.position}/{self.total} {self.eta()}  {text}", file=self.stream, flush=True)


def _record(log: Path, result: RunResult | None, spec: RunSpec, status: str, reason: str | None) -> None:
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "run_id": spec.run_id, "status": status,
        "reason": reason, "model": spec.model, "engine": spec.engine, "tensor_parallel_size": spec.tensor_parallel_size,
        "batch_size": spec.batch_size, "input_len": spec.input_len, "output_len": spec.output_len,
        "seconds": round(result.seconds, 3) if result else None,
        "profile": str(result.profile_path) if result and result.profile_path else None,
        "log": str(result.log_path) if result else None,
    }
    if result is not None and status == "failed":
        entry["log_tail"] = result.log_tail
    line = json.dumps(entry) + "\n"
    locked_append(log, lambda _head, _size: line, what="campaign log")


RunOne = Callable[[RunSpec, Path, Path], RunResult]


def run_campaign(campaign: Campaign, out_dir: Path, *, reader_factory: Callable[[], DeviceReader], hz: float,
                 keep_failed: bool = False, stream: TextIO | None = None,
                 device_reader: str = "auto") -> CampaignSummary:
    """Profile every run of the campaign not yet in ``out_dir``. Failures are logged and counted, never raised;
    Ctrl-C is logged and re-raised after the summary so far."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "logs").mkdir(exist_ok=True)
    log = out_dir / CAMPAIGN_LOG
    check_output(log, what="campaign log", append=True)  # a symlink or FIFO there stops the campaign before any run
    summary = CampaignSummary()
    progress = Progress(len(campaign.runs), stream)
    stream = progress.stream
    start = time.monotonic()
    reader: DeviceReader | None = None
    try:
        for spec in campaign.runs:
            out = profile_path(out_dir, spec)
            if out.is_file():
                summary.skipped += 1
                progress.position += 1
                continue
            progress.show(f"running {spec.describe()}")
            logfile = out_dir / "logs" / f"{spec.run_id}.log"
            if spec.engine == "vllm" and reader is None:
                reader = reader_factory()  # no reader here is a setup error: it stops the campaign
            try:
                if spec.engine == "vllm" and reader is not None:
                    result = profile_vllm(spec, out, reader=reader, hz=hz, keep_failed=keep_failed,
                                          log_path=logfile)
                else:
                    result = profile_transformers_child(spec, out, hz=hz, keep_failed=keep_failed, log_path=logfile,
                                                        device_reader=device_reader)
            except KeyboardInterrupt:
                _record(log, None, spec, "interrupted", "Ctrl-C")
                raise
            except LlmsizerError as e:
                summary.failed += 1
                summary.failures.append((spec.run_id, str(e)))
                _record(log, None, spec, "failed", str(e))
                progress.position += 1
                print(f"  FAILED {spec.run_id}: {e}", file=stream, flush=True)
                continue
            progress.position += 1
            progress.durations.append(result.seconds)
            summary.gpu_seconds += result.seconds * spec.gpus
            if result.status == "done":
                summary.done += 1
            else:
                summary.failed += 1
                summary.failures.append((spec.run_id, result.reason or "failed"))
                tail = "\n".join("    | " + line for line in result.log_tail.splitlines()[-10:])
                print(f"  FAILED {spec.run_id}: {result.reason}\n{tail}", file=stream, flush=True)
            _record(log, result, spec, result.status, result.reason)
    finally:
        summary.wall_seconds = time.monotonic() - start
        if reader is not None:
            reader.close()
    return summary
