"""External calculators: a program in any language, run once per profile, protocol ``llmsizer-calculator/1``."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, cast

from pytest_llmsizer.calculator.params import total_parameters
from pytest_llmsizer.calculator.resolve import request_from_profile
from pytest_llmsizer.calculator.result import CalculatorResult, normalise_result
from pytest_llmsizer.errors import CalculatorError, LlmsizerError
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.sanitize import clean

PROTOCOL = "llmsizer-calculator/1"
"""The stdin/stdout JSON protocol of external calculator commands (see ``CommandCalculator``)."""


def command_calculator(command: str, timeout_s: float = 60) -> CommandCalculator:
    """An external calculator program (protocol ``llmsizer-calculator/1``); the sibling of ``load_calculator``.

    Raises ``CalculatorError`` at once for an empty or unparsable command or a bad timeout; a missing executable
    is only found when the command first runs, and then fails that profile alone.
    """
    return CommandCalculator(command, timeout_s)


# ----------------------------------------------------------------------------------------------------------
# external calculators: protocol llmsizer-calculator/1


def request_inputs(profile: Profile) -> dict[str, Any]:
    """The built-in resolver's view of a profile as plain JSON (the ``inputs`` of a protocol request).

    Every ``EstimateRequest`` field by its own name (``None`` = the profile does not say; the engine's default
    applies), ``assumptions`` as a list, plus ``model`` (the profile's model id), ``architecture`` (the resolved
    ``ModelArch``: hidden_size, num_kv_heads, head_dim, layer_attention, moe, quantization, ...) and
    ``num_parameters`` (the built-in parameter count of that architecture, or ``None``).
    Raises whatever resolving raises (an unknown model or GPU, an unreadable embedded config).
    """
    request = request_from_profile(profile)
    out: dict[str, Any] = {"model": profile.model.id, "architecture": request.arch.model_dump(mode="json")}
    try:
        out["num_parameters"] = total_parameters(request.arch)
    except Exception:  # a count is a convenience for the calculator; its absence must not hide the inputs
        out["num_parameters"] = None
    for f in fields(request):
        if f.name == "arch":
            continue
        value = getattr(request, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def protocol_request(profile: Profile) -> dict[str, Any]:
    """The JSON object sent to an external calculator on stdin for one profile."""
    request: dict[str, Any] = {"protocol": PROTOCOL, "profile": profile.model_dump(mode="json", exclude_none=True)}
    try:
        request["inputs"] = request_inputs(profile)
    except Exception as e:  # the external calculator may know models the catalog does not: it still gets asked
        request["inputs"] = None
        request["inputs_error"] = str(e) if isinstance(e, LlmsizerError) else f"{type(e).__name__}: {e}"
    return request


_EXPECTED = ('one JSON object: {"per_gpu_bytes": {component: bytes, ...}, "kv_cache_tokens"?, "max_concurrency"?, '
             '"assumptions"?} or {"error": "message"}')
_STDERR_LINES = 3
_SHOWN_CHARS = 200


def _one_line(text: str, limit: int = _SHOWN_CHARS) -> str:
    text = text[:limit] + ("..." if len(text) > limit else "")
    return repr(text)


class CommandCalculator:
    """An external calculator: a program run once per profile, JSON in on stdin, JSON out on stdout.

    Protocol ``llmsizer-calculator/1``. The command is split with ``shlex.split`` and run without a shell, in the
    current directory, with the current environment. It reads one JSON object on stdin::

        {"protocol": "llmsizer-calculator/1",
         "profile": {...the profile, as its JSON file holds it (absent fields left out)...},
         "inputs": {...the built-in resolver's view (see ``request_inputs``)...} or null,
         "inputs_error": "why inputs is null"          # only when inputs is null}

    and writes one JSON object on stdout::

        {"per_gpu_bytes": {"weights": 16063177687, "kv_cache": ..., ...},   # per GPU, bytes; any subset of
                                                                             # MEMORY_COMPONENTS
         "kv_cache_tokens": 123456,        # optional: engine-wide KV capacity in tokens
         "max_concurrency": 15.1,          # optional
         "assumptions": ["..."],           # optional: shown with a failure
         "inputs": {"num_parameters": 8030261248, ...}}   # optional: what the calculator used

    or ``{"error": "message"}`` to decline a profile (for instance an unsupported model). Exit status 0 in both
    cases; anything on stderr is ignored unless the command fails. A non-zero exit, a timeout (the process group
    is killed), unusable stdout or a missing executable raise ``CalculatorError``: that profile fails, the run goes
    on.
    """

    def __init__(self, command: str, timeout_s: float = 60) -> None:
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise CalculatorError(f"calculator command {command!r} cannot be parsed: {e}") from None
        if not argv:
            raise CalculatorError("calculator command is empty")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s) \
                or timeout_s <= 0:
            raise CalculatorError(f"calculator timeout must be a positive number of seconds, not {timeout_s!r}")
        self.command = command
        self.argv = argv
        self.timeout_s = float(timeout_s)

    def __repr__(self) -> str:
        return f"CommandCalculator({self.command!r}, timeout_s={self.timeout_s:g})"

    def __call__(self, profile: Profile) -> CalculatorResult:
        payload = json.dumps(protocol_request(profile)).encode("ascii")  # ASCII: any locale can read it
        stdout, stderr, returncode = self._run(payload)
        name = f"calculator command {self.command!r}"
        if returncode != 0:
            how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
            tail = [clean(line.strip(), _SHOWN_CHARS) for line in stderr.decode("utf-8", "replace").splitlines()
                    if line.strip()]
            said = ": " + " | ".join(tail[-_STDERR_LINES:]) if tail else " (nothing on stderr)"
            raise CalculatorError(f"{name} {how}{said}")
        text = stdout.decode("utf-8", "replace").strip()
        if not text:
            raise CalculatorError(f"{name} printed nothing on stdout; expected {_EXPECTED}")
        try:
            answer = json.loads(text)
        except json.JSONDecodeError as e:
            raise CalculatorError(f"{name} printed invalid JSON on stdout ({e.msg} at line {e.lineno} column "
                                  f"{e.colno}); expected {_EXPECTED}; got {_one_line(text)}") from None
        if not isinstance(answer, dict):
            raise CalculatorError(f"{name} printed a JSON {type(answer).__name__}; expected {_EXPECTED}; "
                                  f"got {_one_line(text)}")
        if "error" in answer and answer["error"] is not None:
            raise CalculatorError(f"{name} declined: {clean(answer['error'], 2000)}")
        problems = self._check(answer)
        if problems:
            raise CalculatorError(f"{name} answered {'; '.join(problems)}; expected {_EXPECTED}; "
                                  f"got {_one_line(text)}")
        try:
            return normalise_result(answer)
        except CalculatorError as e:
            raise CalculatorError(f"{name}: {e}") from None

    @staticmethod
    def _check(answer: Mapping[str, Any]) -> list[str]:
        """Type errors ``normalise_result`` would silently drop; unknown keys are allowed (future versions)."""
        problems = []
        if not isinstance(answer.get("per_gpu_bytes"), Mapping):
            problems.append("no 'per_gpu_bytes' object")
        for key in ("kv_cache_tokens", "max_concurrency"):
            value = answer.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                problems.append(f"{key} = {value!r} (not a number)")
        assumptions = answer.get("assumptions")
        if assumptions is not None and not isinstance(assumptions, list):
            problems.append("'assumptions' that is not a list")
        if answer.get("inputs") is not None and not isinstance(answer["inputs"], Mapping):
            problems.append("'inputs' that is not an object")
        return problems

    def _run(self, payload: bytes) -> tuple[bytes, bytes, int]:
        posix = os.name == "posix"
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=posix)
        except FileNotFoundError:
            raise CalculatorError(f"calculator command {self.command!r}: executable {self.argv[0]!r} "
                                  "not found") from None
        except OSError as e:  # not executable, a directory, ...
            raise CalculatorError(f"calculator command {self.command!r} cannot start: {e.strerror or e}") from None
        try:
            stdout, stderr = capture_bounded(proc, payload, self.timeout_s)
        except _StdoutOverflow:
            self._kill(proc, posix)
            raise CalculatorError(f"calculator command {self.command!r} printed more than "
                                  f"{MAX_STDOUT_BYTES // 2**20} MiB on stdout (the cap; killed); expected one JSON "
                                  "answer") from None
        except subprocess.TimeoutExpired:
            self._kill(proc, posix)
            raise CalculatorError(f"calculator command {self.command!r} timed out after {self.timeout_s:g} s "
                                  "(killed); raise --llmsizer-calculator-timeout (pytest) or --calculator-timeout "
                                  "(llmsizer) if it needs longer") from None
        except BaseException:  # Ctrl-C while waiting: do not leave the calculator running
            self._kill(proc, posix)
            raise
        return stdout, stderr, proc.returncode

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes], posix: bool) -> None:
        try:
            if posix:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: children it started go too
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError):
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


MAX_STDOUT_BYTES = 16 * 2**20
"""Most an external calculator may print on stdout (its answer is one small JSON object); beyond it the process is
killed and the profile fails, naming the cap."""
MAX_STDERR_BYTES = 64 * 2**10
"""Only the last 64 KiB of an external calculator's stderr are kept (the message shows its last lines); the rest is
read and discarded, so a chatty calculator neither blocks on a full pipe nor fills memory."""


class _StdoutOverflow(Exception):
    pass


def capture_bounded(proc: subprocess.Popen[bytes], payload: bytes, timeout_s: float) -> tuple[bytes, bytes]:
    """Feed ``payload`` to ``proc``'s stdin and collect its stdout (at most ``MAX_STDOUT_BYTES``, else
    ``_StdoutOverflow``) and the tail of its stderr (``MAX_STDERR_BYTES``), within ``timeout_s`` seconds (else
    ``subprocess.TimeoutExpired``). One thread per pipe, so no pipe can fill up and block the others."""
    out = bytearray()
    err = bytearray()
    overflow = threading.Event()

    def write() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(OSError):  # a calculator that exits without reading its stdin
            proc.stdin.write(payload)
        with contextlib.suppress(OSError):
            proc.stdin.close()

    def read_stdout() -> None:
        assert proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            while chunk := cast(io.BufferedReader, proc.stdout).read1(65536):
                out.extend(chunk)
                if len(out) > MAX_STDOUT_BYTES:
                    overflow.set()
                    return

    def read_stderr() -> None:
        assert proc.stderr is not None
        with contextlib.suppress(OSError, ValueError):
            while chunk := cast(io.BufferedReader, proc.stderr).read1(65536):
                err.extend(chunk)
                if len(err) > 2 * MAX_STDERR_BYTES:
                    del err[: len(err) - MAX_STDERR_BYTES]

    threads = [threading.Thread(target=f, daemon=True) for f in (write, read_stdout, read_stderr)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout_s
    reader = threads[1]
    while reader.is_alive():
        reader.join(min(0.05, max(0.0, deadline - time.monotonic())))
        if overflow.is_set():
            raise _StdoutOverflow
        if time.monotonic() >= deadline and reader.is_alive():
            raise subprocess.TimeoutExpired(proc.args, timeout_s)
    if overflow.is_set():
        raise _StdoutOverflow
    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for t in (threads[0], threads[2]):
        t.join(max(0.0, deadline - time.monotonic()) + 1)
    return bytes(out), bytes(err[-MAX_STDERR_BYTES:])


