"""Reading and writing files safely: the only places where the package touches user paths for records and inputs.

A tool that gates CI is run by many jobs at once, on shared disks, with paths that come from scripts. So:

* **Outputs** (CSV record, JSON report, CLI outputs) are written only to regular files. A symbolic link, a device
  (``/dev/null``, ``/dev/full``), a FIFO, a directory or a read-only file is refused with a message naming the path
  and why, before anything is written (``check_output``). A replacing write (``write_replacing``) goes to a
  temporary file beside the target and is renamed over it: never a half-written file. It refuses to replace an
  existing file that it did not write (whose first bytes do not carry one of the caller's markers) unless ``force``.
* **Appends** (``locked_append``) take an exclusive OS lock (``fcntl.flock``; ``msvcrt.locking`` on Windows) on the
  record file itself, then read its header and append in place. Concurrent runs appending to one CSV therefore keep
  every row exactly once: the lock serialises them, and the file is never replaced (a rename would give the next
  writer a different inode than the one it locked). The lock is waited for at most ``LOCK_TIMEOUT_S`` seconds. If
  writing fails midway the file is truncated back to its old length.
* **Inputs** (``read_regular``, ``iter_text_lines``) are read only from regular files (a FIFO would hang the reader,
  ``/dev/zero`` would grow it without bound): the file type and size are checked before the first byte is read, and
  reading stops at the cap even if the file grows meanwhile. ``iter_text_lines`` streams text line by line, cutting
  any line at ``max_line_chars``.

Size caps default to the values below and can be changed with environment variables (MiB): ``LLMSIZER_MAX_PROFILE_MIB``,
``LLMSIZER_MAX_LOG_MIB``, ``LLMSIZER_MAX_RECORD_MIB``, ``LLMSIZER_MAX_CONFIG_MIB``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from pytest_llmsizer.errors import ConfigError

MiB = 2**20
LOCK_TIMEOUT_S = 120.0
"""How long an append waits for another run's lock on the same record before it gives up (with a message)."""


