"""The committed profiles: every one loads and names its source, and each importer's output is up to date.

The qualifying-record counts are computed here from the JSONL files themselves, independently of the importers, so a
bug in an importer's filter shows up as a count mismatch. Each importer's ``--check`` runs here (the CI drift check).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.profiler.campaign import load_campaign
from pytest_llmsizer.units import GiB, MiB

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILES = REPO_ROOT / "profiles"
SHARED_LOGS = REPO_ROOT.parent / "shared" / "data" / "vllm-startup-logs"

ALL_PROFILE_FILES = sorted(PROFILES.rglob("*.json"))

SOURCES = {
    # shared file -> (profile folder, importer script, schema's GPU field, schema's memory field)
    "issue-threads.jsonl": ("vllm-issue-threads", "import_issue_threads.py", "gpu_name", "total_gpu_memory_gib"),
    "notebooks-and-docs.jsonl": ("vllm-notebooks-and-docs", "import_notebooks_and_docs.py", "gpu_name",
                                 "total_gpu_memory_gib"),
    "vme-dev.jsonl": ("vme-dev", "import_vme_dev.py", "accelerator", "gpu_total_gib"),
}

GPU_FOLDER = PROFILES / "gpu-transformers"
GPU_CAMPAIGN = REPO_ROOT / "benchmarks" / "gpu_profiles.yaml"
GPU_PROFILE_FILES = sorted(GPU_FOLDER.glob("*.json"))
SHARED_CONFIGS = REPO_ROOT.parent / "shared" / "data" / "model-configs"

NOT_IMPORTED_DUPLICATES = {("notebooks-and-docs.jsonl", "noonghunna/club-3090#612")}
"""Records that repeat a log another file already holds (the importer lists them with that reason)."""


def _records(name: str) -> list[dict[str, Any]]:
    with (SHARED_LOGS / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _qualifies(name: str, record: dict[str, Any]) -> bool:
    """Names its model AND (its GPU or its GPU memory), and is not a known duplicate."""
    _, _, gpu, memory = SOURCES[name]
    has_gpu = bool(record.get(gpu)) or record.get(memory) is not None
    return bool(record.get("model")) and has_gpu and (name, record.get("source")) not in NOT_IMPORTED_DUPLICATES


def _reference(name: str, record: dict[str, Any]) -> str:
    if name == "vme-dev.jsonl":
        return f"{record['source']}, record {record['id']}"
    return record["source"]


def test_profiles_folder_has_profiles() -> None:
    assert ALL_PROFILE_FILES, f"no *.json profile under {PROFILES}"


@pytest.mark.parametrize(
    "path", ALL_PROFILE_FILES, ids=[str(p.relative_to(PROFILES)) for p in ALL_PROFILE_FILES]
)
def test_profile_loads_and_names_its_source(path: Path) -> None:
    profile = load_profile(path)
    assert profile.source.reference.strip(), f"{path} does not name its source"
    assert not profile.synthetic


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_one_profile_per_qualifying_record(name: str) -> None:
    folder = PROFILES / SOURCES[name][0]
    qualifying = [r for r in _records(name) if _qualifies(name, r)]
    files = sorted(folder.glob("*.json"))
    assert len(files) == len(qualifying)

    committed: Counter[tuple[str, str | None]] = Counter()
    for path in files:
        profile = load_profile(path)
        assert profile.source.kind == "vllm-log"
        assert profile.source.original_format == f"vllm-startup-log ({name} record)"
        for comp in profile.measurements.components.present().values():
            assert comp.provenance.value in ("engine", "derived")
        committed[(profile.source.reference, profile.model.name_in_source)] += 1
    expected = Counter((_reference(name, r), r["model"]) for r in qualifying)
    assert committed == expected


def test_gpu_profiles_are_the_campaign_runs() -> None:
    """profiles/gpu-transformers holds one profile per run of benchmarks/gpu_profiles.yaml, named by its run id."""
    planned = {run.run_id for run in load_campaign(GPU_CAMPAIGN).runs}
    assert {p.stem for p in GPU_PROFILE_FILES} == planned


@pytest.mark.parametrize("path", GPU_PROFILE_FILES, ids=[p.stem.split("--transformers--")[0] + p.stem.split("--tp1")[1]
                                                         for p in GPU_PROFILE_FILES])
def test_gpu_profile_is_a_real_measurement(path: Path) -> None:
    """A profile of `llmsizer profile` on a GPU: measured by the device and torch's allocator (not a log, not a
    formula), the device, driver and software versions recorded, the total the device's peak over its baseline,
    random weights said so, and the embedded architecture the shared config the run was built from."""
    profile = load_profile(path)
    assert profile.source.kind == "measured-run"
    assert profile.source.original_format == "llmsizer profile transformers"
    assert profile.source.collected
    for package in ("pytest-llmsizer", "python", "torch", "transformers", "nvidia-ml-py"):
        assert profile.source.software.get(package), f"{path}: no {package} version"
    assert profile.hardware.gpu_name == "NVIDIA H200" and profile.hardware.driver
    assert profile.hardware.memory_per_gpu_bytes and profile.hardware.gpu_count == 1

    device = profile.measurements.device
    assert device is not None and device.tool.startswith("nvml")
    assert device.provenance.value == "device"
    components = profile.measurements.components
    assert components.total is not None and components.total.provenance.value == "device"
    assert components.total.bytes == device.peak_bytes[0] - device.baseline_bytes[0]
    for name in ("weights", "kv_cache", "non_torch"):
        assert getattr(components, name).provenance.value == "device", name
    assert components.activations.provenance.value == "derived"  # the allocator peak's measured remainder
    # bf16 parameters as the allocator holds them: never fewer bytes, at most its block rounding more
    assert 0 <= components.weights.bytes - 2 * profile.model.num_parameters < 64 * MiB

    assert profile.engine.name == "transformers" and profile.engine.extra_args.get("random_weights") is True
    assert "Random weights" in profile.source.notes
    shared = json.loads((SHARED_CONFIGS / f"{path.stem.split('--transformers--')[0]}.json").read_text())
    shared = shared.get("text_config", shared) if "model_type" not in profile.model.config else shared
    # transformers 5 adds rope_theta into rope_scaling; every key the shared config states must be as it states it
    differing = {k: v for k, v in profile.model.config.items() if k in shared and shared[k] != v
                 and not (isinstance(v, dict) and isinstance(shared[k], dict) and shared[k].items() <= v.items())}
    assert not differing, f"{path}: embedded config differs from the shared one: {differing}"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_importer_check_passes(name: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / SOURCES[name][1]), "--check"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match the data" in result.stdout


def test_an_importer_replaces_and_removes_only_its_own_files(tmp_path: Path) -> None:
    """--out may name a folder with other JSON files: a stale profile the importer wrote is removed, a foreign JSON
    file is left alone, and a link where a profile goes is refused before anything is written."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "import_notebooks_and_docs.py"), "--out", str(tmp_path)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )

    committed = sorted((PROFILES / "vllm-notebooks-and-docs").glob("*.json"))
    (tmp_path / "stale.json").write_bytes(committed[0].read_bytes())
    (tmp_path / "mine.json").write_text('{"not": "a profile"}\n', encoding="utf-8")
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "stale.json").exists()
    assert (tmp_path / "mine.json").read_text(encoding="utf-8") == '{"not": "a profile"}\n'
    assert "left alone" in result.stdout
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted([p.name for p in committed] + ["mine.json"])

    target = tmp_path / committed[0].name
    target.unlink()
    target.symlink_to(tmp_path / "mine.json")
    result = run()
    assert result.returncode == 2 and "symbolic link" in result.stderr
    assert (tmp_path / "mine.json").read_text(encoding="utf-8") == '{"not": "a profile"}\n'


