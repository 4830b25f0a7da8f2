"""Hostile input: the plugin over a corpus of broken profiles never crashes, serially or under xdist.

Users point the plugin at folders of thousands of profiles written by many tools. Each broken file must become
failing items of its own (never a collection error, a traceback or an INTERNALERROR), whose message names the file,
the JSON path where there is one, and the problem; every good profile beside them still passes.
The corpus and what is wrong with each file: ``fixtures/bad_profiles/README.md``.
"""

from __future__ import annotations

import codecs
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "fixtures" / "bad_profiles"
GOOD_SOURCE = REPO / "profiles" / "vllm-issue-threads"
GOOD = ("vllm-33155--gpt-oss-120b.json", "vllm-4454--opt-125m.json", "rl-swarm-92--qwen2.5-0.5b-instruct.json")
BOM_CONTROL = "good_utf8_bom.json"
"""A good profile with a UTF-8 byte order mark in front: it must load and pass (generated from GOOD[0])."""

INI = "[pytest]\nllmsizer_profile_paths = profiles\nfilterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"

EXPECTED: dict[str, tuple[str, ...]] = {
    # not JSON text, or not valid JSON
    "truncated_json.json": ("$: invalid JSON at line",),
    "empty_file.json": ("$: file is empty",),
    "whitespace_only.json": ("$: file is empty",),
    "bom_only.json": ("$: file is empty",),
    "invalid_utf8.json": ("$: not UTF-8 text (byte",),
    "utf16_with_bom.json": ("$: UTF-16 text (byte order mark FF FE)",),
    "utf16le_without_bom.json": ("$: NUL byte at byte 1",),
    "duplicate_keys.json": ('$: invalid JSON: duplicate key "model"',),
    "nan_value.json": ("$: invalid JSON: NaN is not valid JSON",),
    "infinity_value.json": ("$: invalid JSON: Infinity is not valid JSON",),
    "negative_infinity_value.json": ("$: invalid JSON: -Infinity is not valid JSON",),
    "float_overflow_1e400.json": ("$: invalid JSON: the number 1e400 is out of range",),
    "raw_control_char_in_string.json": ("$: invalid JSON at line 6 column 29: Invalid control character",),
    "deep_nesting_10000_levels.json": ("$: invalid JSON: nested too deeply",),
    "huge_integer_10000_digits.json": ("$: invalid JSON: a number with 10000 digits is out of range",),
    "max_model_len_400_digits.json": ("$: invalid JSON: a number with 400 digits is out of range",),
    # JSON, but not a profile
    "json_array.json": ("$: expected a JSON object, got an array",),
    "json_string.json": ("$: expected a JSON object, got a string",),
    "json_null.json": ("$: expected a JSON object, got null",),
    "json_number.json": ("$: expected a JSON object, got a number",),
    "unknown_format.json": ("$: unknown profile format",),
    "legacy_v2_string_total.json": (
        "$.memory_breakdown.total_measured_gb: expected a number, got a string ('12.5')",
    ),
    "legacy_v3_nulls_everywhere.json": (
        "$.model_info.name: is null; expected a value",
        "$.memory_breakdown.model_weights_gb: is null; expected a value",
        "$.memory_measurements.baseline.per_gpu_details[0].used_gb: is null; expected a value",
    ),
    # native format, invalid values
    "wrong_format_version.json": ("$.format_version: unsupported format_version 2",),
    "format_version_true.json": ("$.format_version: unsupported format_version True",),
    "unknown_top_level_key.json": ("$.gpu_util: unknown field",),
    "ansi_escape_in_unknown_key.json": ('$["\\u001b[2J\\u001b[31mred\\u0007"]: unknown field',),
    "lone_surrogate_in_key.json": ('$.engine: key "\\ud800" holds a lone UTF-16 surrogate',),
    "missing_model.json": ("$.model: Field required",),
    "nulls_for_required_objects.json": ("$.source: Input should be a valid dictionary",
                                        "$.model: Input should be a valid dictionary"),
    "empty_model_id.json": ("$.model.id: String should have at least 1 character",),
    "model_id_100kb.json": ("$.model.id: String should have at most 300 characters",),
    "negative_byte_counts.json": ("$.hardware.memory_per_gpu_bytes: Input should be greater than or equal to 0",
                                  "$.measurements.device.peak_bytes[0]: Input should be greater than or equal to 0"),
    "absurd_byte_count_1e30.json": (
        "$.measurements.components.weights.bytes: Input should be less than or equal to 1125899906842624",
    ),
    "string_for_number.json": ("$.measurements.components.weights.bytes: expected a number, got a string",
                               "$.engine.tensor_parallel_size: expected a number, got a string"),
    "boolean_for_number.json": ("$.hardware.gpu_count: expected a number, got a boolean",
                                "$.measurements.components.weights.bytes: expected a number, got a boolean"),
    "unit_read_terabytes.json": (
        "$.measurements.components.weights.unit_read: Input should be 'B', 'MB', 'MiB', 'GB' or 'GiB'",
    ),
    "tp_exceeds_gpu_count.json": (
        "engine.tensor_parallel_size x pipeline_parallel_size = 4 exceeds hardware.gpu_count 2",
    ),
    "per_gpu_list_shorter_than_tp.json": (
        "measurements.components.weights.per_gpu_bytes has 1 values but hardware.gpu_count is 2",
    ),
    "per_gpu_list_longer_than_gpu_count.json": (
        "measurements.components.weights.per_gpu_bytes has 3 values but hardware.gpu_count is 1",
    ),
    # valid profiles the calculator cannot answer (see ONLY_ACCURACY_FAILS)
    "unknown_gpu.json": ("unknown GPU 'NVIDIA Imaginary X9000 512GB'",),
    "unknown_model.json": ("unknown model 'nobody/no-such-model-7B'",),
    "escaped_nul_in_model_id.json": ("unknown model 'openai/gpt-oss\\x00-120b'",),
    "model_config_garbage.json": ("$.model.config: cannot read the architecture (ZeroDivisionError",),
    "model_config_billion_layers.json": ("$.model.config:", "num_hidden_layers is implausibly large"),
    "max_model_len_1e300.json": ("max_model_len = about 10^300 is out of range",),
}
"""Corpus file -> fragments its failure messages must hold (besides the file's own path)."""

