"""vLLM logs read as a stream: same facts as the whole text, hostile logs refused or read in bounded time and memory.

The real logs are the ``log_lines`` of every record in ``shared/data/vllm-startup-logs`` plus the fixture logs; the
hostile ones (random bytes, a FIFO, /dev/zero, one endless line) are built at test time.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmsizer.profile.vllm_log import parse, parse_vllm_log
from pytest_llmsizer.safe_io import LineStats, UnsafePathError, iter_text_lines

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "vllm-startup-logs"
FIXTURES = Path(__file__).parent / "fixtures" / "vllm_logs"


def _real_logs() -> list[tuple[str, str]]:
    logs = []
    for name in ("issue-threads.jsonl", "notebooks-and-docs.jsonl"):
        path = DATA / name
        if not path.is_file():
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            record = json.loads(line) if line.strip() else {}
            if record.get("log_lines"):
                logs.append((f"{name}:{i + 1}", "\n".join(record["log_lines"])))
    logs += [(p.name, p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.glob("*.log"))]
    return logs


LOGS = _real_logs()


def test_real_logs_are_present() -> None:
    assert len(LOGS) >= 50, "the equivalence tests below need the shared vLLM logs"


def test_the_keyword_gate_loses_no_fact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines without any of parse._KEYWORDS (or rank markers) are skipped unparsed; on every real log the facts are
    the same as when every line goes through every pattern."""
    gated = [parse_vllm_log(text) for _, text in LOGS]
    monkeypatch.setattr(parse, "_KEYWORD", re.compile(""))
    monkeypatch.setattr(parse, "_RANK_MARKER", re.compile(""))
    for (name, text), facts in zip(LOGS, gated, strict=True):
        assert parse_vllm_log(text) == facts, name


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_streamed_lines_give_the_same_facts_as_the_text(newline: str) -> None:
    for name, text in LOGS:
        text = text.replace("\n", newline)
        stream = io.StringIO(text, newline="")
        assert parse_vllm_log(iter_text_lines(stream, max_line_chars=4096)) == parse_vllm_log(text), name


def test_long_lines_are_cut_and_counted() -> None:
    text = "x" * 10_000 + "\nshort\n" + "y" * 25 + "\n"
    stats = LineStats()
    lines = list(iter_text_lines(io.StringIO(text, newline=""), max_line_chars=1000, stats=stats))
    assert lines == ["x" * 1000, "short\n", "y" * 25 + "\n"]
    assert stats.cut_lines == 1


def test_a_stream_over_its_cap_is_refused() -> None:
    with pytest.raises(UnsafePathError, match="more than"):
        list(iter_text_lines(io.StringIO("a line\n" * 1000), max_chars=500, source="standard input"))


