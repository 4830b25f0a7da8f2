"""Concurrent runs appending to one CSV record: rows expected vs rows found, over repetitions.

Run: ``python benchmarks/records_under_load.py [--writers N] [--repetitions R] [--profiles P] [--keep DIR]``
(defaults: 4 writers, 20 repetitions, 3 profiles).

It writes P profiles into a temporary project. They are clearly marked synthetic (``"synthetic": true``): copies of
the committed ``profiles/vllm-issue-threads/vllm-4454--opt-125m.json``, which the built-in calculator matches. Then,
R times, it starts N real ``pytest --llmsizer-csv rec.csv`` runs at the same moment (separate processes, all
appending to the same file) and waits for them. After each repetition it parses the CSV and checks: exactly one
header, every row with every column, and each profile exactly N x (repetitions so far) times. It prints one line per
repetition and a total: rows expected, rows found, rows lost, rows duplicated, exit codes. It exits 1 if any row was
lost or duplicated, or any run failed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "profiles" / "vllm-issue-threads" / "vllm-4454--opt-125m.json"


def make_project(root: Path, profiles: int) -> list[str]:
    (root / "pytest.ini").write_text("[pytest]\nllmsizer_profile_paths = profiles\n", encoding="utf-8")
    data = json.loads(SOURCE.read_text(encoding="utf-8"))
    data["synthetic"] = True
    names = []
    for i in range(profiles):
        data["source"]["notes"] = f"synthetic copy {i} of {SOURCE.name} (benchmarks/records_under_load.py)"
        rel = f"profiles/p{i}.json"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(data), encoding="utf-8")
        names.append(rel)
    return names


def count_rows(path: Path) -> tuple[int, Counter[str], bool]:
    """(header lines, rows per profile, every row well-formed)."""
    text = path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    headers = sum(1 for r in rows if r == header)
    body = [r for r in rows[1:] if r != header]
    return headers, Counter(r[0] for r in body), all(len(r) == len(header) for r in body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--profiles", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="llmsizer-records-"))
    root.mkdir(parents=True, exist_ok=True)
    names = make_project(root, args.profiles)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--llmsizer-no-gate",
           "--llmsizer-csv", "rec.csv"]
    lost = duplicated = failed_runs = 0
    started = time.perf_counter()
    print(f"{args.writers} concurrent pytest runs x {args.repetitions} repetitions, {len(names)} profiles each "
          f"({root})")
    print(f"{'rep':>3}  {'expected':>8}  {'found':>5}  {'lost':>4}  {'dup':>3}  exit codes")
    for rep in range(1, args.repetitions + 1):
        procs = [subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(args.writers)]
        codes = [p.wait(timeout=600) for p in procs]
        failed_runs += sum(1 for c in codes if c != 0)
        headers, found, well_formed = count_rows(root / "rec.csv")
        want = args.writers * rep
        rep_lost = sum(max(0, want - found[n]) for n in names)
        rep_dup = sum(max(0, found[n] - want) for n in names) + (headers - 1) + (0 if well_formed else 1)
        lost, duplicated = rep_lost, rep_dup  # cumulative file state after this repetition
        print(f"{rep:>3}  {want * len(names):>8}  {sum(found.values()):>5}  {rep_lost:>4}  {rep_dup:>3}  {codes}")
    total = args.writers * args.repetitions * len(names)
    print(f"total: {total} rows expected, {total - lost + duplicated} found, {lost} lost, {duplicated} duplicated "
          f"or malformed, {failed_runs} failed runs; {time.perf_counter() - started:.1f} s")
    return 1 if lost or duplicated or failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
