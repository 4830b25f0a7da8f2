"""``llmsizer profile --campaign``: the guide's YAML shape, errors with line numbers, expansion, --dry-run, and an
unattended run (failures logged, resume after Ctrl-C), with the STAND-IN replay engine and device reader of
tests/profiler_standins.py (no GPU, no vLLM here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from profiler_standins import GPUS_ENV, STATE_ENV, write_state

from pytest_llmsizer.cli import main
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.profiler.campaign import CampaignError, parse_campaign
from pytest_llmsizer.profiler.campaign_run import CAMPAIGN_LOG

HERE = Path(__file__).resolve().parent
STANDIN = str(HERE / "profiler_standins.py")
OPT_RECORD = "SystemPanic/vllm-windows#6"

# The original guide's configs/validation-campaign.yaml (9 items; notes/llm-sizer-origin.md 5.1), in its own keys
# (hf_model_id, container_name, dtype, notes): the original batch profilers could not load it because of `notes`.
GUIDE_CAMPAIGN = """\
models:
  - hf_model_id: mistralai/Mistral-7B-Instruct-v0.3
    container_name: vllm-validator
    tensor_parallel_size: 1
    input_lengths: [512]
    output_lengths: [512]
    batch_sizes: [1, 4, 8]
    dtype: float16
    notes: "baseline 7B"
  - hf_model_id: Qwen/Qwen2.5-32B-Instruct
    container_name: vllm-validator
    tensor_parallel_size: 2
    input_lengths: [512]
    output_lengths: [512]
    batch_sizes: [1, 4]
    dtype: float16
    notes: "32B TP2"
  - hf_model_id: zai-org/GLM-4.5-Air
    container_name: vllm-validator
    tensor_parallel_size: 4
    input_lengths: [256, 512]
    output_lengths: [256, 512]
    batch_sizes: [1, 4, 8]
    dtype: float16
    notes: "MoE"
  - hf_model_id: 01-ai/Yi-34B-Chat
    container_name: vllm-validator
    tensor_parallel_size: 4
    input_lengths: [512]
    output_lengths: [512]
    batch_sizes: [1, 4]
    dtype: float16
    notes: "34B"
  - hf_model_id: zai-org/GLM-4.5
    container_name: vllm-validator
    tensor_parallel_size: 8
    input_lengths: [256, 512]
    output_lengths: [256, 512]
    batch_sizes: [1, 4, 8]
    dtype: float16
    notes: "large MoE"
  - hf_model_id: Qwen/Qwen2.5-72B-Instruct
    container_name: vllm-validator
    tensor_parallel_size: 4
    input_lengths: [512]
    output_lengths: [512]
    batch_sizes: [1, 2]
    dtype: float16
    notes: "72B"
  - hf_model_id: mistralai/Mistral-7B-Instruct-v0.3
    container_name: vllm-validator
    tensor_parallel_size: 1
    input_lengths: [512]
    output_lengths: [512]
    batch_sizes: [1, 4]
    dtype: float16
    quantization: int8
    notes: "int8"
  - hf_model_id: deepseek-ai/deepseek-coder-33b-instruct
    container_name: vllm-validator
    tensor_parallel_size: 4
    input_lengths: [512]
    output_lengths: [512]
    batch_sizes: [1, 4]
    dtype: float16
    notes: "33B"
  - hf_model_id: codellama/CodeLlama-34b-Instruct-hf
    container_name: vllm-validator
    tensor_parallel_size: 4
    input_lengths: [512]
    output_lengths: [512]
    batch_sizes: [1, 4]
    dtype: float16
    notes: "34B"