def test_derived_totals_are_the_engine_budget() -> None:
    """Every derived total of a vLLM log is utilization x memory (+ the logged graph pool before vLLM 0.21), and says
    so (a GPU run's total is the device's peak: test_gpu_profile_is_a_real_measurement)."""
    checked = 0
    for path in ALL_PROFILE_FILES:
        profile = load_profile(path)
        total = profile.measurements.components.total
        if total is None or profile.source.kind != "vllm-log":
            continue
        assert total.provenance.value == "derived", path
        assert total.note and total.note.startswith("DERIVED, not measured: total = gpu_memory_utilization"), path
        eng, hw = profile.engine, profile.hardware
        assert eng.gpu_memory_utilization is not None and hw.memory_per_gpu_bytes is not None, path
        budget = eng.gpu_memory_utilization * round(hw.memory_per_gpu_bytes / GiB, 2) * GiB
        graphs = profile.measurements.components.cuda_graphs
        extra = graphs.bytes if graphs is not None and "; + CUDA graph pool" in total.note else 0
        assert abs(total.bytes - (budget + extra)) <= 2, path
        checked += 1
    assert checked >= 150  # every vme-dev record has the figures it needs


# -- the shared importer code path, unit by unit --------------------------------------------------------------------

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import record_profiles as rp  # noqa: E402


