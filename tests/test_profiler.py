"""``llmsizer profile vllm``: child process, log capture, time limits, failures and profile assembly.

No GPU and no vLLM here: the engine is a STAND-IN that replays a real vLLM log from ../shared/data (named a replay
in its output) while a STAND-IN device reader reports a scripted memory series (tests/profiler_standins.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from profiler_standins import (
    GIB,
    GPUS_ENV,
    STATE_ENV,
    DeviceStandIn,
    engine_command,
    record_lines,
    write_state,
)

from pytest_llmsizer.cli import main
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.profiler.devices import select_visible
from pytest_llmsizer.profiler.driver import ChildRun, run_child
from pytest_llmsizer.profiler.sampler import summarize

HERE = Path(__file__).resolve().parent
OPT_RECORD = "SystemPanic/vllm-windows#6"  # facebook/opt-125m, vLLM 0.8.2 V0, a complete three-line budget log
LLAMA_RECORD = "vllm-project/vllm#10511"  # meta-llama/Meta-Llama-3-8B, multi-line table, 79.22 GiB GPU
READER = "profiler_standins:device_from_env"


@pytest.fixture
def standin(tmp_path, monkeypatch):
    state = tmp_path / "device-state.json"
    monkeypatch.setenv(STATE_ENV, str(state))
    monkeypatch.setenv(GPUS_ENV, "1")
    monkeypatch.syspath_prepend(str(HERE))
    return state


def _profile(tmp_path: Path, state: Path, *engine: str, extra: tuple[str, ...] = (), baseline=(0.5,),
             model: str = "facebook/opt-125m", tp: int = 1) -> tuple[int, Path]:
    write_state(state, list(baseline))
    out = tmp_path / "run.json"
    code = main(["profile", "vllm", model, "--tp", str(tp), "--batch-size", "8", "--input-len", "512",
                 "--output-len", "128", "-o", str(out), "--device-reader", READER, "--sample-hz", "40",
                 "--engine-cmd", engine_command("--state", str(state), *engine), *extra])
    return code, out


# -- peak / baseline logic (pure) ----------------------------------------------------------------------------------

def test_summarize_takes_per_gpu_peaks_and_counts_the_final_reading():
    trace = summarize([100, 200], [(0.1, [150, 200]), (0.2, [400, 250]), (0.3, [120, 900])], [110, 950])
    assert trace.baseline == [100, 200]
    assert trace.peak == [400, 950]  # GPU 1's highest reading is the one after exit
    assert trace.final == [110, 950]
    assert trace.peak_at_s == [0.2, 0.3]
    assert trace.samples == 3 and trace.grew([0]) and trace.grew([1])


def test_peak_equal_to_baseline_is_no_growth():
    trace = summarize([100, 200], [(0.1, [100, 200]), (0.2, [90, 200])], [100, 200])
    assert trace.peak == [100, 200]
    assert not trace.grew([0, 1])


def test_visible_devices_follow_the_runtime_numbering():
    uuids = ["GPU-aaa", "GPU-bbb", "GPU-ccc", "GPU-ddd"]
    assert select_visible(4, uuids, None) == [0, 1, 2, 3]
    assert select_visible(4, uuids, ["2", "0"]) == [2, 0]
    assert select_visible(4, uuids, ["GPU-ccc", "GPU-a"]) == [2, 0]
    assert select_visible(4, uuids, ["1", "7", "2"]) == [1]  # CUDA stops at the first invalid entry


# -- a sound run ---------------------------------------------------------------------------------------------------

def test_replayed_vllm_run_becomes_a_profile(tmp_path, standin, capsys):
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "3.2;14.9;15.3;15.1",
                         "--final", "0.6", extra=("--", "--max-model-len", "2048", "--enforce-eager"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    profile = load_profile(out)
    comps = profile.measurements.components
    # components: the record's log lines, through the project's vLLM log reader
    assert comps.weights.provenance.value == "engine" and comps.weights.bytes == round(0.4678 * GIB)
    assert comps.kv_cache.bytes == round(13.40 * GIB)
    assert comps.activations.bytes == round(0.50 * GIB) and comps.non_torch.bytes == round(0.03 * GIB)
    assert profile.measurements.kv_cache_tokens == 12200 * 16
    # engine settings from the log
    assert profile.engine.version == "0.8.2+cu124"
    assert profile.engine.gpu_memory_utilization == 0.9 and profile.engine.max_model_len == 2048
    # device readings: the scripted series, per GPU, provenance device
    dev = profile.measurements.device
    assert dev.provenance.value == "device" and dev.tool.startswith("stand-in device reader")
    assert dev.baseline_bytes == [round(0.5 * GIB)]
    assert dev.peak_bytes == [round(15.3 * GIB)]
    assert dev.final_bytes == [round(0.6 * GIB)]
    # workload, hardware, versions, source
    assert (profile.workload.batch_size, profile.workload.input_tokens, profile.workload.output_tokens) == (8, 512, 128)
    assert profile.hardware.gpu_name == "stand-in GPU (scripted, not a real device)"
    assert profile.hardware.driver == "stand-in driver 0.0"
    assert profile.hardware.memory_per_gpu_bytes == round(16.00 * GIB)  # the log's total_gpu_memory
    assert profile.source.kind == "measured-run" and profile.source.failure is None
    assert profile.source.software["pytest-llmsizer"]
    assert profile.engine.extra_args["max-model-len"] == "2048" and profile.engine.extra_args["enforce-eager"] is True
    # the engine got the workload and the passed-through arguments; its log is kept beside the profile
    log = out.with_suffix(".log").read_text()
    assert "stand-in engine (replay, not vLLM) got: --model facebook/opt-125m --tensor-parallel-size 1 " \
           "--batch-size 8 --input-len 512 --output-len 128 --max-model-len 2048 --enforce-eager" in log
    assert all(line in log for line in record_lines(OPT_RECORD))
    # integrity and validation printed on the calculator's core
    assert "LLM sizer validation" in captured.out and "INTEGRITY" in captured.out.upper()
    assert "peak 15.300" in captured.out


def test_default_command_is_vllm_bench_latency(tmp_path, standin, monkeypatch):
    """A STAND-IN named `vllm` on PATH (it replays a real log) receives the default command line."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "vllm"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} {HERE / 'profiler_standins.py'} --record '{OPT_RECORD}' "
                    f"--state {standin} --series 2.0 --final 0.5 --dwell 0.2 \"$@\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    write_state(standin, [0.5])
    out = tmp_path / "default.json"
    code = main(["profile", "vllm", "facebook/opt-125m", "--batch-size", "4", "--input-len", "256", "--output-len",
                 "32", "--dtype", "float32", "-o", str(out), "--device-reader", READER, "--no-validate"])
    assert code == 0
    log = out.with_suffix(".log").read_text()
    assert "got: bench latency --model facebook/opt-125m --tensor-parallel-size 1 --batch-size 4 --input-len 256 " \
           "--output-len 32 --dtype float32" in log
    profile = load_profile(out)
    assert profile.engine.extra_args["command"].endswith(
        "vllm bench latency --model facebook/opt-125m --tensor-parallel-size 1 --batch-size 4 --input-len 256 "
        "--output-len 32 --dtype float32")
    assert "`vllm bench latency`, i.e. vLLM's offline LLM class" in profile.source.notes