GENERATED: dict[str, tuple[str, ...]] = {
    "oversized_50mb.json": ("$.source.notes: String should have at most 5000 characters",),
    "over_64mib_sparse.json": ("$: file is 65.0 MiB; profiles are expected to be under 64 MiB",),
}
"""Too big to commit: written into the pytester directory by ``corpus_project``."""

ONLY_ACCURACY_FAILS = {
    "unknown_gpu.json", "unknown_model.json", "escaped_nul_in_model_id.json", "model_config_garbage.json",
    "model_config_billion_layers.json", "max_model_len_1e300.json",
}
"""Valid profiles: integrity passes; only the calculator (accuracy) cannot answer."""

BAD = {**EXPECTED, **GENERATED}


def test_corpus_is_complete_and_documented() -> None:
    files = sorted(p.name for p in CORPUS.glob("*.json"))
    assert len(files) >= 30
    assert set(files) == set(EXPECTED), "every corpus file needs expected fragments here, and only those"
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    for name in [*files, *GENERATED, BOM_CONTROL]:
        assert f"`{name}`" in readme, f"{name} is not described in fixtures/bad_profiles/README.md"
    assert ONLY_ACCURACY_FAILS.issubset(EXPECTED)


def _write_generated(profiles: Path) -> None:
    base = json.loads((CORPUS / "unknown_top_level_key.json").read_text(encoding="utf-8"))
    del base["gpu_util"]
    base["source"]["notes"] = "x" * (50 * 10**6)
    (profiles / "oversized_50mb.json").write_text(json.dumps(base), encoding="utf-8")
    with (profiles / "over_64mib_sparse.json").open("wb") as f:
        f.truncate(65 * 2**20)  # sparse: the loader must refuse it by its size, without reading it
    good = (GOOD_SOURCE / GOOD[0]).read_bytes()
    (profiles / BOM_CONTROL).write_bytes(codecs.BOM_UTF8 + good)


@pytest.fixture
def corpus_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    profiles = pytester.path / "profiles"
    shutil.copytree(CORPUS, profiles, ignore=shutil.ignore_patterns("*.md"))
    for name in GOOD:
        shutil.copy(GOOD_SOURCE / name, profiles / name)
    _write_generated(profiles)
    return pytester


def _junit_outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """node id -> (outcome, failure text) from a JUnit XML report (per item, whatever the terminal width)."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        file = case.get("classname", "").removeprefix("profiles.")
        failure = case.find("failure")
        error = case.find("error")
        if error is not None:
            out[f"{file}::{case.get('name')}"] = ("error", error.text or "")
        elif failure is not None:
            out[f"{file}::{case.get('name')}"] = ("failed", failure.text or failure.get("message", ""))
        else:
            out[f"{file}::{case.get('name')}"] = ("passed", "")
    return out


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_every_bad_file_fails_its_own_items_and_nothing_crashes(
    corpus_project: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    result = corpus_project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--llmsizer-no-gate", "--junitxml=junit.xml", *xdist
    )
    out, err = result.stdout.str(), result.stderr.str()
    for text in (out, err):
        assert "Traceback" not in text and "INTERNALERROR" not in text
        assert "\x1b" not in text, "a terminal escape sequence from a file reached the terminal raw"
    assert len(out) < 2_000_000, "a hostile value (50 MB notes, 100 KB id) was echoed in full"
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) == 0 and outcomes.get("error", 0) == 0, "no collection errors"
    assert result.ret == 1

    items = _junit_outcomes(corpus_project.path / "junit.xml")
    assert len(items) == 2 * (len(BAD) + len(GOOD) + 1)
    for name in (*GOOD, BOM_CONTROL):
        for kind in ("accuracy", "integrity"):
            assert items[f"{name}::{kind}"][0] == "passed", (name, kind, items[f"{name}::{kind}"][1])
    for name, fragments in BAD.items():
        failed_kinds = ("accuracy",) if name in ONLY_ACCURACY_FAILS else ("accuracy", "integrity")
        if name in ONLY_ACCURACY_FAILS:
            assert items[f"{name}::integrity"][0] == "passed", (name, items[f"{name}::integrity"][1])
        for kind in failed_kinds:
            outcome, text = items[f"{name}::{kind}"]
            assert outcome == "failed", (name, kind, outcome)
            assert f"profiles/{name}" in text, (name, kind, text[:500])
            for fragment in fragments:
                assert fragment in text, (name, kind, fragment, text[:2000])