@pytest.mark.parametrize("version,eager,graphs,line,expected_gib", [
    ("0.14.1", False, 0.5, "took", 0.9 * 80 + 0.5),  # graphs captured after the budget: added
    ("v0.21.0", False, 0.5, "took", 0.9 * 80),  # from 0.21 the estimate is charged inside the budget
    ("0.14.1", True, None, None, 0.9 * 80),  # enforce_eager: no graphs
    ("0.14.1", False, -0.78, "took", 0.9 * 80),  # a negative "took" released cached blocks: counted as 0
])
def test_derived_total_rules(version: str, eager: bool, graphs: float | None, line: str | None,
                             expected_gib: float) -> None:
    comp, why = rp.derived_total(utilization=0.9, memory_gib=80.0, version=version, enforce_eager=eager,
                                 graphs_gib=graphs, graphs_line=line)
    assert why == "" and comp is not None
    assert comp["provenance"] == "derived" and comp["bytes"] == round(expected_gib * GiB)
    assert "DERIVED, not measured" in comp["note"] and rp.TOTAL_FORMULA in comp["note"]


@pytest.mark.parametrize("kwargs,reason", [
    ({"utilization": None, "memory_gib": 80.0, "version": "0.14.1"}, "gpu_memory_utilization"),
    ({"utilization": 0.9, "memory_gib": None, "version": "0.14.1"}, "total_gpu_memory"),
    ({"utilization": 0.9, "memory_gib": 80.0, "version": None}, "version is not recorded"),
    ({"utilization": 0.9, "memory_gib": 80.0, "version": "0.8.5"}, "no captured graph figure"),
])
def test_no_derived_total_without_every_logged_figure(kwargs: dict[str, Any], reason: str) -> None:
    comp, why = rp.derived_total(enforce_eager=None, graphs_gib=None, graphs_line=None, **kwargs)
    assert comp is None and reason in why


def test_a_pre_capture_graph_estimate_does_not_make_a_total() -> None:
    record = {"cuda_graph_gib": 0.13, "log_lines": ["Estimated CUDA graph memory: 0.13 GiB total"]}
    assert rp._log_graphs_line(record) is None
    record = {"cuda_graph_gib": 1.15, "log_lines": ["Graph capturing finished in 14 secs, took 1.15 GiB"]}
    assert rp._log_graphs_line(record) == 'log line "Graph capturing finished in 14 secs, took 1.15 GiB"'