def test_validation_against_the_calculator_is_printed(tmp_path, standin, capsys):
    code, out = _profile(tmp_path, standin, "--record", LLAMA_RECORD, "--series", "15.0;72.0", "--final", "0.7",
                         model="meta-llama/Meta-Llama-3-8B")
    text = capsys.readouterr().out
    assert code == 0
    assert "weights" in text and "kv_cache" in text and "Excellent" in text
    assert load_profile(out).hardware.memory_per_gpu_bytes == round(79.22 * GIB)


def test_tensor_parallel_run_reads_each_rank_and_each_gpu(tmp_path, standin, monkeypatch):
    monkeypatch.setenv(GPUS_ENV, "3")  # three visible, the run uses two
    code, out = _profile(tmp_path, standin, "--log-file", str(HERE / "fixtures/vllm_logs/one_line_0_6_4_tp2.log"),
                         "--series", "10,10,0.4;40,41,0.4", "--final", "0.5,0.5,0.4", baseline=(0.5, 0.5, 0.4),
                         model="ibm-fms/Bamba-9.8b-1.8T-hf", tp=2, extra=("--no-validate",))
    assert code == 0
    profile = load_profile(out)
    assert profile.hardware.gpu_count == 2
    assert profile.measurements.device.peak_bytes == [40 * GIB, 41 * GIB]
    assert profile.measurements.device.baseline_bytes == [round(0.5 * GIB)] * 2
    kv = profile.measurements.components.kv_cache.per_gpu_bytes
    assert kv == [round(34.78 * GIB), round(34.96 * GIB)]  # the main process (rank 0) first
    assert "3 GPUs visible, the run used the first 2" in profile.source.notes


