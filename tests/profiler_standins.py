"""STAND-INS for what cannot run here (a GPU, vLLM), used by tests/test_profiler*.py. Not a GPU, not vLLM.

* ``ReplayEngineStandIn`` (run as ``python tests/profiler_standins.py``): a stand-in for ``vllm bench latency``. It
  REPLAYS the verbatim log lines of one real vLLM startup log from ../shared/data/vllm-startup-logs (a record chosen
  by its ``source``) or a fixture log file, and, as it goes, writes a scripted device-memory series to a state file.
  It can also crash, print an out-of-memory error, hang, or interrupt its parent, on request.
* ``DeviceStandIn``: a stand-in device reader (``DeviceReader``) whose "used memory" is whatever the replay engine
  last wrote to the state file; its name says it is a stand-in.

The memory series is scripted, not measured: tests check the profiler's plumbing (what is read when, peak and
baseline logic, failure handling), never a memory number's physics.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

GIB = 2**30
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vllm-startup-logs"
STATE_ENV = "LLMSIZER_STANDIN_STATE"
GPUS_ENV = "LLMSIZER_STANDIN_GPUS"


def record_lines(source: str, file: str = "issue-threads.jsonl") -> list[str]:
    """The verbatim log lines of the real record whose ``source`` is ``source``."""
    for line in (SHARED / file).read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("source") == source:
            return list(rec["log_lines"])
    raise KeyError(f"no record with source {source!r} in {file}")


def write_state(path: Path, used_gib: list[float]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([round(v * GIB) for v in used_gib]))
    os.replace(tmp, path)


class DeviceStandIn:
    """STAND-IN device reader: reports the memory the replay engine scripted into the state file."""

    def __init__(self, state: Path, gpus: int = 1, total_gib: float = 16.0, name: str | None = None):
        self.state, self.gpus = Path(state), gpus
        self.tool = "stand-in device reader (scripted series, not a GPU)"
        from pytest_llmsizer.profiler.devices import DeviceInfo

        self._devices = tuple(
            DeviceInfo(index=i, name=name or "stand-in GPU (scripted, not a real device)", vendor="other",
                       runtime_total_bytes=round(total_gib * GIB), smi_total_bytes=round(total_gib * GIB),
                       driver="stand-in driver 0.0", uuid=f"STANDIN-{i}")
            for i in range(gpus))
        self.reads = 0

    def devices(self):
        return self._devices

    def used_bytes(self) -> list[int]:
        self.reads += 1
        values = json.loads(self.state.read_text())
        return [int(v) for v in values[: self.gpus]]

    def close(self) -> None:
        pass


def device_from_env() -> DeviceStandIn:
    """Factory for ``--device-reader profiler_standins:device_from_env`` (the state file named in the env)."""
    return DeviceStandIn(Path(os.environ[STATE_ENV]), gpus=int(os.environ.get(GPUS_ENV, "1")))


def engine_command(*options: str) -> str:
    """An ``--engine-cmd`` value that runs the replay stand-in with these options."""
    import shlex

    return shlex.join([sys.executable, str(Path(__file__).resolve()), *options])


def _main(argv: list[str]) -> int:
    """ReplayEngineStandIn: print a real log's lines while writing a scripted memory series."""
    p = argparse.ArgumentParser(description="STAND-IN for vllm bench latency: replays a real vLLM log")
    p.add_argument("--record", help="source of a record in ../shared/data/vllm-startup-logs/issue-threads.jsonl")
    p.add_argument("--log-file", help="a log file to replay instead (tests/fixtures/vllm_logs)")
    p.add_argument("--state", required=True, help="state file the stand-in device reader reads")
    p.add_argument("--series", required=True, help="GiB in use per step, ';' between steps, ',' between GPUs")
    p.add_argument("--final", required=True, help="GiB in use after exit (',' between GPUs)")
    p.add_argument("--dwell", type=float, default=0.3, help="seconds each step lasts")
    p.add_argument("--exit", type=int, default=0)
    p.add_argument("--oom", action="store_true", help="end with torch's CUDA out-of-memory error")
    p.add_argument("--hang", action="store_true", help="never exit (until killed)")
    p.add_argument("--interrupt-parent-once", metavar="MARKER",
                   help="the first time (MARKER absent: create it), send SIGINT to the parent, then exit 0")
    own, engine_args = p.parse_known_args(argv)
    print(f"# stand-in engine (replay, not vLLM) got: {' '.join(engine_args)}", flush=True)
    if own.record:
        lines = record_lines(own.record)
    else:
        lines = [ln for ln in Path(own.log_file).read_text(encoding="utf-8").splitlines()]
    steps = [[float(v) for v in step.split(",")] for step in own.series.split(";")]
    state = Path(own.state)
    per_step = -(-len(lines) // len(steps))
    for k, step in enumerate(steps):
        write_state(state, step)
        for line in lines[k * per_step:(k + 1) * per_step]:
            print(line, flush=True)
        time.sleep(own.dwell)
    if own.oom:
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
              "of 15.99 GiB of which 1.02 GiB is free.", file=sys.stderr, flush=True)
    if own.hang:
        while True:
            time.sleep(1)
    write_state(state, [float(v) for v in own.final.split(",")])
    if own.interrupt_parent_once and not Path(own.interrupt_parent_once).exists():
        Path(own.interrupt_parent_once).write_text("interrupted once")
        os.kill(os.getppid(), signal.SIGINT)
        time.sleep(2)
    return 1 if own.oom and own.exit == 0 else own.exit


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