"""


def test_the_guides_campaign_expands_to_its_cartesian_product(tmp_path):
    campaign = parse_campaign(GUIDE_CAMPAIGN, tmp_path / "validation-campaign.yaml")
    assert len(campaign.runs) == 3 + 2 + 12 + 2 + 12 + 2 + 2 + 2 + 2
    first = campaign.runs[0]
    assert (first.model, first.tensor_parallel_size, first.batch_size, first.input_len, first.output_len) == (
        "mistralai/Mistral-7B-Instruct-v0.3", 1, 1, 512, 512)
    assert first.dtype == "float16" and first.line == 2 and first.engine == "vllm"
    glm = [r for r in campaign.runs if r.model == "zai-org/GLM-4.5-Air"]
    # loop order of the original batch profilers: input -> output -> batch
    assert [(r.input_len, r.output_len, r.batch_size) for r in glm[:4]] == [(256, 256, 1), (256, 256, 4),
                                                                            (256, 256, 8), (256, 512, 1)]
    int8 = [r for r in campaign.runs if "--quantization" in r.engine_args]
    assert len(int8) == 2 and int8[0].engine_args == ("--quantization", "int8")
    assert int8[0].command()[:3] == ["vllm", "bench", "latency"]
    assert "--dtype float16 --quantization int8" in " ".join(int8[0].command())
    assert len({r.run_id for r in campaign.runs}) == len(campaign.runs)


def test_transformers_entries_run_as_child_profilers(tmp_path):
    text = ("engine: transformers\nrandom_weights: true\nmodels:\n  - model_id: org--model.json\n"
            "    input_lengths: [128]\n    output_lengths: [16]\n    batch_sizes: [2]\n    dtype: bfloat16\n")
    (run,) = parse_campaign(text, tmp_path / "c.yaml").runs
    assert run.run_id == "org--model--transformers--tp1--bs2--in128--out16--random"
    assert run.command(tmp_path / "o.json")[1:] == [
        "-m", "pytest_llmsizer.cli", "profile", "transformers", "org--model.json", "--batch-size", "2",
        "--input-len", "128", "--output-len", "16", "--random-weights", "--dtype", "bfloat16",
        "-o", str(tmp_path / "o.json"), "--force"]


@pytest.mark.parametrize(("text", "expected"), [
    ("models:\n  - model_id: a/b\n    input_lengths: [512]\n    output_lengths: [512]\n    batch_sizes: [1]\n"
     "    batch_size: 4\n", ":6: models[0].batch_size: unknown key"),
    ("models:\n  - model_id: a/b\n    input_lengths: [512]\n    output_lengths: [0]\n    batch_sizes: [1]\n",
     ":4: models[0].output_lengths: expected a non-empty list of positive integers"),
    ("models:\n  - model_id: a/b\n    input_lengths: [512]\n    output_lengths: [5]\n    batch_sizes: [1]\n"
     "  - input_lengths: [1]\n    output_lengths: [1]\n    batch_sizes: [1]\n", ":6: models[1]: needs model_id"),
    ("engine: sglang\nmodels:\n  - model_id: a/b\n    input_lengths: [1]\n    output_lengths: [1]\n"
     "    batch_sizes: [1]\n", ":1: engine: expected one of vllm, transformers, got 'sglang'"),
    ("models:\n  - model_id: a/b\n    input_lengths: [1]\n    output_lengths: [1]\n    batch_sizes: [1]\n"
     "    tensor_parallel_size: two\n", ":6: models[0].tensor_parallel_size: expected an integer >= 1"),
    ("models:\n  - model_id: a/b\n    input_lengths: [1\n", ":4: not valid YAML"),
    ("models: []\n", ":1: models: expected a non-empty list"),
    ("models:\n  - model_id: a/b\n    engine: transformers\n    tensor_parallel_size: 2\n    input_lengths: [1]\n"
     "    output_lengths: [1]\n    batch_sizes: [1]\n", ":4: models[0].tensor_parallel_size: the transformers "
     "profiler runs on one GPU"),
    ("timeout: -5\nmodels:\n  - model_id: a/b\n    input_lengths: [1]\n    output_lengths: [1]\n"
     "    batch_sizes: [1]\n", ":1: timeout: expected a positive number of seconds"),
])
def test_campaign_errors_name_the_line(tmp_path, text, expected):
    with pytest.raises(CampaignError) as err:
        parse_campaign(text, tmp_path / "c.yaml")
    assert expected in str(err.value)
    assert str(tmp_path / "c.yaml") in str(err.value)


def test_every_problem_is_reported_at_once(tmp_path):
    text = ("models:\n  - model_id: a/b\n    input_lengths: [1]\n    output_lengths: []\n    batch_sizes: [1]\n"
            "    colour: red\n")
    with pytest.raises(CampaignError) as err:
        parse_campaign(text, tmp_path / "c.yaml")
    message = str(err.value)
    assert "2 problem(s)" in message and ":4: models[0].output_lengths" in message and ":6: models[0].colour" in message


def test_cli_reports_campaign_errors_with_lines_and_exit_2(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  - model_id: a/b\n    input_lengths: [1]\n    output_lengths: [1]\n    batch_sizes: x\n")
    assert main(["profile", "--campaign", str(path), "--dry-run"]) == 2
    assert f"{path}:5: models[0].batch_sizes: expected a non-empty list" in capsys.readouterr().err


def test_dry_run_prints_one_line_per_run_and_the_count_without_a_gpu(tmp_path, capsys):
    path = tmp_path / "validation-campaign.yaml"
    path.write_text(GUIDE_CAMPAIGN)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    campaign = parse_campaign(GUIDE_CAMPAIGN, path)
    (out_dir / f"{campaign.runs[1].run_id}.json").write_text("{}")  # one already done
    assert main(["profile", "--campaign", str(path), "--out-dir", str(out_dir), "--dry-run",
                 "--device-reader", "no.such.module:reader"]) == 0  # the reader is never opened
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 39 + 1
    assert lines[0].startswith(" 1. vllm         mistralai/Mistral-7B-Instruct-v0.3  tp=1 bs=1 in=512 out=512")
    assert lines[1].startswith(" 2. skip (done) vllm")
    assert lines[-1] == "39 planned runs (38 to run, 1 already done)"


def _campaign_file(tmp_path: Path, state: Path, *, crash_model: bool, interrupt_marker: Path | None = None) -> Path:
    replay = [sys.executable, STANDIN, "--record", OPT_RECORD, "--state", str(state), "--series", "3.0;15.2",
              "--final", "0.6", "--dwell", "0.15"]
    models = [{
        "model_id": "facebook/opt-125m", "input_lengths": [512], "output_lengths": [64, 128], "batch_sizes": [1],
        "engine_cmd": replay + (["--interrupt-parent-once", str(interrupt_marker)] if interrupt_marker else []),
    }]
    if crash_model:
        models.append({"model_id": "facebook/opt-125m", "input_lengths": [256], "output_lengths": [32],
                       "batch_sizes": [2], "engine_cmd": [*replay, "--exit", "5"], "notes": "crashes"})
    path = tmp_path / "campaign.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"engine": "vllm", "timeout": 60, "models": models}, sort_keys=False))
    return path


@pytest.fixture
def standin(tmp_path, monkeypatch):
    state = tmp_path / "device-state.json"
    write_state(state, [0.5])
    monkeypatch.setenv(STATE_ENV, str(state))
    monkeypatch.setenv(GPUS_ENV, "1")
    monkeypatch.syspath_prepend(str(HERE))
    return state


def test_campaign_runs_logs_failures_without_stopping_and_resumes(tmp_path, standin, capsys):
    path = _campaign_file(tmp_path, standin, crash_model=True)
    out_dir = tmp_path / "out"
    argv = ["profile", "--campaign", str(path), "--out-dir", str(out_dir), "--device-reader",
            "profiler_standins:device_from_env", "--sample-hz", "40"]
    assert main(argv) == 1  # one run failed
    captured = capsys.readouterr()
    assert "campaign: 2 done, 0 skipped (already in the output directory), 1 failed" in captured.out
    assert "the engine crashed (exit code 5)" in captured.out
    assert "[" in captured.err and "ETA" in captured.err and "1/3" in captured.err
    profiles = sorted(p.name for p in out_dir.glob("*.json"))
    assert profiles == ["facebook--opt-125m--vllm--tp1--bs1--in512--out128.json",
                        "facebook--opt-125m--vllm--tp1--bs1--in512--out64.json"]
    profile = load_profile(out_dir / profiles[1])
    assert profile.workload.output_tokens == 64 and profile.measurements.device.peak_bytes == [round(15.2 * 2**30)]
    log = [json.loads(line) for line in (out_dir / CAMPAIGN_LOG).read_text().splitlines()]
    assert [e["status"] for e in log] == ["done", "done", "failed"]
    assert log[2]["reason"] == "the engine crashed (exit code 5)" and "Model loading took" in log[2]["log_tail"]
    assert (out_dir / "logs" / "facebook--opt-125m--vllm--tp1--bs2--in256--out32.log").is_file()

    # resume: what is done is skipped, the failed run is tried again
    assert main(argv) == 1
    assert "campaign: 0 done, 2 skipped (already in the output directory), 1 failed" in capsys.readouterr().out
    assert len((out_dir / CAMPAIGN_LOG).read_text().splitlines()) == 4


def test_a_symlinked_campaign_log_stops_the_campaign_before_any_run(tmp_path, standin, capsys):
    path = _campaign_file(tmp_path, standin, crash_model=False)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not ours\n")
    (out_dir / CAMPAIGN_LOG).symlink_to(elsewhere)
    assert main(["profile", "--campaign", str(path), "--out-dir", str(out_dir), "--device-reader",
                 "profiler_standins:device_from_env", "--sample-hz", "40"]) == 2
    err = capsys.readouterr().err
    assert f"campaign log {out_dir / CAMPAIGN_LOG}: is a symbolic link" in err
    assert elsewhere.read_text() == "not ours\n" and list(out_dir.glob("*.json")) == []


def test_campaign_resumes_after_ctrl_c(tmp_path, standin):
    marker = tmp_path / "interrupted.marker"
    path = _campaign_file(tmp_path, standin, crash_model=False, interrupt_marker=marker)
    out_dir = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    cmd = [sys.executable, "-m", "pytest_llmsizer.cli", "profile", "--campaign", str(path), "--out-dir",
           str(out_dir), "--device-reader", "profiler_standins:device_from_env", "--sample-hz", "40", "--no-validate"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 130, first.stderr
    assert "interrupted" in first.stderr
    assert list(out_dir.glob("*.json")) == []  # the interrupted run wrote nothing
    log = [json.loads(line) for line in (out_dir / CAMPAIGN_LOG).read_text().splitlines()]
    assert [e["status"] for e in log] == ["interrupted"]
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "campaign: 2 done, 0 skipped" in second.stdout
    assert len(list(out_dir.glob("*.json"))) == 2


def test_campaign_needs_an_out_dir_and_no_engine(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  - model_id: a/b\n    input_lengths: [1]\n    output_lengths: [1]\n"
                    "    batch_sizes: [1]\n")
    assert main(["profile", "--campaign", str(path)]) == 2
    assert "--campaign needs --out-dir" in capsys.readouterr().err
    assert main(["profile"]) == 2
    assert "name an engine" in capsys.readouterr().err


def test_the_readme_campaign_example_is_a_valid_campaign(tmp_path):
    readme = (HERE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Profiling", 1)[1].split("\n## ", 1)[0]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    campaign = parse_campaign(block, tmp_path / "README-example.yaml")
    assert [r.batch_size for r in campaign.runs] == [1, 4, 8]
    assert campaign.runs[0].engine_cmd == ("docker", "exec", "vllm-validator", "vllm", "bench", "latency")
    assert campaign.runs[0].timeout == 1800 and campaign.runs[0].dtype == "float16"


def test_the_readme_vllm_example_passes_engine_arguments_through():
    from pytest_llmsizer.cli import build_parser

    args = build_parser().parse_args([
        "profile", "vllm", "meta-llama/Llama-3.1-8B", "--tp", "1", "--batch-size", "8", "--input-len", "512",
        "--output-len", "512", "-o", "p.json", "--", "--max-model-len", "4096", "--gpu-memory-utilization", "0.9"])
    assert args.kind == "vllm" and args.model == "meta-llama/Llama-3.1-8B"
    assert args.engine_args == ["--max-model-len", "4096", "--gpu-memory-utilization", "0.9"]
