"""Run the original LLM Sizer from a user's checkout: locate it, read its catalogs, call it, cache its answers.

Nothing of LLM Sizer is in this package. ``llm_sizer_driver.mjs`` (ours) is run with the checkout's own ``tsx``
and imports the checkout's ``buildCalculateResult``, the function its ``calculate`` command runs, so one Node
process answers any number of calls. Node starts in about 0.2 s; a cache of answers keyed by the exact inputs and a
fingerprint of the checkout (every file under ``src/`` plus ``package-lock.json``) makes repeated runs free.

Every subprocess gets an argv list (no shell: profile strings are never interpolated), a timeout after which its
process group is killed, and a bound on what it may print.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmsizer.adapters.llm_sizer_catalog import SizerCatalog, catalog_from_json
from pytest_llmsizer.safe_io import UnsafePathError, read_regular

ENV_DIR = "LLM_SIZER_DIR"
"""Environment variable naming the checkout when ``--llm-sizer-dir`` is not given."""

DRIVER = Path(__file__).with_name("llm_sizer_driver.mjs")
CACHE_VERSION = 1
MAX_STDOUT_BYTES = 16 * 2**20
"""Bound on the driver's stdout: one answer is about 600 bytes, so this is tens of thousands of answers."""
MAX_STDERR_BYTES = 64 * 2**10
MAX_ENTRY_BYTES = 2**20
"""Bound on one cache entry read (an answer is about 600 bytes)."""


class SizerRunError(Exception):
    """The checkout is missing or broken, or running it failed (a configuration problem, not a decline)."""


def locate_checkout(given: str | os.PathLike[str] | None) -> Path:
    """The checkout named by ``given`` or ``$LLM_SIZER_DIR``, checked to be a runnable LLM Sizer."""
    raw = given or os.environ.get(ENV_DIR)
    if not raw:
        raise SizerRunError(f"no LLM Sizer checkout: pass --llm-sizer-dir DIR or set {ENV_DIR}")
    root = Path(raw).expanduser().resolve()
    for rel in ("src/cli/commands/calculate.ts", "src/data/models.json", "src/data/gpus.json"):
        if not (root / rel).is_file():
            raise SizerRunError(f"{root} is not an LLM Sizer checkout: {rel} is missing")
    if not (root / "node_modules" / "tsx").is_dir():
        raise SizerRunError(f"{root}/node_modules/tsx is missing: run `npm ci` in {root}")
    return root


def read_catalog(root: Path) -> SizerCatalog:
    """LLM Sizer's model and GPU catalogs from the checkout's data files."""
    docs = []
    for name in ("models.json", "gpus.json"):
        path = root / "src" / "data" / name
        try:
            docs.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise SizerRunError(f"{path}: cannot be read as JSON: {e}") from None
    try:
        return catalog_from_json(docs[0], docs[1], source=str(root / "src" / "data"))
    except ValueError as e:
        raise SizerRunError(str(e)) from None