@pytest.mark.parametrize("reference,short", [
    ("vllm-project/vllm#10517", "vllm-10517"),
    ("https://www.robotmunki.com/pages/x.html", "robotmunki.com"),
    ("unslothai/notebooks:original_template/Qwen3_(4B)-GRPO.ipynb", "notebooks--qwen3-4b-grpo"),
    ("ROCm/rocm-blogs:blogs/artificial-intelligence/vllm-optimize/README.md", "rocm-blogs--vllm-optimize"),
])
def test_short_source(reference: str, short: str) -> None:
    assert rp.short_source(reference) == short


def test_curated_entries_must_match_a_record() -> None:
    source = rp.SourceFile(name="x.jsonl", folder="x", schema="log",
                           curation=rp.Curation(duplicates={("nowhere#1", "m"): "duplicate"}))
    with pytest.raises(rp.ImportProblem, match="match no qualifying record"):
        rp.build([], source)


def test_a_model_string_that_is_not_an_id_needs_a_curated_entry() -> None:
    with pytest.raises(rp.ImportProblem, match="no reviewed entry"):
        rp.model_id(rp.Curation(), "some/issue#1", "Llama 3 70B (local /models/llama)")
    assert rp.model_id(rp.Curation(), "some/issue#1", "meta-llama/Llama-3.1-8B") == "meta-llama/Llama-3.1-8B"


def test_vme_runtime_args_become_engine_settings_or_extra_args() -> None:
    record = {
        "accelerator": "H200", "available_kv_cache_gib": 21.47, "cuda_graphs_gib": 1.57, "data_parallel_size": 1,
        "enforce_eager": False, "gpu_memory_utilization": 0.95, "gpu_total_gib": 139.81, "id": "abc-123",
        "kv_cache_dtype": "fp8", "kv_cache_tokens": 100, "max_concurrency": 4.66, "max_concurrency_tokens": 800000,
        "max_model_len": 800000, "model": "deepseek-ai/DeepSeek-V4-Pro", "pipeline_parallel_size": 1,
        "quantization": "deepseek_v4_fp8", "source": "src", "tensor_parallel_size": 8, "vllm_version": "v0.20.2",
        "weights_gib": 102.34,
        "runtime_args": "max-model-len: 800000; tensor-parallel-size: 8; block-size: 256; max-num-seqs: 512; "
                        "enable-expert-parallel: True; kv-cache-dtype: fp8",
    }
    source = rp.SourceFile(name="vme-dev.jsonl", folder="vme-dev", schema="vme")
    p = rp.convert_vme(record, source)
    assert (p.engine.block_size, p.engine.max_num_seqs, p.engine.max_num_batched_tokens) == (256, 512, None)
    assert p.engine.extra_args == {"enable-expert-parallel": "True"}
    assert p.hardware.gpu_name == "NVIDIA H200" and p.hardware.gpu_count == 8
    assert p.model.quantization is not None and p.model.quantization.method == "fp8"
    assert p.source.reference.endswith("record abc-123")
    total = p.measurements.components.total
    assert total is not None and total.bytes == round((0.95 * 139.81 + 1.57) * GiB)


def test_a_log_without_a_version_gets_the_one_its_format_dates_and_says_so() -> None:
    """vllm#10517 states no version; its one-line 'Memory profiling results: total_gpu_memory=...' summary was
    printed by ~0.6.4 only (vllm-log-formats.md 3). The importer records the inferred version as such, the note says
    where it came from, and the calculator then prices V0 0.6 rather than the 0.11 default."""
    from pytest_llmsizer.calculator.versions import parse_vllm_version, version_from_log_format

    p = load_profile(Path(__file__).resolve().parents[1] / "profiles/vllm-issue-threads/"
                     "vllm-10517--llama-3.1-8b-instruct.json")
    assert p.engine.version == version_from_log_format(p.source.log_lines)
    assert p.engine.version.startswith("~0.6.4") and "format" in p.engine.version
    assert parse_vllm_version(p.engine.version) == (0, 6)
    assert "[importer] engine.version" in (p.source.notes or "")
    assert version_from_log_format(["[gpu_worker.py:298] Available KV cache memory: 17.20 GiB"]) is None
