"""Running the LLM Sizer adapter safely, without Node: bounded subprocesses (timeout, output limit, no shell), the
answer cache, locating a checkout, and the program's exit statuses. The end-to-end run with Node is in
test_llm_sizer_adapter_e2e.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_llmsizer.adapters.llm_sizer_run import (
    ENV_DIR,
    AnswerCache,
    SizerRunError,
    calculate_cached,
    fingerprint,
    locate_checkout,
    run_bounded,
)

REPO = Path(__file__).resolve().parents[1]
SHARED_COPY = REPO.parent / "shared" / "third_party" / "llm-sizer"
ADAPTER = [sys.executable, "-m", "pytest_llmsizer.adapters.llm_sizer"]
OPTIONS = {"model": "qwen3-8b", "gpu": "h200", "gpus": 1, "quant": "fp16", "kvQuant": "fp16_bf16",
           "type": "generation", "batchSize": 1, "seqLength": 4096, "users": 1}


def test_a_hanging_command_is_killed_at_the_timeout():
    start = time.monotonic()
    with pytest.raises(SizerRunError, match=r"timed out after 0\.5 s \(killed\)"):
        run_bounded([sys.executable, "-c", "import time; time.sleep(60)"], b"", timeout_s=0.5)
    assert time.monotonic() - start < 10


def test_output_beyond_the_bound_kills_the_command():
    script = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    with pytest.raises(SizerRunError, match="printed more than 1048576 bytes on stdout"):
        run_bounded([sys.executable, "-c", script], b"", timeout_s=30, max_stdout=2**20)


def test_only_the_tail_of_stderr_is_kept():
    script = "import sys\nsys.stderr.write('e' * 300000 + 'END')"
    _, err, code = run_bounded([sys.executable, "-c", script], b"", timeout_s=30, max_stderr=1024)
    assert code == 0 and len(err) <= 1024 and err.endswith(b"END")


def test_arguments_never_pass_through_a_shell(tmp_path: Path):
    hostile = "$(touch pwned) `touch pwned`; touch pwned"
    out, _, code = run_bounded([sys.executable, "-c", "import sys; print(sys.argv[1])", hostile],
                               b"", timeout_s=30, cwd=tmp_path)
    assert code == 0 and out.decode().strip() == hostile
    assert not (tmp_path / "pwned").exists()


def test_stdin_is_delivered_and_stdout_returned():
    out, _, code = run_bounded([sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"], b"abc",
                               timeout_s=30)
    assert (out.strip(), code) == (b"cba", 0)


def test_a_missing_executable_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SizerRunError, match=r"cannot run .*no-such-node"):
        run_bounded([str(tmp_path / "no-such-node")], b"", timeout_s=5)


# -- cache ----------------------------------------------------------------------------------------------------------


def test_the_cache_answers_the_exact_options_of_the_same_checkout(tmp_path: Path):
    cache = AnswerCache(tmp_path, "checkout-a")
    assert cache.get(OPTIONS) is None
    cache.put(OPTIONS, {"result": {"usedVRAM": 20.18}})
    assert cache.get(dict(OPTIONS)) == {"result": {"usedVRAM": 20.18}}
    assert cache.get(OPTIONS | {"batchSize": 2}) is None
    assert AnswerCache(tmp_path, "checkout-b").get(OPTIONS) is None  # another checkout: another key
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_damaged_cache_entry_is_a_miss(tmp_path: Path):
    cache = AnswerCache(tmp_path, "c")
    cache.put(OPTIONS, {"result": {}})
    (entry,) = tmp_path.glob("*.json")
    entry.write_text("{not json")
    assert cache.get(OPTIONS) is None
    entry.write_text(json.dumps({"options": OPTIONS | {"gpus": 8}, "answer": {"result": {}}}))
    assert cache.get(OPTIONS) is None  # the file must hold the very options it is named for


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_or_oversized_cache_entry_is_a_miss_not_a_hang(tmp_path: Path):
    cache = AnswerCache(tmp_path, "c")
    cache.put(OPTIONS, {"result": {}})
    (entry,) = tmp_path.glob("*.json")
    entry.write_text(json.dumps({"options": OPTIONS, "answer": {"result": {}}, "pad": "x" * 2**20}))
    assert cache.get(OPTIONS) is None
    entry.unlink()
    os.mkfifo(entry)  # reading a FIFO with no writer would block forever
    assert cache.get(OPTIONS) is None


def test_cached_answers_do_not_start_node(tmp_path: Path):
    cache = AnswerCache(tmp_path, "c")
    cache.put(OPTIONS, {"result": {"usedVRAM": 1}})
    # node would fail to start: the cached answer is returned without running anything
    answers = calculate_cached(tmp_path, [OPTIONS], cache, node=str(tmp_path / "no-such-node"))
    assert answers == [{"result": {"usedVRAM": 1}}]
    with pytest.raises(SizerRunError, match="cannot run"):
        calculate_cached(tmp_path, [OPTIONS | {"users": 2}], cache, node=str(tmp_path / "no-such-node"))


def test_the_fingerprint_follows_the_checkout_source(tmp_path: Path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "calc.ts").write_text("export const f = 1;")
    first = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == first
    (tmp_path / "src" / "calc.ts").write_text("export const f = 2;")
    assert fingerprint(tmp_path) != first


# -- locating the checkout ------------------------------------------------------------------------------------------


def test_no_checkout_given(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(ENV_DIR, raising=False)
    with pytest.raises(SizerRunError, match="no LLM Sizer checkout: pass --llm-sizer-dir DIR or set LLM_SIZER_DIR"):
        locate_checkout(None)


def test_not_a_checkout(tmp_path: Path):
    with pytest.raises(SizerRunError, match=r"is not an LLM Sizer checkout: src/cli/commands/calculate\.ts is "
                                            "missing"):
        locate_checkout(tmp_path)


def test_a_checkout_without_npm_ci(monkeypatch: pytest.MonkeyPatch):
    if not SHARED_COPY.is_dir():
        pytest.skip(f"{SHARED_COPY} is not beside the checkout")
    monkeypatch.setenv(ENV_DIR, str(SHARED_COPY))  # the shared copy is source only, never installed
    with pytest.raises(SizerRunError, match=r"node_modules/tsx is missing: run `npm ci` in "):
        locate_checkout(None)


# -- the program ----------------------------------------------------------------------------------------------------


def _adapter(stdin: str, *args: str, env_dir: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_DIR} | {"PYTHONPATH": str(REPO)}
    if env_dir:
        env[ENV_DIR] = env_dir
    return subprocess.run([*ADAPTER, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)


def test_a_configuration_problem_exits_2_with_one_line():
    done = _adapter(json.dumps({"protocol": "llmsizer-calculator/1", "profile": {"model": {"id": "x"}}}))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "llm_sizer adapter: no LLM Sizer checkout: pass --llm-sizer-dir DIR or set LLM_SIZER_DIR\n"


def test_stdin_that_is_not_json_exits_2():
    done = _adapter("profile please")
    assert done.returncode == 2 and done.stderr.startswith("llm_sizer adapter: stdin is not JSON")


def test_another_protocol_is_declined():
    done = _adapter(json.dumps({"protocol": "llmsizer-calculator/9"}))
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"error": "this adapter speaks llmsizer-calculator/1, not "
                                                "'llmsizer-calculator/9'"}


def test_a_bad_timeout_is_a_usage_error():
    done = _adapter("{}", "--timeout", "0")
    assert done.returncode == 2 and "--timeout must be positive" in done.stderr



def test_an_unwritable_cache_only_costs_speed(tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    cache = AnswerCache(tmp_path / "a-file" / "cache", "c")  # cannot be created, whoever runs the test
    cache.put(OPTIONS, {"result": {}})
    assert cache.get(OPTIONS) is None
