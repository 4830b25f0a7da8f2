"""What the installed plugin costs a project that has nothing to do with it.

pytest loads every ``pytest11`` plugin in every run of the environment it is installed in, so the plugin's import
and configure cost is paid by unrelated test suites too. This times an unrelated one-test suite (a temporary
directory with one ``test_one.py``: no profiles, no llmsizer option or ini key) with the plugin and with
``-p no:llmsizer``, fastest of ``--repeat`` interleaved runs each (subprocesses, so every run pays the imports), and
reports wall and CPU time (user + system: steadier than wall time on a shared machine), peak resident memory, and
the ratios.

Run: ``python benchmarks/plugin_overhead.py [--repeat 7] [--pythonpath DIR]`` (``--pythonpath`` measures another
checkout of the package, e.g. the main branch, for a before/after comparison).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _run(cwd: Path, args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one pytest run in a subprocess."""
    # each run in its own wrapper process, so ru_maxrss of the children is that run's own peak
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1]), float(out[2]) / 1024  # ru_maxrss is KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--pythonpath", default=None, help="put this checkout first on PYTHONPATH")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.pythonpath, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        variants = (("with llmsizer", []), ("-p no:llmsizer", ["-p", "no:llmsizer"]))
        runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in variants}
        for _ in range(args.repeat):  # interleaved, so that load on a shared machine hits both alike
            for label, extra in variants:
                runs[label].append(_run(root, extra, env))
        results = {label: tuple(min(r[i] for r in rs) for i in range(3)) for label, rs in runs.items()}
    base_wall, base_cpu, base_mib = results["-p no:llmsizer"]
    print(f"unrelated one-test suite, fastest of {args.repeat} (python {sys.version.split()[0]})")
    print(f"{'variant':<16} {'wall s':>7} {'CPU s':>7} {'peak MiB':>9}")
    for label, (wall, cpu, mib) in results.items():
        print(f"{label:<16} {wall:7.3f} {cpu:7.3f} {mib:9.1f}")
    wall, cpu, mib = results["with llmsizer"]
    print(f"ratio: wall {wall / base_wall:.2f}x, CPU {cpu / base_cpu:.2f}x, memory {mib - base_mib:+.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
