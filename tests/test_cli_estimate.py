"""``llmsizer estimate`` end to end: the installed console script in a subprocess (a contract scripts depend on)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmsizer.units import GiB

SHARED_CONFIGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "model-configs"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("llmsizer")
    cmd = [exe] if exe else [sys.executable, "-m", "pytest_llmsizer.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, check=False)


def test_json_output_contract():
    proc = run("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "NVIDIA H100 80GB HBM3", "--engine-version",
               "0.11.0", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    per_gpu = out["per_gpu_bytes"]
    for key in ("weights", "kv_cache", "activations", "non_torch", "cuda_graphs", "total"):
        assert isinstance(per_gpu[key], int), key
    assert per_gpu["total"] == sum(per_gpu[k] for k in per_gpu if k != "total")
    assert isinstance(out["kv_cache_tokens"], int) and out["kv_cache_tokens"] % 16 == 0
    assert out["max_concurrency"] > 0
    inputs = out["inputs"]
    # every input as resolved, defaults included
    assert inputs["gpu_memory_utilization"] == 0.9
    assert inputs["max_model_len"] == 131072
    assert inputs["max_num_seqs"] == 1024 and inputs["max_num_batched_tokens"] == 8192
    assert inputs["block_size"] == 16 and inputs["tensor_parallel_size"] == 1
    assert inputs["kv_cache_dtype"] == "auto" and inputs["dtype"] == "bfloat16"
    # KV pool = 0.9 x 79.18 GiB - weights - activations - non-torch (vLLM < 0.21: graphs outside the budget)
    requested = int(0.9 * inputs["gpu_memory_bytes"])
    assert per_gpu["kv_cache"] == requested - per_gpu["weights"] - per_gpu["activations"] - per_gpu["non_torch"]


def test_table_output_labels_units():
    proc = run("estimate", "Qwen/Qwen3-8B", "--gpu", "H200", "--tp", "2", "--max-model-len", "32768")
    assert proc.returncode == 0, proc.stderr
    assert "GiB" in proc.stdout and "GB" in proc.stdout
    assert "KV cache capacity" in proc.stdout and "max concurrency at 32,768 tokens" in proc.stdout
    assert "no vLLM version given; assumed 0.11" in proc.stdout


def test_options_change_the_answer():
    base = json.loads(run("estimate", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "79.18", "--json").stdout)
    fp8 = json.loads(run("estimate", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "79.18", "--json",
                         "--kv-cache-dtype", "fp8").stdout)
    tp2 = json.loads(run("estimate", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "79.18", "--json",
                         "--tp", "2").stdout)
    assert fp8["kv_cache_tokens"] > 1.9 * base["kv_cache_tokens"]
    assert tp2["per_gpu_bytes"]["weights"] < 0.51 * base["per_gpu_bytes"]["weights"]
    assert base["inputs"]["gpu_memory_bytes"] == round(79.18 * GiB)


def test_transformers_workload():
    proc = run("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "RTX 4090", "--engine", "transformers",
               "--batch-size", "2", "--input-len", "1000", "--output-len", "24", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["per_gpu_bytes"]["kv_cache"] == 2 * 1023 * 131_072  # 1000 + 24 - 1 cached tokens per sequence
    assert out["kv_cache_tokens"] == 2046


def test_local_config_with_text_config(tmp_path: Path):
    cfg = json.loads((SHARED_CONFIGS / "meta-llama--Llama-3.1-8B.json").read_text())
    nested = {"model_type": "wrapper", "text_config": {k: v for k, v in cfg.items() if not k.startswith("_")}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(nested))
    proc = run("estimate", str(path), "--gpu-memory-gib", "80", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["per_gpu_bytes"]["weights"] / GiB == pytest.approx(14.99, abs=0.01)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("estimate", "no-such/model-xyz", "--gpu", "H100"), "unknown model"),
        (("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "Voodoo 5"), "unknown GPU"),
        (("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--tp", "0"), "positive integer"),
        (("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--gpu-memory-utilization", "1.5"), "(0, 1]"),
        (("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--kv-cache-dtype", "fp7"), "kv-cache-dtype"),
        (("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--batch-size", "2"), "go together"),
        (("estimate", "meta-llama/Llama-3.1-8B"), "no GPU given"),
        (("estimate", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--bogus"), "unrecognized arguments"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, fragment):
    proc = run(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr


def test_schema_command_prints_the_shipped_schema():
    proc = run("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["title"] and "format_version" in schema["required"]