def _llmsizer(*args: str, timeout: float = 120, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_llmsizer.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, input=stdin.decode() if stdin else None,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("command", [("import", "vllm-log", "{p}", "-o", "{out}"), ("check", "{p}"),
                                     ("validate", "{p}"), ("analyze", "{p}")])
def test_a_fifo_is_refused_at_once(tmp_path: Path, command: tuple[str, ...]) -> None:
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    args = [a.format(p=fifo, out=tmp_path / "out.json") for a in command]
    result = _llmsizer(*args, timeout=60)  # a reader that opened the FIFO would block here until the timeout
    assert result.returncode in (1, 2), result.stderr
    assert "FIFO" in (result.stdout + result.stderr)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("command", [("import", "vllm-log", "{p}", "-o", "{out}"), ("analyze", "{p}"),
                                     ("check", "{p}")])
def test_a_device_is_refused_at_once(tmp_path: Path, device: str, command: tuple[str, ...]) -> None:
    if not Path(device).exists():
        pytest.skip(f"{device} missing")
    args = [a.format(p=device, out=tmp_path / "out.json") for a in command]
    result = _llmsizer(*args, timeout=60)
    assert result.returncode in (1, 2)
    assert "character device" in (result.stdout + result.stderr)
    assert not (tmp_path / "out.json").exists()


def test_random_bytes_log_is_read_fast_with_bounded_memory(tmp_path: Path) -> None:
    """20 MB of random bytes (the benchmark, benchmarks/log_import_memory.py, does 200 MB): refused as "no memory
    line found", in a bounded time and with memory far below the file's size."""
    log = tmp_path / "random.log"
    log.write_bytes(os.urandom(20 * 2**20))
    code = ("import resource, sys\n"
            "from pathlib import Path\n"
            "from pytest_llmsizer.cli import main\n"
            "rc = main(sys.argv[1:])\n"
            # VmHWM: this process's own peak (ru_maxrss would carry over the parent's peak across fork and exec)
            "status = Path('/proc/self/status')\n"
            "hwm = [int(l.split()[1]) for l in status.read_text().splitlines() if l.startswith('VmHWM')] "
            "if status.exists() else []\n"
            "print('PEAK', hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    result = subprocess.run([sys.executable, "-c", code, "import", "vllm-log", str(log), "-o",
                             str(tmp_path / "out.json")], capture_output=True, text=True, timeout=120,
                            check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "no memory line found" in result.stderr
    peak_kib = int(result.stdout.split("PEAK")[1])
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB for a 20 MiB log"


def test_one_endless_line_is_cut_not_held(tmp_path: Path) -> None:
    log = tmp_path / "one-line.log"
    with log.open("wb") as f:
        f.write(b"INFO Loading model weights took 14.99 GB\n")
        for _ in range(40):
            f.write(b"a" * 2**20)  # one 40 MiB line
        f.write(b"\nINFO # GPU blocks: 27153, # CPU blocks: 2048\n")
    result = _llmsizer("import", "vllm-log", str(log), "-o", str(tmp_path / "out.json"), "--model",
                       "meta-llama/Meta-Llama-3-8B", "--gpu", "NVIDIA A100-SXM4-80GB", timeout=120)
    assert "line(s) longer than" in result.stderr
    assert result.returncode == 0, result.stderr
    profile = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert profile["measurements"]["components"]["weights"]["bytes"] == round(14.99 * 2**30)


def test_log_size_cap_is_checked_before_reading(tmp_path: Path) -> None:
    log = tmp_path / "sparse.log"
    with log.open("wb") as f:
        f.truncate(3 * 2**20)
    result = _llmsizer("import", "vllm-log", str(log), "-o", str(tmp_path / "o.json"), "--max-log-mib", "2")
    assert result.returncode == 2
    assert "file is 3.0 MiB; vLLM logs are expected to be under 2 MiB (raise it with --max-log-mib)" in result.stderr


def test_stdin_is_streamed_with_a_cap(tmp_path: Path) -> None:
    result = _llmsizer("import", "vllm-log", "-", "-o", str(tmp_path / "o.json"), "--max-log-mib", "1",
                       stdin=b"x\n" * 2**20)
    assert result.returncode == 2
    assert "standard input: more than 1 MiB" in result.stderr


def test_a_log_that_grows_after_its_size_check_is_cut_at_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A log still being written (synthetic: 1 MiB of lines appended between the size check and the first read)
    is read no further than --max-log-mib, as standard input is."""
    from pytest_llmsizer import cli
    from pytest_llmsizer.commands import importer

    log = tmp_path / "live.log"
    log.write_text("INFO starting\n")
    real_open = importer.open_text_regular

    def open_then_grow(path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
        stream = real_open(path, **kwargs)  # type: ignore[arg-type]
        with log.open("a") as f:
            f.write("x\n" * 2**20)
        return stream

    monkeypatch.setattr(importer, "open_text_regular", open_then_grow)
    code = cli.main(["import", "vllm-log", str(log), "-o", str(tmp_path / "o.json"), "--max-log-mib", "1"])
    assert code == 2
    assert f"{log}: more than 1 MiB of text; the cap is 1 MiB" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
