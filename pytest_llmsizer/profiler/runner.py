"""Profile one run: the vLLM child process, or a transformers run in a child of its own (for campaigns)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.profiler.assemble import RunFacts, engine_args_dict, vllm_profile
from pytest_llmsizer.profiler.devices import DeviceReader
from pytest_llmsizer.profiler.driver import ChildRun, run_child
from pytest_llmsizer.profiler.plan import RunSpec
from pytest_llmsizer.profiler.versions import software_versions
from pytest_llmsizer.safe_io import atomic_replace


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    status: str
    """"done" or "failed\""""
    reason: str | None
    profile_path: Path | None
    """the profile written (a failed one only with keep_failed)"""
    log_path: Path
    seconds: float
    log_tail: str
    profile: Profile | None = None


_CHILD_SAID = re.compile(r"^llmsizer profile: (?:error: |run failed: )(.*)$", re.MULTILINE)
"""How a transformers child states why it failed (the CLI's error line, or print_result's)."""


BENCH_LATENCY_NOTE = (
    "Run through `vllm bench latency`, i.e. vLLM's offline LLM class: where the log does not state "
    "max_num_batched_tokens / max_num_seqs, the LLM class's defaults applied, not the API server's "
    "(notes/memory-physics.md 2.2: 16384 vs 8192 batched tokens on >= 70 GiB GPUs)."
)


def _is_bench_latency(command: list[str]) -> bool:
    return any(a.endswith("vllm") and b == "bench" and c == "latency"
               for a, b, c in zip(command, command[1:], command[2:], strict=False))


def log_path_for(out: Path) -> Path:
    return out.with_name(out.stem + ".log")


def failed_path_for(out: Path) -> Path:
    return out.with_name(out.stem + ".failed.json")


def _failure_of(run: ChildRun) -> str | None:
    if run.timed_out:
        return f"timeout: the engine ran past the time limit ({run.seconds:.0f} s) and was stopped"
    if run.returncode != 0:
        oom = run.out_of_memory_line()
        code = run.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if oom:
            return f"out of memory ({how}): {oom[:500]}"
        return f"the engine crashed ({how})"
    return None


def write_profile(profile: Profile, path: Path) -> None:
    """Atomically, never through a symlink; whether an existing file may be replaced was decided before the run."""
    atomic_replace(path, json.dumps(profile.model_dump(mode="json", exclude_none=True), indent=2) + "\n")


def profile_vllm(spec: RunSpec, out: Path, *, reader: DeviceReader, hz: float, keep_failed: bool = False,
                 log_path: Path | None = None) -> RunResult:
    """Run vLLM (or ``spec.engine_cmd``) once, sample the GPUs, write ``out`` when the run is sound."""
    if spec.engine_cmd is None and shutil.which("vllm") is None:
        raise LlmsizerError("vLLM is not installed here (no 'vllm' command on PATH): pip install vllm, or name "
                            "another launcher with --engine-cmd")
    devices = tuple(reader.devices())
    if len(devices) < spec.gpus:
        raise LlmsizerError(f"the run needs {spec.gpus} GPUs (tensor parallel size) but {len(devices)} are visible")
    log_path = log_path or log_path_for(out)
    run = run_child(spec.command(), log_path=log_path, reader=reader, hz=hz, timeout=spec.timeout)
    facts = RunFacts(
        model=spec.model, engine="vllm", batch_size=spec.batch_size, input_len=spec.input_len,
        output_len=spec.output_len, tensor_parallel_size=spec.tensor_parallel_size, devices=devices,
        device_tool=reader.tool, trace=run.trace, reference=f"llmsizer profile: {spec.run_id} (log {log_path.name})",
        software=software_versions(engine="vllm", engine_cmd=spec.engine_cmd), seconds=run.seconds,
        extra_args={**engine_args_dict(list(spec.engine_args)), "command": " ".join(run.command)},
        notes=(BENCH_LATENCY_NOTE,) if _is_bench_latency(run.command) else (),
    )
    profile, failure = vllm_profile(run.log_text(), facts, failure=_failure_of(run))
    written = None
    if failure is None:
        write_profile(profile, out)
        written = out
    elif keep_failed:
        written = failed_path_for(out)
        write_profile(profile, written)
    return RunResult(spec=spec, status="failed" if failure else "done", reason=failure, profile_path=written,
                     log_path=log_path, seconds=run.seconds, log_tail=run.log_tail(), profile=profile)


def profile_transformers_child(spec: RunSpec, out: Path, *, hz: float, keep_failed: bool = False,
                               log_path: Path | None = None, reader: DeviceReader | None = None,
                               device_reader: str = "auto") -> RunResult:
    """A transformers run in a child process (campaigns: a time limit, a crash stays in the child, and each run
    starts from an empty GPU). The child measures and writes the profile itself."""
    log_path = log_path or log_path_for(out)
    command = spec.command(out)
    command += ["--sample-hz", str(hz), "--device-reader", device_reader]
    if keep_failed:
        command.append("--keep-failed")
    from pytest_llmsizer.profiler.devices import NullReader

    run = run_child(command, log_path=log_path, reader=reader or NullReader(), hz=hz, timeout=spec.timeout)
    failure = _failure_of(run)
    said = _CHILD_SAID.findall(run.log_text())
    if failure is not None and said:
        failure = said[-1].strip()
    if failure is None and not out.is_file():
        failure = "the transformers run wrote no profile"
    written = out if out.is_file() else (failed_path_for(out) if failed_path_for(out).is_file() else None)
    if failure and written == out:
        written = None
    return RunResult(spec=spec, status="failed" if failure else "done", reason=failure, profile_path=written,
                     log_path=log_path, seconds=run.seconds, log_tail=run.log_tail())
