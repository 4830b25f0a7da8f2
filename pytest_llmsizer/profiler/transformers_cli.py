"""``llmsizer profile transformers``: one in-process run, assembled, written, and reported like the vLLM path."""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import traceback
from pathlib import Path

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profiler.assemble import RunFacts, model_id_for, transformers_profile
from pytest_llmsizer.profiler.devices import DeviceReaderUnavailable, open_reader
from pytest_llmsizer.profiler.plan import RunSpec
from pytest_llmsizer.profiler.runner import RunResult, failed_path_for, log_path_for, write_profile
from pytest_llmsizer.profiler.transformers_run import TorchCudaReader, import_engine, measure, read_config_file
from pytest_llmsizer.profiler.versions import software_versions
from pytest_llmsizer.safe_io import atomic_replace

BUILT_FROM_CONFIG_NOTE = (
    "built from its config (random weights): from_config allocates every module's own tensors and ties shared ones "
    "afterwards (a tied lm_head is built, then dropped), which a checkpoint load does not; so the allocator cache "
    "was emptied after the build and the device peak is read from then on.")


def profile_transformers(args: argparse.Namespace, out: Path) -> RunResult:
    import_engine()  # a clear message before any GPU work when torch or transformers is missing
    config = None
    path = Path(args.model)
    if args.model.endswith(".json"):
        config = read_config_file(path)
    elif args.random_weights and (path / "config.json").is_file():
        config = read_config_file(path / "config.json")
    model_id = model_id_for(args.model, config, path.name if config is not None else None)
    spec = RunSpec(model=model_id, engine="transformers", batch_size=args.batch_size, input_len=args.input_len,
                   output_len=args.output_len, random_weights=args.random_weights, dtype=args.dtype)
    try:
        reader = open_reader(args.device_reader)
    except DeviceReaderUnavailable as e:
        if args.device_reader != "auto":
            raise
        reader = TorchCudaReader()
        print(f"llmsizer profile: {e}; falling back to {reader.tool}")
    log_path = log_path_for(out)
    log = io.StringIO()
    start = time.monotonic()
    try:
        with contextlib.redirect_stderr(log):
            m, trace, seconds = measure(args.model, config=config, batch_size=args.batch_size,
                                        input_len=args.input_len, output_len=args.output_len, reader=reader,
                                        hz=args.sample_hz, random_weights=args.random_weights, dtype=args.dtype,
                                        trust_remote_code=args.trust_remote_code)
    except LlmsizerError:
        reader.close()
        raise
    except Exception as e:
        reader.close()
        text = traceback.format_exc()
        atomic_replace(log_path, log.getvalue() + text)
        oom = "out of memory" in str(e).lower() or type(e).__name__ == "OutOfMemoryError"
        reason = f"{'out of memory' if oom else 'the run crashed'}: {type(e).__name__}: {str(e)[:500]}"
        return RunResult(spec=spec, status="failed", reason=reason, profile_path=None, log_path=log_path,
                         seconds=time.monotonic() - start, log_tail="\n".join(text.splitlines()[-15:]))
    devices = tuple(reader.devices())
    tool = reader.tool
    reader.close()
    atomic_replace(log_path, log.getvalue())
    facts = RunFacts(
        model=model_id, engine="transformers", batch_size=args.batch_size, input_len=args.input_len,
        output_len=args.output_len, tensor_parallel_size=1, devices=devices[:1], device_tool=tool, trace=trace,
        reference=f"llmsizer profile: {spec.run_id}" + (f" (config {path.name})" if config is not None else ""),
        software=software_versions(engine="transformers"), seconds=seconds,
        extra_args={"random_weights": True} if args.random_weights else {},
        notes=(BUILT_FROM_CONFIG_NOTE,) if trace.peak_from_s > 0 else (),
    )
    profile, failure = transformers_profile(m, facts, config=config)
    written = None
    if failure is None:
        write_profile(profile, out)
        written = out
    elif args.keep_failed:
        written = failed_path_for(out)
        write_profile(profile, written)
    return RunResult(spec=spec, status="failed" if failure else "done", reason=failure, profile_path=written,
                     log_path=log_path, seconds=seconds, log_tail=log.getvalue()[-3000:], profile=profile)