class UnsafePathError(ConfigError):
    """A path cannot be used: a symlink, a device, a FIFO, a read-only or foreign file, or an input over its cap.

    A ``ConfigError`` (the plugin turns it into a usage error, exit 4; the CLI into exit 2). ``reason`` is the
    message without the leading path, for callers that name the file themselves."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


def size_cap(env: str, default_mib: float) -> int:
    """A size cap in bytes: the environment variable ``env`` (MiB) if set to a positive number, else the default."""
    text = os.environ.get(env, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            raise UnsafePathError(f"{env}={text!r}: expected a size in MiB") from None
        if value > 0 and value < 2**40:
            return int(value * MiB)
        raise UnsafePathError(f"{env}={text!r}: expected a positive size in MiB")
    return int(default_mib * MiB)


def max_profile_bytes() -> int:
    """Largest profile read (default 64 MiB: profiles are small, and every xdist worker parses every one)."""
    return size_cap("LLMSIZER_MAX_PROFILE_MIB", 64)


def max_log_bytes() -> int:
    """Largest vLLM log ``import vllm-log`` reads (default 1024 MiB)."""
    return size_cap("LLMSIZER_MAX_LOG_MIB", 1024)


def max_record_bytes() -> int:
    """Largest CSV record ``analyze`` reads (default 1024 MiB)."""
    return size_cap("LLMSIZER_MAX_RECORD_MIB", 1024)


def max_config_bytes() -> int:
    """Largest tolerances YAML read (default 4 MiB)."""
    return size_cap("LLMSIZER_MAX_CONFIG_MIB", 4)


MAX_LINE_CHARS = 1 * MiB
"""A log line longer than this is cut (vLLM's longest lines, the engine config, are a few KiB)."""


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


# ----------------------------------------------------------------------------------------------------------
# outputs


def check_output(path: Path, *, what: str, append: bool = False, force: bool = False,
                 markers: tuple[bytes, ...] = (), force_option: str = "--force") -> None:
    """Raise ``UnsafePathError`` unless ``path`` may be written.

    Refused always: a symbolic link, anything that is not a regular file, a read-only file, a missing or read-only
    parent directory. Refused unless ``append`` or ``force``: an existing non-empty file whose first bytes carry
    none of ``markers`` (it is not a file this package wrote). ``what`` names the output in the message,
    ``force_option`` the option that overrides the refusal.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise UnsafePathError(f"{what} {path}: cannot be used: {e.strerror or e}") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(f"{what} {path}: is a symbolic link; refusing to write through it (give the "
                                  "real path of a regular file)")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{what} {path}: is {file_kind(st.st_mode)}, not a regular file; refusing to "
                                  "write to it")
        if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise UnsafePathError(f"{what} {path}: is read-only; refusing to replace it")
        if not append and not force and st.st_size and not _starts_with(path, markers):
            why = f"exists and is not an llmsizer {what}" if markers else "exists"
            raise UnsafePathError(f"{what} {path}: {why}; refusing to overwrite it (pass {force_option} to replace "
                                  "it, or choose another path)")
    parent = _existing_parent(path)
    if not parent.is_dir():
        raise UnsafePathError(f"{what} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UnsafePathError(f"{what} {path}: directory {parent} is not writable")


def _existing_parent(path: Path) -> Path:
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _starts_with(path: Path, markers: tuple[bytes, ...]) -> bool:
    if not markers:
        return False
    n = max(len(m) for m in markers)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        head = os.read(fd, n)
    finally:
        os.close(fd)
    return any(head.startswith(m) for m in markers)


def write_replacing(path: Path, text: str, *, what: str = "output", force: bool = False,
                    markers: tuple[bytes, ...] = (), force_option: str = "--force") -> None:
    """Write ``text`` to ``path`` atomically (temporary file + rename), after ``check_output``."""
    check_output(path, what=what, force=force, markers=markers, force_option=force_option)
    atomic_replace(path, text)


def atomic_replace(path: Path, text: str | bytes) -> None:
    """Write ``text`` (UTF-8 text, or bytes as they are) to a temporary file beside ``path`` and rename it over
    ``path`` (never a half-written file).

    Only the type checks of ``check_output`` are repeated here (symlink, device, FIFO, directory), just before the
    rename: callers that must not replace foreign files call ``check_output`` with their markers first.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{path}: is {file_kind(st.st_mode)}, not a regular file; refusing to write to it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        data = text.encode("utf-8") if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode an ordinary write would (or keep the old file's mode)
        if st is not None:
            mode = st.st_mode & 0o777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lock(fd: int, path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
                return
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
    else:
        import fcntl

        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
    raise UnsafePathError(f"{path}: another process held its lock for more than {timeout_s:g} s; nothing was "
                          "appended")


def locked_append(path: Path, build: Callable[[bytes, int], str], *, what: str = "record",
                  timeout_s: float = LOCK_TIMEOUT_S) -> None:
    """Append ``build(head, size)`` to ``path`` under an exclusive lock on the file itself.

    ``head`` is the file's first line (bytes, at most 64 KiB, without the newline) and ``size`` its length, both read
    after the lock is taken; ``build`` returns the text to append (it may raise to append nothing). A file that does
    not end with a newline gets one first. On an error while writing, the file is truncated back to ``size``.
    """
    check_output(path, what=what, append=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = (os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        raise UnsafePathError(f"{what} {path}: cannot open for appending: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped in after check_output
            raise UnsafePathError(f"{what} {path}: is {file_kind(st.st_mode)}, not a regular file")
        _lock(fd, path, timeout_s)
        size = os.fstat(fd).st_size
        head = _pread(fd, 0, min(size, 64 * 1024)).split(b"\n", 1)[0].removesuffix(b"\r")
        text = build(head, size)
        data = text.encode("utf-8")
        if size and data and _pread(fd, size - 1, 1) != b"\n":
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)  # closing releases the lock


def _pread(fd: int, offset: int, n: int) -> bytes:
    if n <= 0:
        return b""
    if hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, n)


# ----------------------------------------------------------------------------------------------------------
# inputs


def _refuse_input(path: Path, reason: str) -> UnsafePathError:
    return UnsafePathError(f"{path}: {reason}", reason)


def _open_regular(path: Path, *, what: str, limit: int, setting: str | None) -> tuple[int, int]:
    """(fd, size) of a regular file no larger than ``limit``; checked with stat before opening, then fstat.

    ``what`` is a plural noun for messages ("profiles"); ``setting`` names what raises the cap."""
    st = os.stat(path)  # FileNotFoundError and other OSErrors go to the caller, which words them for its input
    if not stat.S_ISREG(st.st_mode):
        raise _refuse_input(path, f"is {file_kind(st.st_mode)}; only regular files are read as {what}")
    if st.st_size > limit:
        hint = f" (raise it with {setting})" if setting else ""
        raise _refuse_input(path, f"file is {st.st_size / MiB:.1f} MiB; {what} are expected to be under "
                                  f"{limit / MiB:g} MiB{hint}")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # swapped between stat and open
        os.close(fd)
        raise _refuse_input(path, f"is {file_kind(st.st_mode)}; only regular files are read as {what}")
    return fd, st.st_size


def read_regular(path: Path, *, limit: int, what: str = "files", setting: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (type and size checked before reading)."""
    fd, _ = _open_regular(path, what=what, limit=limit, setting=setting)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _refuse_input(path, f"grew past {limit / MiB:g} MiB while being read; {what} are expected to be "
                                  f"under {limit / MiB:g} MiB")
    return data


class LineStats:
    """What ``iter_text_lines`` had to do: lines cut at the length cap, bytes read."""

    def __init__(self) -> None:
        self.cut_lines = 0
        self.bytes_read = 0


def open_text_regular(path: Path, *, limit: int, what: str, setting: str | None = None) -> IO[str]:
    """A UTF-8 text stream (undecodable bytes replaced) over a regular file of at most ``limit`` bytes."""
    fd, _ = _open_regular(path, what=what, limit=limit, setting=setting)
    return open(fd, encoding="utf-8", errors="replace", newline="")


def iter_text_lines(stream: IO[str], *, max_line_chars: int = MAX_LINE_CHARS, max_chars: int | None = None,
                    source: str = "input", stats: LineStats | None = None) -> Iterator[str]:
    """Lines of a text stream (line ends kept), each cut at ``max_line_chars``; memory stays bounded by the cap.

    ``max_chars`` caps the whole stream (for standard input, whose size is not known in advance): beyond it,
    ``UnsafePathError``.
    """
    total = 0
    while True:
        line = stream.readline(max_line_chars)
        if not line:
            return
        total += len(line)
        if len(line) == max_line_chars and not line.endswith(("\n", "\r")):
            if stats is not None:
                stats.cut_lines += 1
            while True:  # skip the rest of the over-long line, a piece at a time
                rest = stream.readline(max_line_chars)
                total += len(rest)
                if max_chars is not None and total > max_chars:
                    break
                if not rest or rest.endswith(("\n", "\r")):
                    break
        if max_chars is not None and total > max_chars:
            raise UnsafePathError(f"{source}: more than {max_chars / MiB:g} MiB of text; the cap is "
                                  f"{max_chars / MiB:g} MiB")
        if stats is not None:
            stats.bytes_read = total
        yield line