# -- failures ------------------------------------------------------------------------------------------------------

def test_crashed_engine_is_reported_with_the_log_tail_and_no_profile(tmp_path, standin, capsys):
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "3.0", "--final", "0.5",
                         "--exit", "3", "--dwell", "0.1")
    err = capsys.readouterr().err
    assert code == 1
    assert "run failed: the engine crashed (exit code 3)" in err
    assert "Model loading took 0.4678 GB" in err  # the log tail
    assert not out.exists() and not out.with_name("run.failed.json").exists()


def test_keep_failed_writes_a_profile_marked_failed(tmp_path, standin):
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "3.0", "--final", "0.5",
                         "--exit", "3", "--dwell", "0.1", extra=("--keep-failed",))
    assert code == 1 and not out.exists()
    failed = load_profile(out.with_name("run.failed.json"))
    assert failed.source.failure == "the engine crashed (exit code 3)"
    assert failed.measurements.device.peak_bytes == [3 * GIB]


def test_log_without_memory_lines_is_a_failed_run(tmp_path, standin, capsys):
    """SYNTHETIC edge case: an engine that exits 0 having printed no memory line (a made-up one-line log)."""
    log = tmp_path / "no-memory.log"
    log.write_text("INFO 01-01 00:00:00 engine started, then nothing about memory\n")
    code, out = _profile(tmp_path, standin, "--log-file", str(log), "--series", "3.0", "--final", "0.5",
                         "--dwell", "0.1", extra=("--keep-failed",))
    err = capsys.readouterr().err
    assert code == 1 and "run failed: the log could not be read into a profile" in err
    assert "no memory line found" in err
    failed = load_profile(out.with_name("run.failed.json"))  # the device readings only
    assert failed.measurements.components.present() == {}
    assert failed.measurements.device.peak_bytes == [3 * GIB] and failed.source.failure


def test_out_of_memory_exit_is_named(tmp_path, standin, capsys):
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "15.9", "--final", "0.5", "--oom",
                         "--dwell", "0.1", extra=("--keep-failed",))
    err = capsys.readouterr().err
    assert code == 1
    assert "run failed: out of memory (exit code 1): torch.OutOfMemoryError: CUDA out of memory" in err
    assert load_profile(out.with_name("run.failed.json")).source.failure.startswith("out of memory")


def test_peak_equal_to_baseline_is_a_failed_run(tmp_path, standin, capsys):
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "0.5;0.5", "--final", "0.5",
                         "--dwell", "0.1")
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "run failed: peak equals baseline" in err and "GPU 0 0.50 GiB" in err


def test_timeout_stops_the_engine_and_its_process_group(tmp_path, standin, capsys):
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "2.0", "--final", "0.5", "--hang",
                         "--dwell", "0.1", extra=("--timeout", "1.5"))
    err = capsys.readouterr().err
    assert code == 1 and "run failed: timeout" in err
    assert not out.exists()


