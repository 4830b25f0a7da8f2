"""Peak memory and time of ``llmsizer import vllm-log`` on a large generated log.

Run: ``python benchmarks/log_import_memory.py [--mib 200] [--keep DIR]``

Two synthetic logs of the given size are generated in a temporary folder (never committed):

* ``random``: random bytes (``os.urandom``), the worst case for a line reader (no structure, few line breaks,
  invalid UTF-8); the import must end with "no memory line found";
* ``text``: the committed fixture ``tests/fixtures/vllm_logs/v1_available_kv.log`` (a real vLLM V1 startup log),
  followed by ordinary INFO lines up to the size: the import must read it to the end and write a profile.

Each import runs in its own fresh interpreter (``pytest_llmsizer.cli.main(["import", "vllm-log", LOG, "-o", OUT,
...])``), which reports its peak resident memory when done (``VmHWM`` from
``/proc/self/status`` on Linux, else ``resource.getrusage(RUSAGE_SELF).ru_maxrss``); the wall time, start-up
included, is taken with ``time.perf_counter``. It prints one line per log and
exits 0 (it measures, it does not judge).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "vllm_logs" / "v1_available_kv.log"


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * 2**20))
            f.write(chunk)
            left -= len(chunk)


def write_text(path: Path, size: int) -> None:
    filler = b"INFO 01-01 00:00:00 [core.py:123] an ordinary log line that states nothing about memory\n" * 1000
    with path.open("wb") as f:
        f.write(FIXTURE.read_bytes())
        written = FIXTURE.stat().st_size
        while written < size:
            f.write(filler)
            written += len(filler)


CHILD = ("import resource, sys\n"
         "from pathlib import Path\n"
         "from pytest_llmsizer.cli import main\n"
         "code = main(sys.argv[1:])\n"
         "status = Path('/proc/self/status')\n"
         "hwm = [int(l.split()[1]) for l in status.read_text().splitlines() if l.startswith('VmHWM')] "
         "if status.exists() else []\n"
         "print('PEAK_KIB', hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
         "sys.exit(code)\n")
"""The import, in a fresh interpreter that reports its own peak resident memory in KiB when it is done: Linux's
VmHWM (``ru_maxrss`` elsewhere; on Linux it would carry over a larger parent's peak across fork and exec)."""


def measure(log: Path, out: Path) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS in KiB, exit code, last message) of one import in a fresh process."""
    cmd = [sys.executable, "-c", CHILD, "import", "vllm-log", str(log), "-o", str(out), "--force",
           "--model", "Qwen/Qwen2.5-0.5B-Instruct", "--gpu", "NVIDIA A100-SXM4-80GB"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    lines = result.stderr.strip().splitlines()
    peak = int(next(line.split()[1] for line in lines if line.startswith("PEAK_KIB")))
    said = [line for line in lines if not line.startswith("PEAK_KIB")] or result.stdout.strip().splitlines() or [""]
    return wall, peak, result.returncode, said[-1][:120]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmsizer-logmem-"))
    root.mkdir(parents=True, exist_ok=True)
    size = args.mib * 2**20
    print(f"{'log':<8}{'MiB':>6}{'wall s':>8}{'peak RSS MiB':>14}  exit  message")
    for kind, writer in (("random", write_random), ("text", write_text)):
        log = root / f"{kind}.log"
        writer(log, size)
        wall, peak_kib, code, message = measure(log, root / f"{kind}.json")
        print(f"{kind:<8}{log.stat().st_size / 2**20:>6.0f}{wall:>8.1f}{peak_kib / 1024:>14.1f}  {code:>4}  {message}")
        if not args.keep:
            log.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
