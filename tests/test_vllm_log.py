"""The vLLM startup-log reader: facts from every issue-threads.jsonl record, profiles from the fixture logs.

The records are read at run time (never copied here): for each number a record holds, the test finds the log line
that prints it with its own, parser-independent keyword search, and then requires the parser to recover exactly
that number. A value no log line of the record prints (it comes from the record's prose or notes) is skipped with
the reason; the few records whose lines look like vLLM output but are not (a PR description comparing two runs, a
reporter's markdown table) are listed in ``NOT_LOG_LINES`` with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_llmsizer.errors import LlmsizerError, ProfileError
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.profile.vllm_log import VllmLogFacts, parse_vllm_log, profile_from_log

REPO_ROOT = Path(__file__).resolve().parents[1]
ISSUE_THREADS = REPO_ROOT.parent / "shared" / "data" / "vllm-startup-logs" / "issue-threads.jsonl"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "vllm_logs"
GiB = 2**30


def _records() -> list[dict[str, Any]]:
    if not ISSUE_THREADS.is_file():
        return []
    with ISSUE_THREADS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


RECORDS = _records()


def _record_id(index: int, record: dict[str, Any]) -> str:
    return f"{index + 1}-" + re.sub(r"[^A-Za-z0-9]+", "-", str(record.get("source")))[-40:].strip("-")


def _log(record: dict[str, Any]) -> str:
    return "\n".join(record.get("log_lines") or [])


def test_issue_threads_data_is_present() -> None:
    assert RECORDS, f"no records in {ISSUE_THREADS}: the per-record tests below would test nothing"


# ----------------------------------------------------------------------------------------------------------
# Every numeric field of every record
# ----------------------------------------------------------------------------------------------------------

PRINTED_BY: dict[str, re.Pattern[str]] = {
    # record field -> the vLLM log lines that print it (a keyword search, deliberately independent of the parser)
    "weights_gib": re.compile(r"Loading model weights took|Model loading took|model weights take"),
    "kv_cache_gib": re.compile(
        r"KV cache memory|reserved for KV Cache|kv_cache_size=|available_kv_cache_memory|KV pool", re.IGNORECASE
    ),
    "non_torch_gib": re.compile(r"non_torch_memory"),
    "activation_peak_gib": re.compile(r"activation peak memory|for peak activation"),
    "total_gpu_memory_gib": re.compile(r"total_gpu_memory|Free memory on device"),
    "kv_cache_tokens": re.compile(r"GPU KV cache size|tokens that can be stored in KV cache"),
    "num_gpu_blocks": re.compile(r"(?:GPU|CUDA|cuda) blocks"),
    "max_concurrency": re.compile(r"Maximum concurrency"),
    "cuda_graph_gib": re.compile(
        r"Graph capturing finished|CUDAGraph memory|CUDA graph pool memory|Estimated CUDA graph memory"
    ),
}

NOT_LOG_LINES: dict[tuple[str, str], str] = {
    # (record source, field) -> why a line that looks like vLLM output is not where the record's value comes from
    ("vllm-project/vllm#2031", "num_gpu_blocks"): (
        "PR-description prose: one line compares 'Current main: # GPU blocks: A' with 'This PR: # GPU blocks: B' "
        "(two runs); the record keeps the PR's value. The parser reports the two values as a conflict instead "
        "(test_prose_comparing_two_runs_is_a_conflict)"
    ),
    ("vllm-project/vllm#51041", "kv_cache_gib"): (
        "a reporter's markdown table ('| KV pool | a | b |') comparing two checkpoints column by column; the record "
        "takes one column. Not a vLLM log line (test_markdown_table_is_not_read_as_vllm_output)"
    ),
    ("vllm-project/vllm#51041", "kv_cache_tokens"): (
        "a reporter's markdown table ('| GPU KV cache size | a tokens | b tokens |') comparing two checkpoints; the "
        "record takes one column. Not a vLLM log line (test_markdown_table_is_not_read_as_vllm_output)"
    ),
}


def _recovered(facts: VllmLogFacts, field: str) -> list[Any]:
    """What the parser read for a record field (all ranks; memory as (number as printed, unit as printed))."""
    if field == "weights_gib":
        return [(f.value, f.unit) for f in facts.weights]
    per_rank = {
        "kv_cache_gib": facts.kv_cache,
        "non_torch_gib": facts.non_torch,
        "activation_peak_gib": facts.activation_peak,
        "total_gpu_memory_gib": facts.total_gpu_memory,
        "cuda_graph_gib": facts.cuda_graphs + facts.cuda_graphs_estimated,
    }
    if field in per_rank:
        return [f.value for f in per_rank[field]]
    fact = {
        "kv_cache_tokens": facts.kv_cache_tokens,
        "num_gpu_blocks": facts.num_gpu_blocks,
        "max_concurrency": facts.max_concurrency,
    }[field]
    return [] if fact is None else [fact.value]


FIELD_CASES = [
    pytest.param(record, field, id=f"{_record_id(i, record)}-{field}")
    for i, record in enumerate(RECORDS)
    for field in PRINTED_BY
    if record.get(field) is not None
]


@pytest.mark.parametrize(("record", "field"), FIELD_CASES)
def test_record_value_is_recovered_from_its_log_line(record: dict[str, Any], field: str) -> None:
    expected = record[field]
    lines = record.get("log_lines") or []
    reason = NOT_LOG_LINES.get((record["source"], field))
    if reason is not None:
        pytest.skip(f"{field} = {expected}: {reason}")
    facts = parse_vllm_log(_log(record))
    printing = [line for line in lines if PRINTED_BY[field].search(line)]

    if field == "kv_cache_tokens" and not printing and facts.kv_cache_tokens_from_blocks is not None:
        # not printed, but the record's value is GPU blocks x block size, and the log prints the blocks
        assert any(PRINTED_BY["num_gpu_blocks"].search(line) for line in lines)
        derived = facts.kv_cache_tokens_from_blocks
        assert derived.derived and derived.basis
        assert derived.value == expected, derived.basis
        return
    if not printing:
        pytest.skip(
            f"{field} = {expected}: no line of the record's log_lines prints it (none matches "
            f"{PRINTED_BY[field].pattern!r}); the value comes from the record's prose: "
            f"{(record.get('notes') or '')[:160]}"
        )

    recovered = _recovered(facts, field)
    if field == "weights_gib":
        unit = record.get("weights_unit")
        assert unit in ("GB", "GiB"), f"record has weights_gib but weights_unit {unit!r}"
        assert (expected, unit) in recovered, f"{field}: expected {expected} {unit}, parser read {recovered}"
        fact = next(f for f in facts.weights if (f.value, f.unit) == (expected, unit))
        assert fact.unit_read == "GiB"  # "GB" on the weights line is GiB
        assert fact.bytes == round(expected * GiB)
        assert fact.line in lines
    else:
        assert expected in recovered, f"{field}: expected {expected}, parser read {recovered} from {printing}"


SETTING_FIELDS = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "dtype",
    "max_model_len",
    "gpu_memory_utilization",
    "max_num_seqs",
    "max_num_batched_tokens",
    "enforce_eager",
    "kv_cache_dtype",
)


@pytest.mark.parametrize("record", [pytest.param(r, id=_record_id(i, r)) for i, r in enumerate(RECORDS)])
def test_record_settings_the_log_states_agree_with_the_record(record: dict[str, Any]) -> None:
    """Where the parser finds a setting and the record holds it, they agree (records also take settings from prose)."""
    facts = parse_vllm_log(_log(record))
    for name in SETTING_FIELDS:
        fact = getattr(facts, name)
        if fact is not None and record.get(name) is not None:
            assert fact.value == record[name], f"{name}: log {fact.value!r} ({fact.text!r}), record {record[name]!r}"
            assert fact.line in record["log_lines"]


def test_prose_comparing_two_runs_is_a_conflict() -> None:
    record = next(r for r in RECORDS if r["source"] == "vllm-project/vllm#2031" and "7351" in _log(r))
    facts = parse_vllm_log(_log(record))
    assert [(c.first.value, c.other.value) for c in facts.conflicts] == [(7449, 7351)]
    with pytest.raises(LlmsizerError, match=r"7449.*7351"):
        profile_from_log(_log(record), source=record["source"], model="meta-llama/Llama-2-7b", gpu="NVIDIA A100")


def test_markdown_table_is_not_read_as_vllm_output() -> None:
    records = [r for r in RECORDS if r["source"] == "vllm-project/vllm#51041"]
    assert records
    for record in records:
        facts = parse_vllm_log(_log(record))
        assert not facts.has_measurements
        assert facts.kv_cache_tokens is None and not facts.kv_cache


def _model_option(record: dict[str, Any]) -> str:
    """A --model value from the record: its model string without the "(local ...)" decoration."""
    return str(record["model"]).split(" (")[0]


@pytest.mark.parametrize("record", [pytest.param(r, id=_record_id(i, r)) for i, r in enumerate(RECORDS)])
def test_record_log_makes_a_profile_or_says_why_not(record: dict[str, Any]) -> None:
    """Given the record's model, GPU and parallel sizes as options, every record's log becomes a valid profile, or
    a clear error: no memory line, no GPU, or values stated twice differently."""
    text = _log(record)
    facts = parse_vllm_log(text)
    options: dict[str, Any] = {"model": _model_option(record), "gpu": record.get("gpu_name")}
    if facts.tensor_parallel_size is None:
        options["tp"] = record.get("tensor_parallel_size")
    if facts.pipeline_parallel_size is None:
        options["pp"] = record.get("pipeline_parallel_size")
    if not facts.has_measurements:
        with pytest.raises(ProfileError, match="no memory line found"):
            profile_from_log(text, source=record["source"], **options)
        return
    if facts.conflicts:
        with pytest.raises(LlmsizerError, match="twice, differently"):
            profile_from_log(text, source=record["source"], **options)
        return
    if not options["gpu"] and not facts.total_gpu_memory:
        with pytest.raises(LlmsizerError, match="--gpu or --gpu-memory-gib"):
            profile_from_log(text, source=record["source"], **options)
        return
    try:
        profile = profile_from_log(text, source=record["source"], **options)
    except LlmsizerError as e:
        # only acceptable when the log lacks a fact the record does not supply either (never guessed)
        needed = re.search(r": pass (--[\w-]+)$", str(e))
        assert needed, str(e)
        option = {"--tp": "tp", "--pp": "pp", "--model": "model", "--gpu": "gpu"}[needed.group(1)]
        assert options.get(option) is None, f"{e}, although the record gives {option}={options.get(option)!r}"
        return
    assert profile.source.kind == "vllm-log"
    assert set(profile.source.log_lines or []) <= set(record["log_lines"])
    if record.get("total_gpu_memory_gib") is not None and facts.total_gpu_memory:
        assert profile.hardware.memory_per_gpu_bytes == round(record["total_gpu_memory_gib"] * GiB)


# ----------------------------------------------------------------------------------------------------------
# Fixture logs (built only from issue-threads.jsonl log_lines)
# ----------------------------------------------------------------------------------------------------------

FIXTURE_OPTIONS: dict[str, tuple[str, ...]] = {
    # fixture -> the options its log lacks, supplied from its record at run time
    "v0_three_line.log": (),
    "one_line_0_6_4.log": ("model",),
    "one_line_0_6_4_tp2.log": (),
    "multi_line_table.log": ("model",),
    "v1_available_kv.log": ("model", "gpu"),
    "v1_memory_summary_tp2.log": ("model", "tp"),
    "v1_max_seq_len_error.log": ("model", "gpu"),
}
FIXTURE_FILES = sorted(FIXTURES.glob("*.log"))


def _fixture(path: Path) -> tuple[str, dict[str, Any]]:
    """The fixture's text and its record (the one with that source whose log_lines are the fixture's lines)."""
    text = path.read_text(encoding="utf-8")
    first, *lines = text.splitlines()
    m = re.fullmatch(r"# source: (.+)", first)
    assert m, f"{path.name}: first line must be '# source: <record source>'"
    matches = [r for r in RECORDS if r["source"] == m.group(1) and r["log_lines"] == lines]
    assert len(matches) == 1, f"{path.name}: its lines are not exactly the log_lines of one {m.group(1)} record"
    return text, matches[0]


def _options(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    values = {"model": _model_option(record), "gpu": record.get("gpu_name"), "tp": record.get("tensor_parallel_size")}
    return {name: values[name] for name in FIXTURE_OPTIONS[path.name]}


def test_every_fixture_is_listed() -> None:
    assert sorted(p.name for p in FIXTURE_FILES) == sorted(FIXTURE_OPTIONS)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.name for p in FIXTURE_FILES])
def test_fixture_makes_a_valid_profile(path: Path) -> None:
    text, record = _fixture(path)
    profile = profile_from_log(text, source=record["source"], **_options(path, record))
    again = Profile.model_validate(profile.model_dump(mode="json"))
    assert again == profile
    assert profile.source.reference == record["source"]
    assert profile.source.kind == "vllm-log"
    assert not any(line.startswith("# source:") for line in profile.source.log_lines or [])
    components = profile.measurements.components.present()
    assert components
    for name, comp in components.items():
        assert comp.provenance.value == "engine"
        assert comp.unit_read == "GiB"
        quoted = re.search(r'source\.log_lines\[(\d+)\]: "([^"]+)"', comp.note or "")
        assert quoted, f"{name}: the note does not quote its log line"
        assert quoted.group(2) in (profile.source.log_lines or [])[int(quoted.group(1))]
        field = {"weights": "weights_gib", "kv_cache": "kv_cache_gib", "activations": "activation_peak_gib",
                 "non_torch": "non_torch_gib", "cuda_graphs": "cuda_graph_gib"}[name]
        values = [comp.bytes, *(comp.per_gpu_bytes or [])]
        if record.get(field) is not None:
            assert round(record[field] * GiB) in values, f"{name}: record {record[field]} GiB, profile {values}"
    if record.get("total_gpu_memory_gib") is not None:
        assert profile.hardware.memory_per_gpu_bytes == round(record["total_gpu_memory_gib"] * GiB)
    for field in ("max_concurrency", "num_gpu_blocks"):
        if record.get(field) is not None:
            assert getattr(profile.measurements, field) == record[field]


def _fixture_text(name: str) -> tuple[str, dict[str, Any]]:
    return _fixture(FIXTURES / name)


def test_tp2_worker_ranks_fill_per_gpu_bytes_in_rank_order() -> None:
    text, record = _fixture_text("one_line_0_6_4_tp2.log")
    profile = profile_from_log(text, source=record["source"])
    assert profile.tp == 2 and profile.hardware.gpu_count == 2
    kv = profile.measurements.components.kv_cache
    assert kv is not None and kv.per_gpu_bytes is not None
    facts = parse_vllm_log(text)
    # the driver (no prefix) is rank 0; the VllmWorkerProcess is the other rank. The ranks disagree: kept as data.
    assert facts.kv_cache[0].rank.label == "main process"
    assert kv.per_gpu_bytes == [f.bytes for f in facts.kv_cache]
    assert kv.bytes == kv.per_gpu_bytes[0] != kv.per_gpu_bytes[1]
    assert round(record["kv_cache_gib"] * GiB) in kv.per_gpu_bytes
    # only one rank's weights line is in the excerpt: no per_gpu_bytes, and the note says it is not rank 0's
    weights = profile.measurements.components.weights
    assert weights is not None and weights.per_gpu_bytes is None
    assert "rank 0 did not print it" in (weights.note or "")
    assert 'printed "GB"' in (weights.note or "")
    # peak_torch_memory (weights + activation) is not split into an activation component
    assert profile.measurements.components.activations is None
    assert "peak_torch_memory" in (profile.source.notes or "")


def test_v1_summary_per_rank_values() -> None:
    text, record = _fixture_text("v1_memory_summary_tp2.log")
    profile = profile_from_log(text, source=record["source"], model=_model_option(record), tp=2)
    comps = profile.measurements.components
    assert comps.kv_cache is not None and comps.kv_cache.per_gpu_bytes is not None
    assert len(comps.kv_cache.per_gpu_bytes) == 2
    assert comps.kv_cache.bytes == round(record["kv_cache_gib"] * GiB)
    assert comps.weights is None and comps.non_torch is None  # reported together: not split
    assert comps.cuda_graphs is not None and comps.activations is not None
    assert "pipeline_parallel_size = 1" in (profile.source.notes or "")


# -- profile_from_log errors --------------------------------------------------------------------------------


def test_missing_model_names_the_model_option() -> None:
    text, record = _fixture_text("multi_line_table.log")
    with pytest.raises(LlmsizerError, match=r"the log does not name the model: pass --model"):
        profile_from_log(text, source=record["source"])


def test_local_model_path_is_not_a_model_id() -> None:
    text, record = _fixture_text("v1_available_kv.log")
    with pytest.raises(LlmsizerError, match=r"local path.*pass --model"):
        profile_from_log(text, source=record["source"], gpu="some GPU")


def test_missing_gpu_names_the_gpu_options() -> None:
    text, record = _fixture_text("v1_available_kv.log")
    with pytest.raises(LlmsizerError, match=r"pass --gpu or --gpu-memory-gib"):
        profile_from_log(text, source=record["source"], model="org/model")


def test_conflicting_tp_names_both_values() -> None:
    text, record = _fixture_text("one_line_0_6_4_tp2.log")
    with pytest.raises(LlmsizerError, match=r"--tp 4 disagrees with the log, which states tensor_parallel_size = 2"):
        profile_from_log(text, source=record["source"], tp=4)
    assert profile_from_log(text, source=record["source"], tp=2).tp == 2


def test_conflicting_model_names_both_values() -> None:
    text, record = _fixture_text("v0_three_line.log")
    with pytest.raises(LlmsizerError, match=r"--model 'org/other'.*'facebook/opt-125m'"):
        profile_from_log(text, source=record["source"], model="org/other")


def test_conflicting_gpu_memory_names_both_values() -> None:
    text, record = _fixture_text("v0_three_line.log")
    with pytest.raises(LlmsizerError, match=r"--gpu-memory-gib 24.0 disagrees with the log's total_gpu_memory 16.00"):
        profile_from_log(text, source=record["source"], gpu_memory_gib=24.0)
    assert profile_from_log(text, source=record["source"], gpu_memory_gib=16).hardware.memory_per_gpu_bytes == 16 * GiB


def test_conflicting_engine_setting_names_both_values() -> None:
    text, record = _fixture_text("v0_three_line.log")
    with pytest.raises(LlmsizerError, match=r"--max-model-len 4096 .* max_model_len = 2048"):
        profile_from_log(text, source=record["source"], max_model_len=4096)
    with pytest.raises(LlmsizerError, match="unknown engine setting"):
        profile_from_log(text, source=record["source"], max_len=4096)


def test_option_fills_what_the_log_lacks() -> None:
    text, record = _fixture_text("v1_max_seq_len_error.log")
    profile = profile_from_log(
        text, source=record["source"], model="openai/gpt-oss-120b", gpu="NVIDIA H100", gpu_memory_utilization=0.95
    )
    assert profile.engine.gpu_memory_utilization == 0.95
    assert profile.engine.max_model_len == 131072  # from the error line


def test_tp_is_not_guessed_when_the_log_shows_several_ranks() -> None:
    text, record = _fixture_text("v1_memory_summary_tp2.log")
    with pytest.raises(LlmsizerError, match=r"tensor_parallel_size .*Worker_TP0, Worker_TP1.*pass --tp"):
        profile_from_log(text, source=record["source"], model="org/model")


def test_tp_defaults_to_1_for_a_single_process_and_says_so() -> None:
    text, record = _fixture_text("one_line_0_6_4.log")
    profile = profile_from_log(text, source=record["source"], model=_model_option(record))
    assert profile.tp == 1
    assert "tensor_parallel_size = 1: the log states no tensor_parallel_size" in (profile.source.notes or "")
    assert "kv_cache_tokens derived" in (profile.source.notes or "")


def test_a_log_without_memory_lines_is_a_profile_error() -> None:
    text = "INFO 01-01 00:00:00 api_server.py:1] vLLM API server version 0.8.5\nINFO starting\n"
    with pytest.raises(ProfileError, match=r"no memory line found: looked for .*Model loading took") as e:
        profile_from_log(text, source="empty.log", model="org/model", gpu="NVIDIA H100")
    assert e.value.file == "empty.log"


# ----------------------------------------------------------------------------------------------------------
# Formats of vllm-log-formats.md that no issue-threads record shows (synthetic lines, own numbers)
# ----------------------------------------------------------------------------------------------------------


def test_weights_line_forms_and_units() -> None:
    facts = parse_vllm_log("model_runner.py:90] Loading model weights took 300.5 MB")
    (w,) = facts.weights
    assert (w.value, w.unit, w.unit_read, w.bytes) == (300.5, "MB", "MiB", round(300.5 * 2**20))
    for line, printed, unit in (
        ("[model_runner.py:1] Model loading took 6.2500 GB and 2.5 seconds", 6.25, "GB"),
        ("[gpu_model_runner.py:1] Model loading took 65.1234 GiB and 12.7 seconds", 65.1234, "GiB"),
        ("[gpu_model_runner.py:1] Model loading took 12.34 GiB memory and 5.2 seconds", 12.34, "GiB"),
    ):
        (w,) = parse_vllm_log(line).weights
        assert (w.value, w.unit, w.unit_read, w.bytes) == (printed, unit, "GiB", round(printed * GiB))


def test_negative_kv_values_are_kept() -> None:
    (kv,) = parse_vllm_log("[gpu_worker.py:1] Available KV cache memory: -1.25 GiB").kv_cache
    assert kv.value == -1.25 and kv.bytes < 0
    line = (
        "[worker.py:1] model weights take 20.00GiB; non_torch_memory takes 0.50GiB; PyTorch activation peak memory "
        "takes 2.00GiB; the rest of the memory reserved for KV Cache is -0.75GiB."
    )
    facts = parse_vllm_log(line)
    assert [f.value for f in facts.kv_cache] == [-0.75]
    assert [f.value for f in facts.weights] == [20.0] and facts.weights[0].form == "profiler-weights"


def test_cuda_graph_forms() -> None:
    text = "\n".join(
        (
            "model_runner.py:1] CUDA graphs can take additional 1~3 GiB memory per GPU. If you are running out ...",
            "model_runner.py:2] Graph capturing finished in 9 secs.",
            "[gpu_model_runner.py:3] Graph capturing finished in 14 secs, took 1.50 GiB",
            "[gpu_model_runner.py:4] Estimated CUDA graph memory: 0.50 GiB total",
            "[gpu_model_runner.py:5] Profiling CUDA graph memory: PIECEWISE=0.30 GiB (largest=0.10 GiB), "
            "FULL=0.20 GiB (largest=0.05 GiB)",
            "[gpu_worker.py:6] In v0.19, CUDA graph memory profiling will be enabled by default (...), increase "
            "--gpu-memory-utilization from 0.8000 to 0.8050 to maintain the same effective KV cache size.",
        )
    )
    facts = parse_vllm_log(text)
    assert [f.value for f in facts.cuda_graph_capture_seconds] == [9.0, 14.0]
    assert [f.value for f in facts.cuda_graphs] == [1.5]
    assert [(f.value, f.estimated) for f in facts.cuda_graphs_estimated] == [(0.5, True)]
    assert facts.cuda_graph_profile[0].value["FULL"] == {"total": "0.20 GiB", "largest": "0.05 GiB"}
    assert [n.form for n in facts.notices] == ["cuda-graphs-1-3-gib-warning"]
    assert facts.gpu_memory_utilization is not None and facts.gpu_memory_utilization.value == 0.8


def test_block_forms_and_derived_tokens() -> None:
    v1_early = parse_vllm_log("kv_cache_utils.py:522] # GPU blocks: 1000")
    assert v1_early.num_gpu_blocks is not None and v1_early.num_gpu_blocks.value == 1000
    assert v1_early.kv_cache_tokens_from_blocks is None  # early V1, no block size stated: not derived
    stated = parse_vllm_log(
        "api_server.py:1] args: Namespace(model='org/m', block_size=32, hf_overrides={'model': 'x'}, "
        "tensor_parallel_size=2, gpu_memory_utilization=0.85, max_model_len=None)\n"
        "kv_cache_utils.py:522] # GPU blocks: 1000"
    )
    derived = stated.kv_cache_tokens_from_blocks
    assert derived is not None and derived.value == 32000 and "block_size 32" in (derived.basis or "")
    assert stated.model is not None and stated.model.value == "org/m"  # not the nested 'model'
    assert stated.tensor_parallel_size is not None and stated.tensor_parallel_size.value == 2
    assert stated.max_model_len is None
    v0 = parse_vllm_log("executor_base.py:1] # CUDA blocks: 500, # CPU blocks: 100")
    assert v0.kv_cache_tokens_from_blocks is not None and v0.kv_cache_tokens_from_blocks.value == 8000
    assert v0.num_cpu_blocks is not None and v0.num_cpu_blocks.value == 100


def test_comment_lines_are_ignored_but_a_bare_block_line_is_not() -> None:
    text = "# source: somewhere\n# Available KV cache memory: 9.00 GiB\n# GPU blocks: 42, # CPU blocks: 7"
    facts = parse_vllm_log(text)
    assert not facts.kv_cache
    assert facts.num_gpu_blocks is not None and facts.num_gpu_blocks.value == 42


def test_ranks_are_ordered_and_labelled() -> None:
    text = "\n".join(
        (
            "(VllmWorker rank=1 pid=11) INFO [gpu_worker.py:1] Available KV cache memory: 2.00 GiB",
            "(VllmWorker rank=0 pid=10) INFO [gpu_worker.py:1] Available KV cache memory: 1.00 GiB",
            "(RayWorkerWrapper pid=21, ip=10.0.0.2) INFO model_runner.py:1] Loading model weights took 3.0000 GB",
            "INFO model_runner.py:1] Loading model weights took 3.0001 GB",
        )
    )
    facts = parse_vllm_log(text)
    assert [(f.rank.label, f.value) for f in facts.kv_cache] == [("rank=0", 1.0), ("rank=1", 2.0)]
    assert [(f.rank.label, f.value) for f in facts.weights] == [("main process", 3.0001),
                                                                ("RayWorkerWrapper pid=21", 3.0)]


def test_v1_error_and_config_lines() -> None:
    text = "\n".join(
        (
            "INFO llm_engine.py:79] Initializing an LLM engine with config: model='org/m', tokenizer='org/m', "
            "dtype=torch.float16, max_seq_len=4096, tensor_parallel_size=1, quantization=awq, enforce_eager=True, "
            "kv_cache_dtype=fp8",
            "ValueError: To serve at least one request with the model's max seq len (4096), (2.50 GiB KV cache is "
            "needed, which is larger than the available KV cache memory (1.25 GiB). Based on the available memory, "
            "the estimated maximum model length is 2048.",
        )
    )
    facts = parse_vllm_log(text)
    assert facts.version is None
    values = {n: getattr(facts, n).value for n in ("model", "dtype", "max_model_len", "quantization",
                                                    "enforce_eager", "kv_cache_dtype")}
    assert values == {"model": "org/m", "dtype": "float16", "max_model_len": 4096, "quantization": "awq",
                      "enforce_eager": True, "kv_cache_dtype": "fp8"}
    assert [f.value for f in facts.kv_cache] == [1.25]
    assert facts.kv_cache_needed is not None and facts.kv_cache_needed.value == 2.5
    assert facts.estimated_max_model_len is not None and facts.estimated_max_model_len.value == 2048


def test_third_party_forms() -> None:
    fork = (
        "worker.py:1] model weights take 5.00GiB; non_torch_memory takes 0.20GiB; PyTorch activation peak memory "
        "takes 1.00GiB; the rest of the memory reserved for KV Cache is 10.00GiB.The engine can allocate 1234 GPU "
        "blocks, 567 CPU blocks on PP Rank 1 TP Rank 0."
    )
    facts = parse_vllm_log(fork + "\nUnsloth: vLLM's KV Cache can use up to 7.5 GB. Also swap space = 4 GB.")
    assert [(f.rank.label, f.value) for f in facts.gpu_blocks_per_rank] == [("PP Rank 1 TP Rank 0", 1234)]
    assert [(f.rank.label, f.value) for f in facts.kv_cache] == [("PP Rank 1 TP Rank 0", 10.0)]
    assert facts.unsloth_kv_estimate is not None and facts.unsloth_kv_estimate.value == 7.5
    assert facts.num_gpu_blocks is None


def test_no_available_memory_error_is_a_notice() -> None:
    facts = parse_vllm_log("ValueError: No available memory for the cache blocks. Try increasing ...")
    assert [n.form for n in facts.notices] == ["no-available-memory-for-cache-blocks"]
    assert not facts.has_measurements


def test_same_rank_printing_two_values_is_a_conflict() -> None:
    text = "Available KV cache memory: 5.00 GiB\nAvailable KV cache memory: 6.00 GiB"
    facts = parse_vllm_log(text)
    assert len(facts.conflicts) == 1
    with pytest.raises(LlmsizerError, match=r"kv_cache on main process: 5\.00 GiB .* vs 6\.00 GiB"):
        profile_from_log(text, source="x", model="org/m", gpu="NVIDIA H100")


def test_ansi_colours_and_container_prefixes() -> None:
    line = "vllm-1  | (VllmWorker rank=1 pid=7) \x1b[32mINFO\x1b[0m [gpu_worker.py:1] Available KV cache memory: 3.5GiB"
    (kv,) = parse_vllm_log(line).kv_cache
    assert kv.rank.label == "rank=1" and kv.value == 3.5 and kv.line == line
