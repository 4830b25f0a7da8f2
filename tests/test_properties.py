"""Property-based tests (hypothesis): random and mutated input never escapes as anything but the project's own errors,
and the calculator's answers are sane and monotone where physics says so.

(a) Loading: ``profile_from_data`` on any JSON value, ``parse_json_text`` on any text, ``load_profile`` on any bytes,
and mutations of real files (legacy fixtures, committed native profiles) raise only ``ProfileError``.
(b) The calculator: for random valid settings over a few catalog models of every architecture family, ``estimate``
raises only ``LlmsizerError``; every per-GPU byte count is a non-negative integer; more tokens never need less KV
(transformers engine), more TP never needs more weights per GPU, a larger ``gpu_memory_utilization`` never gives
fewer KV tokens, and an fp8 KV cache never gives fewer tokens than ``auto``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_llmsizer.calculator import Estimate, EstimateRequest, estimate
from pytest_llmsizer.catalog.arch import ModelArch
from pytest_llmsizer.catalog.models import resolve_model
from pytest_llmsizer.errors import LlmsizerError, ProfileError
from pytest_llmsizer.profile.load import load_profile, parse_json_text, profile_from_data
from pytest_llmsizer.profile.model import Profile

REPO = Path(__file__).resolve().parents[1]
LEGACY = sorted((Path(__file__).parent / "fixtures" / "legacy").glob("*.json"))
NATIVE = [REPO / "profiles" / "vllm-issue-threads" / name for name in (
    "vllm-33155--gpt-oss-120b.json", "vllm-4454--opt-125m.json", "vllm-17469--qwen3-30b-a3b.json",
    "vllm-6746--meta-llama-3.1-405b-instruct-fp8.json",
)]
GiB = 2**30

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- (a) loading ------------------------------------------------------------------------------------------------


def _keys(tree: Any, out: set[str]) -> set[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.add(key)
            _keys(value, out)
    elif isinstance(tree, list):
        for value in tree:
            _keys(value, out)
    return out


REAL_TREES = [json.loads(p.read_text(encoding="utf-8")) for p in [*LEGACY, *NATIVE]]
KNOWN_KEYS = sorted(set().union(*(_keys(t, set()) for t in REAL_TREES)))
"""Every key of the real files: random objects built from them reach deep into the readers."""

keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8))
hostile_scalars = st.sampled_from([
    "", "12.5", "NaN", "true", "llmsizer-profile", "2.0", "3.0", "cuda", "rocm", "high_from_vllm_logs", "vllm",
    0, -1, 1, 2, 10**300, -(10**300), 2**63, 1e30, 1e-300, 0.5, 206.0, "\u0000", "\ud800", "\x1b[2J",
])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), hostile_scalars,
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12), hostile_scalars.filter(
        lambda v: not (isinstance(v, str) and "\ud800" in v)),
)


def _values(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)),
        max_leaves=20,
    )


python_values = _values(scalars)
"""Any Python value a JSON parser could produce, and a few it could not (NaN, infinity, lone surrogates)."""
json_values = _values(json_scalars)
"""Values ``json.dumps`` writes as strict JSON."""


def _only_profile_errors(call: Any) -> Profile | None:
    try:
        return call()
    except ProfileError as e:
        assert e.problems and all(p.path.startswith("$") for p in e.problems)
        message = e.render()
        message.encode("utf-8")  # the message can always be printed (no lone surrogate)...
        # ...and nothing from the file reaches the terminal raw: no control characters or escape sequences
        assert all(c.isprintable() or c == "\n" for c in message), ascii(message)
        return None


@PROPERTY
@given(python_values)
def test_profile_from_data_raises_only_profile_errors(value: Any) -> None:
    _only_profile_errors(lambda: profile_from_data(value, "x.json"))


@PROPERTY
@given(st.fixed_dictionaries(
    {"format": st.just("llmsizer-profile"), "format_version": st.just(1)},
    optional={k: python_values for k in ("source", "model", "hardware", "engine", "workload", "measurements",
                                         "synthetic")},
))
def test_native_shaped_objects_raise_only_profile_errors(value: dict[str, Any]) -> None:
    _only_profile_errors(lambda: profile_from_data(value, "x.json"))


def _splice(parts: tuple[str, int, str]) -> str:
    text, at, insert = parts
    return text[:at] + insert + text[at:]


texts = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    st.tuples(json_values.map(json.dumps), st.integers(0, 200), st.text(max_size=4)).map(_splice),
    st.sampled_from(["[" * 5000, '{"a":' * 3000, "1" * 5000, "1e999", "-", '"\\ud800"', '{"a":1,"a":2}', "NaN"]),
)


@PROPERTY
@given(texts)
def test_parse_json_text_raises_only_profile_errors(text: str) -> None:
    _only_profile_errors(lambda: parse_json_text(text, "x.json"))


@PROPERTY
@given(st.one_of(
    st.binary(max_size=300),
    st.tuples(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b""]),
              json_values.map(lambda v: json.dumps(v).encode())).map(lambda t: t[0] + t[1]),
))
def test_load_profile_on_any_bytes_raises_only_profile_errors(data: bytes) -> None:
    fd, name = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _only_profile_errors(lambda: load_profile(name))
    finally:
        os.unlink(name)


def _locations(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _locations(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += _locations(value, (*prefix, i))
    return out


@st.composite
def mutated_real_files(draw: st.DrawFn) -> Any:
    """A real file (legacy fixture or committed native profile) with one to three values replaced, deleted or
    retyped: the file a broken tool writes."""
    tree = copy.deepcopy(draw(st.sampled_from(REAL_TREES)))
    for _ in range(draw(st.integers(1, 3))):
        locations = _locations(tree)
        where = draw(st.sampled_from(locations))
        if not where:
            continue
        parent = tree
        for part in where[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "delete", "null", "stringify"]))
        key = where[-1]
        if action == "delete":
            del parent[key]
        elif action == "null":
            parent[key] = None
        elif action == "stringify":
            parent[key] = json.dumps(parent[key])
        else:
            parent[key] = draw(python_values)
    return tree


@PROPERTY
@given(mutated_real_files())
def test_mutated_real_files_raise_only_profile_errors(tree: Any) -> None:
    _only_profile_errors(lambda: profile_from_data(tree, "x.json"))


@pytest.mark.parametrize("path", [*LEGACY, *NATIVE], ids=lambda p: p.name)
def test_real_files_load_or_fail_cleanly(path: Path) -> None:
    # the unmutated files: the good ones load, the broken_* fixtures fail with a ProfileError
    profile = _only_profile_errors(lambda: load_profile(path))
    assert (profile is None) == path.name.startswith("broken_")


# -- (b) the calculator -----------------------------------------------------------------------------------------

MODELS = (
    "facebook/opt-125m",  # plain MLP, tied embeddings
    "meta-llama/Llama-3.1-8B",  # GQA
    "google/gemma-2-2b-it",  # sliding window
    "Qwen/Qwen3-30B-A3B",  # MoE
    "deepseek-ai/DeepSeek-V2-Lite",  # MLA + MoE
    "Qwen/Qwen3-Coder-Next",  # linear attention hybrid
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",  # Mamba hybrid
    "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",  # AWQ
    "openai/gpt-oss-20b",  # MXFP4, sliding
)


@cache
def _arch(model: str) -> ModelArch:
    return resolve_model(model).arch


def _none_or(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def requests(draw: st.DrawFn, engine: str | None = None) -> EstimateRequest:
    engine = engine or draw(st.sampled_from(["vllm", "transformers"]))
    workload = engine == "transformers" or draw(st.booleans())
    return EstimateRequest(
        arch=_arch(draw(st.sampled_from(MODELS))),
        gpu_memory_bytes=draw(st.integers(2 * GiB, 300 * GiB)),
        gpu_name=draw(st.sampled_from([None, "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"])),
        platform=draw(st.sampled_from(["cuda", "rocm"])),
        engine=engine,  # type: ignore[arg-type]
        engine_version=draw(st.sampled_from([None, "0.4.1", "0.6.4.post1", "0.8.5", "0.10.2", "0.11.0", "0.14.1",
                                             "0.18.0", "main", "99.0"])),
        tensor_parallel_size=draw(st.sampled_from([1, 2, 4, 8])),
        pipeline_parallel_size=draw(st.sampled_from([1, 1, 2])),
        enable_expert_parallel=draw(st.booleans()),
        dtype=draw(st.sampled_from([None, "bfloat16", "float16", "auto"])),
        kv_cache_dtype=draw(st.sampled_from([None, "auto", "fp8", "bfloat16", "fp8_e5m2"])),
        gpu_memory_utilization=draw(_none_or(st.floats(0.05, 1.0))),
        max_model_len=draw(_none_or(st.integers(1, 2**18))),
        max_num_seqs=draw(_none_or(st.integers(1, 1024))),
        max_num_batched_tokens=draw(_none_or(st.integers(1, 2**17))),
        block_size=draw(_none_or(st.sampled_from([1, 8, 16, 32, 64, 128]))),
        enforce_eager=draw(st.booleans()),
        batch_size=draw(st.integers(1, 256)) if workload else None,
        input_len=draw(st.integers(0, 2**17)) if workload else None,
        output_len=draw(st.integers(0, 2**15)) if workload else None,
    )


def _estimate(request: EstimateRequest) -> Estimate | None:
    """The estimate, checked for sanity; None when the calculator refused the request with its own error."""
    try:
        result = estimate(request)
    except LlmsizerError:
        return None
    for name, value in result.per_gpu_bytes.items():
        assert type(value) is int, (name, value)
        if name == "cuda_graphs":
            # the figure vLLM logs: the pool (>= 0) minus the cache the capture releases (issue 11 item 6: it may
            # be negative, and only by the release)
            terms = result.details.get("cuda_graph_terms") or {}
            assert terms.get("pool_bytes", 0) >= 0 and terms.get("released_cache_bytes", 0) >= 0, terms
            assert value == terms.get("pool_bytes", 0) - terms.get("released_cache_bytes", 0), (name, value, terms)
            continue
        if name == "total":  # the logged identity, signed graphs included: below zero only by the release
            assert value == sum(v for k, v in result.per_gpu_bytes.items() if k != "total"), result.per_gpu_bytes
            released = (result.details.get("cuda_graph_terms") or {}).get("released_cache_bytes", 0)
            assert value + released >= 0, (name, value, released)
            continue
        assert value >= 0, (name, value)
    assert type(result.kv_cache_tokens) is int and result.kv_cache_tokens >= 0
    if result.max_concurrency is not None:
        assert math.isfinite(result.max_concurrency) and result.max_concurrency >= 0
    json.dumps(result.to_json(), allow_nan=False)  # the --json contract: strict JSON, no NaN or infinity
    return result


@PROPERTY
@given(requests())
def test_estimate_raises_only_own_errors_and_gives_sane_numbers(request: EstimateRequest) -> None:
    _estimate(request)


absurd = st.integers(-(10**300), 10**300)


@PROPERTY
@given(requests(), st.data())
def test_estimate_with_absurd_settings_raises_only_own_errors(request: EstimateRequest, data: st.DataObject) -> None:
    # a profile may hold any integer JSON allows (up to 1.8e308): the calculator must refuse it, not overflow
    fields = data.draw(st.sets(st.sampled_from(["max_model_len", "max_num_seqs", "max_num_batched_tokens",
                                                "block_size", "batch_size", "input_len", "output_len"]), min_size=1))
    _estimate(replace(request, **{name: data.draw(absurd, label=name) for name in fields}))


@PROPERTY
@given(requests(engine="transformers"), st.integers(0, 64), st.integers(0, 4096), st.integers(0, 4096))
def test_transformers_more_tokens_never_need_less_kv(
    request: EstimateRequest, more_batch: int, more_input: int, more_output: int
) -> None:
    assert request.batch_size is not None and request.input_len is not None and request.output_len is not None
    bigger = replace(request, batch_size=request.batch_size + more_batch, input_len=request.input_len + more_input,
                     output_len=request.output_len + more_output)
    small, large = _estimate(request), _estimate(bigger)
    if small is not None and large is not None:
        assert large.per_gpu_bytes["kv_cache"] >= small.per_gpu_bytes["kv_cache"]


@PROPERTY
@given(requests(), st.sampled_from([2, 4, 8]))
def test_more_tensor_parallelism_never_needs_more_weights_per_gpu(request: EstimateRequest, factor: int) -> None:
    wider = replace(request, tensor_parallel_size=request.tensor_parallel_size * factor)
    narrow, wide = _estimate(request), _estimate(wider)
    if narrow is not None and wide is not None:
        assert wide.per_gpu_bytes["weights"] <= narrow.per_gpu_bytes["weights"]


@PROPERTY
@given(requests(engine="vllm"), st.floats(0.05, 1.0), st.floats(0.05, 1.0))
def test_larger_gpu_memory_utilization_never_gives_fewer_kv_tokens(
    request: EstimateRequest, u1: float, u2: float
) -> None:
    low, high = sorted((u1, u2))
    less = _estimate(replace(request, gpu_memory_utilization=low))
    more = _estimate(replace(request, gpu_memory_utilization=high))
    if less is not None and more is not None:
        assert (more.kv_cache_tokens or 0) >= (less.kv_cache_tokens or 0)


@PROPERTY
@given(requests(engine="vllm"))
def test_fp8_kv_cache_never_gives_fewer_tokens_than_auto(request: EstimateRequest) -> None:
    auto = _estimate(replace(request, kv_cache_dtype="auto"))
    fp8 = _estimate(replace(request, kv_cache_dtype="fp8"))
    if auto is not None and fp8 is not None:
        assert (fp8.kv_cache_tokens or 0) >= (auto.kv_cache_tokens or 0)