def test_run_child_ends_workers_the_engine_left_behind(tmp_path):
    """An engine that exits while a worker (here a grandchild) still runs: the worker is ended, so it cannot hold
    GPU memory into the next run."""
    import time

    state = tmp_path / "s.json"
    write_state(state, [0.5])
    pidfile = tmp_path / "orphan.pid"
    script = (f"import subprocess,sys; p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
              f"open({str(pidfile)!r},'w').write(str(p.pid))")
    started = time.monotonic()
    run = run_child([sys.executable, "-c", script], log_path=tmp_path / "x.log", reader=DeviceStandIn(state),
                    hz=20, timeout=30.0)
    assert not run.timed_out and run.returncode == 0 and time.monotonic() - started < 20
    pid = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the orphaned worker {pid} outlived the run")


def test_run_child_kills_grandchildren_on_timeout(tmp_path):
    """The engine's workers (here a grandchild) die with it: the whole process group is stopped."""
    state = tmp_path / "s.json"
    write_state(state, [0.5])
    pidfile = tmp_path / "grandchild.pid"
    script = (f"import subprocess,sys,time; p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
              f"open({str(pidfile)!r},'w').write(str(p.pid)); time.sleep(60)")
    run = run_child([sys.executable, "-c", script], log_path=tmp_path / "x.log", reader=DeviceStandIn(state),
                    hz=20, timeout=1.0)
    assert run.timed_out and run.returncode is None
    pid = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        import time

        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {pid} survived the timeout")


def test_missing_engine_command_is_bad_input(tmp_path, standin, capsys):
    write_state(standin, [0.5])
    code = main(["profile", "vllm", "facebook/opt-125m", "--batch-size", "1", "--input-len", "8", "--output-len",
                 "8", "-o", str(tmp_path / "p.json"), "--device-reader", READER,
                 "--engine-cmd", "no-such-engine-xyz bench"])
    assert code == 2
    assert "'no-such-engine-xyz' was not found on PATH" in capsys.readouterr().err


def test_vllm_not_installed_is_said_clearly(tmp_path, standin, capsys, monkeypatch):
    write_state(standin, [0.5])
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["profile", "vllm", "facebook/opt-125m", "--batch-size", "1", "--input-len", "8", "--output-len",
                 "8", "-o", str(tmp_path / "p.json"), "--device-reader", READER])
    assert code == 2
    assert "vLLM is not installed here" in capsys.readouterr().err


def test_existing_output_is_not_overwritten(tmp_path, standin, capsys):
    out = tmp_path / "run.json"
    out.write_text("{}")
    code, _ = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "3", "--final", "0.5")
    assert code == 2 and "exists; refusing to overwrite it (pass --force" in capsys.readouterr().err
    assert out.read_text() == "{}"


def test_an_existing_log_beside_the_profile_is_not_overwritten_and_force_replaces_it(tmp_path, standin, capsys):
    log = tmp_path / "run.log"
    log.write_text("an earlier run's log\n")
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "3", "--final", "0.5")
    assert code == 2 and f"engine log {log}: exists; refusing" in capsys.readouterr().err
    assert log.read_text() == "an earlier run's log\n" and not out.exists()
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "3", "--final", "0.5",
                         extra=("--force",))
    assert code == 0 and out.is_file() and "an earlier run's log" not in log.read_text()


def test_an_engine_log_over_the_log_cap_is_a_clear_error_not_an_unbounded_read(tmp_path, standin, capsys,
                                                                              monkeypatch):
    monkeypatch.setenv("LLMSIZER_MAX_LOG_MIB", "0.001")  # 1 KiB: the replayed vLLM log is larger
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "3", "--final", "0.5")
    err = capsys.readouterr().err
    assert code == 2 and "run.log: file is" in err and "LLMSIZER_MAX_LOG_MIB" in err
    assert not out.exists()