def fingerprint(root: Path) -> str:
    """A digest of everything that decides LLM Sizer's answers: each file under ``src/`` and the lockfile, and our
    driver. About 5 ms for its ~90 files."""
    digest = hashlib.sha256()
    files = sorted(p for p in (root / "src").rglob("*") if p.is_file())
    for path in [*files, root / "package-lock.json", DRIVER]:
        if path.is_file():
            digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pytest-llmsizer/llm-sizer`` (``~/.cache`` when unset; ``%LOCALAPPDATA%`` on Windows)."""
    base = os.environ.get("XDG_CACHE_HOME") or (os.environ.get("LOCALAPPDATA") if os.name == "nt" else None)
    return Path(base or Path.home() / ".cache") / "pytest-llmsizer" / "llm-sizer"


class AnswerCache:
    """One JSON file per answer, named by the digest of (cache version, checkout fingerprint, exact options).

    Writes are atomic (a temporary file renamed into place), so parallel runs (pytest -n) may share a directory.
    An unreadable entry is a miss, never an error.
    """

    def __init__(self, directory: Path, checkout_fingerprint: str) -> None:
        self.directory = directory
        self.checkout = checkout_fingerprint

    def _path(self, options: dict[str, Any]) -> Path:
        key = json.dumps({"v": CACHE_VERSION, "checkout": self.checkout, "options": options}, sort_keys=True)
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def get(self, options: dict[str, Any]) -> dict[str, Any] | None:
        try:
            entry = json.loads(read_regular(self._path(options), limit=MAX_ENTRY_BYTES, what="cache entries"))
        except (OSError, ValueError, UnsafePathError):  # a FIFO or an oversized file is a miss, never a hang
            return None
        if not isinstance(entry, dict) or entry.get("options") != options or not isinstance(entry.get("answer"), dict):
            return None
        return entry["answer"]

    def put(self, options: dict[str, Any], answer: dict[str, Any]) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        except OSError:  # a read-only or full cache only costs speed
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"options": options, "answer": answer}, f)
            os.replace(tmp, self._path(options))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def run_bounded(argv: Sequence[str], stdin: bytes, *, timeout_s: float, cwd: Path | None = None,
                max_stdout: int = MAX_STDOUT_BYTES, max_stderr: int = MAX_STDERR_BYTES) -> tuple[bytes, bytes, int]:
    """Run ``argv`` (no shell) with ``stdin``; return (stdout, the tail of stderr, exit status).

    Raises ``SizerRunError`` if it cannot start, runs past ``timeout_s`` or prints more than ``max_stdout`` bytes;
    in the last two cases its whole process group is killed first.
    """
    posix = os.name == "posix"
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=cwd, start_new_session=posix)
    except OSError as e:
        raise SizerRunError(f"cannot run {argv[0]!r}: {e.strerror or e}") from None
    out = bytearray()
    err = bytearray()
    overflow = threading.Event()

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if posix:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()

    def read_out() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(65536):
            out.extend(chunk)
            if len(out) > max_stdout:
                overflow.set()
                kill()
                return

    def read_err() -> None:
        assert proc.stderr is not None
        while chunk := proc.stderr.read(65536):
            err.extend(chunk)
            del err[:-max_stderr]

    def write_in() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write(stdin)
            proc.stdin.close()

    threads = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err, write_in)]
    for t in threads:
        t.start()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill()
        proc.wait()
        raise SizerRunError(f"{argv[0]} timed out after {timeout_s:g} s (killed)") from None
    except BaseException:
        kill()
        raise
    for t in threads:
        t.join(timeout=5)
    if overflow.is_set():
        raise SizerRunError(f"{argv[0]} printed more than {max_stdout} bytes on stdout (killed)")
    return bytes(out), bytes(err), proc.returncode


def calculate_many(root: Path, options: Sequence[dict[str, Any]], *, timeout_s: float = 30,
                   node: str = "node") -> list[dict[str, Any]]:
    """LLM Sizer's answers for many calls in one Node process: ``{"result": ...}`` or ``{"error": ...}`` each."""
    if not options:
        return []
    argv = [node, "--import", "tsx", str(DRIVER), str(root)]
    stdout, stderr, code = run_bounded(argv, json.dumps(list(options)).encode(), timeout_s=timeout_s, cwd=root)
    if code != 0:
        tail = " | ".join(line.strip() for line in stderr.decode("utf-8", "replace").splitlines()[-3:])
        raise SizerRunError(f"LLM Sizer driver exited with status {code}: {tail or '(nothing on stderr)'}")
    try:
        answers = json.loads(stdout)
    except ValueError as e:
        raise SizerRunError(f"LLM Sizer driver printed invalid JSON: {e}") from None
    if not isinstance(answers, list) or len(answers) != len(options) or not all(isinstance(a, dict) for a in answers):
        raise SizerRunError(f"LLM Sizer driver answered {type(answers).__name__}; expected {len(options)} objects")
    return answers


def calculate_cached(root: Path, options: Sequence[dict[str, Any]], cache: AnswerCache | None, *,
                     timeout_s: float = 30, node: str = "node") -> list[dict[str, Any]]:
    """``calculate_many`` through the cache: only the calls not cached run, all in one Node process."""
    answers: list[dict[str, Any] | None] = [cache.get(o) if cache else None for o in options]
    missing = [i for i, a in enumerate(answers) if a is None]
    fresh = calculate_many(root, [options[i] for i in missing], timeout_s=timeout_s, node=node)
    for i, answer in zip(missing, fresh, strict=True):
        answers[i] = answer
        if cache is not None and "result" in answer:  # errors are not cached: they are cheap and may be transient
            cache.put(options[i], answer)
    return [a for a in answers if a is not None]


def install_copy(source: Path, dest: Path, *, timeout_s: float = 600, npm: str = "npm") -> Path:
    """Copy a read-only LLM Sizer tree to ``dest`` (without any node_modules) and ``npm ci`` there.

    For tests and benchmarks that start from ``../shared/third_party/llm-sizer``; a user points the adapter at
    their own checkout instead.
    """
    if not (source / "package-lock.json").is_file():
        raise SizerRunError(f"{source}: no package-lock.json, not an LLM Sizer tree")
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("node_modules", ".git"), dirs_exist_ok=True)
    for path in [dest, *dest.rglob("*")]:  # the source may be read-only; npm writes beside it
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | 0o200)
    argv = [shutil.which(npm) or npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    _, stderr, code = run_bounded(argv, b"", timeout_s=timeout_s, cwd=dest)
    if code != 0:
        tail = " | ".join(stderr.decode("utf-8", "replace").splitlines()[-3:])
        raise SizerRunError(f"npm ci in {dest} failed with status {code}: {tail}")
    return locate_checkout(dest)
