"""``llmsizer profile transformers`` and benchmarks/gpu_profiles.py, as far as they run without a GPU.

The measurement itself needs torch with a CUDA/ROCm GPU (the allocator counters and device readings exist only
there): those tests run where that is present and are skipped here with that reason. Everything around it (config
files, model ids, profile assembly, the campaign and the GPU script up to the first GPU call) runs everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmsizer.cli import main
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.profiler.assemble import RunFacts, TransformersMeasurement, model_id_for, transformers_profile
from pytest_llmsizer.profiler.devices import DeviceInfo
from pytest_llmsizer.profiler.sampler import summarize
from pytest_llmsizer.profiler.transformers_run import read_config_file

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT.parent / "shared" / "data" / "model-configs"
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None


def _cuda() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return bool(torch.cuda.is_available())


GPU = pytest.mark.skipif(
    not (HAS_TRANSFORMERS and _cuda()),
    reason="needs torch and transformers with a CUDA/ROCm GPU: the allocator counters and device memory readings "
           "that the transformers profiler measures exist only there (none on this machine)",
)
MiB = 2**20


def test_config_files_keep_the_architecture_and_drop_provenance():
    config = read_config_file(CONFIGS / "meta-llama--Llama-3.1-8B.json")
    assert config["num_key_value_heads"] == 8 and config["model_type"] == "llama"
    assert not any(k.startswith("_") for k in config)


def test_a_file_without_model_type_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(LlmsizerError, match=r"\$\.model_type: expected a Hugging Face config.json"):
        read_config_file(bad)


def test_model_ids_of_configs():
    llama = read_config_file(CONFIGS / "meta-llama--Llama-3.2-1B-Instruct.json")
    assert model_id_for("x/meta-llama--Llama-3.2-1B-Instruct.json", llama, "whatever.json") == \
        "meta-llama/Llama-3.2-1B-Instruct"  # its _name_or_path
    qwen = read_config_file(CONFIGS / "Qwen--Qwen3-30B-A3B.json")
    assert model_id_for("c/Qwen--Qwen3-30B-A3B.json", qwen, "Qwen--Qwen3-30B-A3B.json") == "Qwen/Qwen3-30B-A3B"
    assert model_id_for("org/model", None, None) == "org/model"
    assert model_id_for("./ckpt", qwen, "config.json") == "./ckpt"


def _facts(trace, batch=8, output=64) -> RunFacts:
    return RunFacts(model="meta-llama/Llama-3.2-1B-Instruct", engine="transformers", batch_size=batch, input_len=512,
                    output_len=output, tensor_parallel_size=1,
                    devices=(DeviceInfo(0, "stand-in GPU (not a device)", "other", 140 * 1024 * MiB, None,
                                        "stand-in driver"),),
                    device_tool="stand-in", trace=trace, reference="test (synthetic numbers)")


# SYNTHETIC numbers: they test the arithmetic of the assembly, not any model's memory.
SYNTHETIC = TransformersMeasurement(
    weights_allocated=2_472 * MiB, reserved_after_load=2_480 * MiB, device_used_after_load=3_500 * MiB,
    kv_cache_bytes=144 * MiB, kv_cache_tokens=575, allocator_peak=3_000 * MiB, runtime_total_bytes=140 * 1024 * MiB,
    num_parameters=1_235_814_400, dtype="bfloat16", generated_tokens=64,
)


def test_transformers_profile_measures_and_derives_only_the_remainder():
    trace = summarize([500 * MiB], [(1.0, [3_500 * MiB]), (2.0, [4_100 * MiB])], [1_000 * MiB])
    profile, failure = transformers_profile(SYNTHETIC, _facts(trace), config=None)
    assert failure is None
    c = profile.measurements.components
    assert c.weights.bytes == 2_472 * MiB and c.weights.provenance.value == "device"
    assert c.kv_cache.bytes == 144 * MiB and c.kv_cache.provenance.value == "device"
    assert c.activations.bytes == (3_000 - 2_472 - 144) * MiB and c.activations.provenance.value == "derived"
    assert "allocator peak during generate()" in c.activations.note
    assert c.non_torch.bytes == (3_500 - 500 - 2_480) * MiB
    assert c.total.bytes == (4_100 - 500) * MiB
    assert profile.measurements.kv_cache_tokens == 575 * 8
    assert profile.measurements.device.peak_bytes == [4_100 * MiB]
    assert profile.engine.name == "transformers" and profile.model.num_parameters == 1_235_814_400
    assert profile.hardware.memory_per_gpu_bytes == 140 * 1024 * MiB


def test_transformers_run_without_growth_or_short_generation_fails():
    flat = summarize([500 * MiB], [(1.0, [500 * MiB])], [500 * MiB])
    _, failure = transformers_profile(SYNTHETIC, _facts(flat), config=None)
    assert failure.startswith("peak equals baseline")
    grew = summarize([500 * MiB], [(1.0, [4_000 * MiB])], [600 * MiB])
    _, failure = transformers_profile(SYNTHETIC, _facts(grew, output=128), config=None)
    assert failure == "generate() produced 64 new tokens, not the 128 asked for"


@pytest.mark.skipif(HAS_TORCH and HAS_TRANSFORMERS, reason="torch and transformers are installed here")
def test_missing_torch_is_said_before_any_gpu_work(tmp_path, capsys):
    code = main(["profile", "transformers", str(CONFIGS / "HuggingFaceTB--SmolLM2-135M-Instruct.json"),
                 "--random-weights", "--batch-size", "1", "--input-len", "16", "--output-len", "4",
                 "-o", str(tmp_path / "p.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "needs PyTorch" in err or "needs Hugging Face transformers" in err
    assert not (tmp_path / "p.json").exists()


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch (not installed here) to build cache tensors")
def test_cache_bytes_count_each_tensor_once():
    import torch

    from pytest_llmsizer.profiler.transformers_run import cache_bytes, cached_tokens

    k = torch.zeros(2, 4, 10, 8, dtype=torch.bfloat16)
    v = torch.zeros(2, 4, 10, 8, dtype=torch.bfloat16)
    legacy = ((k, v), (k, v))  # the same tensors twice: counted once
    assert cache_bytes(legacy) == 2 * (2 * 4 * 10 * 8 * 2)
    assert cached_tokens(legacy) == 10


@GPU
def test_transformers_profile_on_a_real_gpu(tmp_path):
    out = tmp_path / "smol.json"
    code = main(["profile", "transformers", str(CONFIGS / "HuggingFaceTB--SmolLM2-135M-Instruct.json"),
                 "--random-weights", "--batch-size", "2", "--input-len", "64", "--output-len", "8", "-o", str(out)])
    assert code == 0
    profile = load_profile(out)
    c = profile.measurements.components
    assert c.weights.bytes >= profile.model.num_parameters * 2  # bf16
    assert c.kv_cache.bytes > 0 and c.total.bytes > c.weights.bytes
    dev = profile.measurements.device
    assert dev.peak_bytes[0] > dev.baseline_bytes[0]
    assert profile.source.software["torch"] and profile.hardware.driver


# -- benchmarks/gpu_profiles.py up to the first GPU call ------------------------------------------------------------

def _script(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_profiles.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_gpu_script_copies_its_configs_and_plans_six_architectures(tmp_path):
    configs = tmp_path / "gpu-configs"
    prepared = _script("prepare", "--dest", str(configs), "--no-wheels")
    assert prepared.returncode == 0, prepared.stderr
    names = sorted(p.name for p in configs.iterdir())
    assert len(names) == 6 and "Qwen--Qwen3-30B-A3B.json" in names
    for name in names:
        assert (configs / name).read_bytes() == (CONFIGS / name).read_bytes()
    plan = _script("run", "--configs", str(configs), "--out-dir", str(tmp_path / "out"), "--dry-run")
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.strip().splitlines()
    assert lines[-1] == "7 planned runs (7 to run, 0 already done)"
    assert sum("meta-llama--Llama-3.1-8B.json" in line for line in lines) == 2  # two batch sizes
    assert all("random-weights" in line and "transformers" in line for line in lines[:-1])


@pytest.mark.skipif(_cuda(), reason="a GPU is here: the real run belongs to the GPU machine, not the test suite")
def test_gpu_script_runs_until_it_needs_the_gpu(tmp_path):
    configs = tmp_path / "gpu-configs"
    assert _script("prepare", "--dest", str(configs), "--no-wheels").returncode == 0
    out = tmp_path / "out"
    result = _script("run", "--configs", str(configs), "--out-dir", str(out))
    assert result.returncode == 1  # every run failed: no GPU (or no torch) here
    assert "campaign: 0 done, 0 skipped (already in the output directory), 7 failed" in result.stdout
    log = [json.loads(line) for line in (out / "campaign-log.jsonl").read_text().splitlines()]
    assert len(log) == 7
    assert all(("needs PyTorch" in e["reason"] or "needs a CUDA or ROCm GPU" in e["reason"]) for e in log)


def test_a_stand_in_build_phase_is_left_out_of_the_peak():
    from pytest_llmsizer.profiler.sampler import summarize

    # readings: baseline 100; the from_config build reaches 900 (a tied lm_head built, then dropped); after the
    # build and empty_cache the run peaks at 700
    samples = [(0.5, [400]), (1.0, [900]), (2.0, [500]), (3.0, [700]), (4.0, [650])]
    whole = summarize([100], samples, [120])
    assert whole.peak == [900] and whole.peak_from_s == 0.0
    trimmed = summarize([100], samples, [120], after_s=1.5)
    assert trimmed.peak == [700] and trimmed.peak_at_s == [3.0] and trimmed.peak_from_s == 1.5
    # the reading after exit still counts
    assert summarize([100], samples, [800], after_s=1.5).peak == [800]