def test_a_symlinked_output_is_refused_even_with_force(tmp_path, standin, capsys):
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    (tmp_path / "run.json").symlink_to(target)
    code, _ = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "3", "--final", "0.5",
                       extra=("--force",))
    assert code == 2 and "is a symbolic link" in capsys.readouterr().err
    assert target.read_text() == "{}"


def test_no_device_reader_here_is_said_clearly(tmp_path, capsys):
    code = main(["profile", "vllm", "facebook/opt-125m", "--batch-size", "1", "--input-len", "8", "--output-len",
                 "8", "-o", str(tmp_path / "p.json"), "--device-reader", "nvml",
                 "--engine-cmd", sys.executable])
    err = capsys.readouterr().err
    assert code == 2
    assert "nvidia-ml-py" in err or "NVML cannot start" in err


# -- the profiler stays out of the plugin and out of `estimate` ------------------------------------------------------

def test_plugin_and_estimate_never_import_the_profiler():
    code = (
        "import sys, io, contextlib\n"
        "import pytest_llmsizer.plugin\n"
        "from pytest_llmsizer.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['estimate', 'meta-llama/Llama-3.1-8B', '--gpu', 'H100', '--json'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('pytest_llmsizer.profiler')))\n"
    )
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
    assert "pytest_llmsizer.profiler" not in result.stderr  # -X importtime lists every module imported
    assert "pytest_llmsizer.commands.profile" in result.stderr  # the parser is registered, its engine is not loaded


def test_profile_json_is_a_valid_native_profile(tmp_path, standin):
    code, out = _profile(tmp_path, standin, "--record", OPT_RECORD, "--series", "3;15", "--final", "0.5",
                         extra=("--no-validate",))
    assert code == 0
    assert main(["check", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["format"] == "llmsizer-profile" and data["source"]["software"]["python"]


class _FailingStandIn(DeviceStandIn):
    """STAND-IN device whose third reading fails, like a GPU falling off the bus."""

    def used_bytes(self) -> list[int]:
        if self.reads >= 3:
            raise OSError("stand-in: the device stopped answering")
        return super().used_bytes()


def test_a_device_that_stops_answering_is_a_clear_error(tmp_path):
    state = tmp_path / "s.json"
    write_state(state, [0.5])
    from pytest_llmsizer.errors import LlmsizerError

    with pytest.raises(LlmsizerError, match="reading device memory failed during the run: OSError: stand-in"):
        run_child([sys.executable, "-c", "import time; time.sleep(0.5)"], log_path=tmp_path / "x.log",
                  reader=_FailingStandIn(state), hz=50, timeout=10)


def test_device_reader_specs_are_checked(standin):
    from pytest_llmsizer.errors import LlmsizerError
    from pytest_llmsizer.profiler.devices import open_reader

    with pytest.raises(LlmsizerError, match="expected auto, nvml, amdsmi or module:attribute"):
        open_reader("gpu")
    with pytest.raises(LlmsizerError, match="cannot load it"):
        open_reader("no_such_module_xyz:reader")
    with pytest.raises(LlmsizerError, match="is not a DeviceReader"):
        open_reader("profiler_standins:engine_command")  # returns a command line, not a reader
    assert open_reader("profiler_standins:device_from_env").tool.startswith("stand-in")


def test_the_log_tail_is_bounded_and_cleaned(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("early line\n" + "x" * 5_000_000 + "\n\x1b[31mred\x1b[0m CUDA out of memory\n")
    run = ChildRun(command=["vllm"], returncode=1, timed_out=False, seconds=1.0, log_path=log,
                   trace=summarize([0], [], [0]))
    tail = run.log_tail()
    assert len(tail) < 3000 and tail.endswith("red CUDA out of memory") and "\x1b" not in tail
    log.unlink()  # read once: the OOM line comes from the text already read
    assert run.out_of_memory_line() == "\x1b[31mred\x1b[0m CUDA out of memory"
