"""The original LLM Sizer and our calculator, side by side, on the main job's corpus, through our own plugin.

Run: ``python benchmarks/original_llm_sizer.py [--llm-sizer-dir DIR] [--profiles profiles] [-n N]``

Without ``--llm-sizer-dir`` (or ``$LLM_SIZER_DIR``) it copies ``../shared/third_party/llm-sizer`` into the user
cache (``~/.cache/pytest-llmsizer/llm-sizer-checkout/<digest>``) and runs ``npm ci`` there once (~15 s; the copy
is run, never vendored: see its NOTICE.md).

It runs ``pytest PROFILES`` twice, exactly as a user would: once with the built-in calculator and once with
``--llmsizer-calculator-cmd "python -m pytest_llmsizer.adapters.llm_sizer ..."``, each with ``--llmsizer-json``,
and prints the original guide's success metrics (mean |total error|, Good-or-better share, Poor share, weights
accuracy, KV accuracy, each with n) for each calculator: over every profile it could estimate, and over the
profiles both estimated. Then the five worst profiles for LLM Sizer, the profiles where LLM Sizer is closer than
ours, and why LLM Sizer declined the others.

Both runs use tolerances.yaml WITHOUT its known-failures list: those entries explain our calculator's misses, and
would otherwise drop the same profiles from LLM Sizer's metrics (or turn its answers into strict xpasses).
It exits 0 whatever the numbers: it measures, it does not judge.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_COPY = REPO.parent / "shared" / "third_party" / "llm-sizer"
sys.path.insert(0, str(REPO))

from pytest_llmsizer.adapters.llm_sizer_run import (  # noqa: E402
    ENV_DIR,
    SizerRunError,
    install_copy,
    locate_checkout,
)
from pytest_llmsizer.validation.bands import BANDS, GOOD_OR_BETTER, band  # noqa: E402
from pytest_llmsizer.validation.metrics import compute_metrics, in_gate  # noqa: E402
from pytest_llmsizer.validation.record import PRIMARY_FALLBACK  # noqa: E402
from pytest_llmsizer.validation.tolerances import load_tolerances  # noqa: E402


def shared_checkout(source: Path) -> Path:
    """A runnable copy of ``source`` in the user cache, installed once per distinct source tree."""
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and "node_modules" not in p.parts):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    dest = base / "pytest-llmsizer" / "llm-sizer-checkout" / digest.hexdigest()[:16]
    try:
        return locate_checkout(dest)
    except SizerRunError:
        print(f"installing {source} into {dest} (npm ci) ...", file=sys.stderr)
        return install_copy(source, dest)


def run_plugin(profiles: str, tolerances: Path, report: Path, jobs: int, calculator_cmd: str | None) -> float:
    """``pytest PROFILES`` with our plugin; returns the wall time. The JSON report is the result."""
    argv = [sys.executable, "-m", "pytest", profiles, "--llmsizer-profiles", profiles, "-q", "-p", "no:cacheprovider",
            "--llmsizer-no-gate",
            "--llmsizer-tolerances", str(tolerances), "--llmsizer-json", str(report)]
    if jobs > 1:
        argv += ["-n", str(jobs)]
    if calculator_cmd:
        argv += ["--llmsizer-calculator-cmd", calculator_cmd, "--llmsizer-calculator-timeout", "120"]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(REPO)})
    if not report.is_file():
        sys.exit(f"pytest wrote no report (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


GOOD = max(limit for limit, name in BANDS if name in GOOD_OR_BETTER)
"""|percent| up to which a quantity is Good or better (5)."""


def percentile(values: list[float] | tuple[float, ...], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def metric_cells(records: list[dict[str, Any]], gate: Any) -> dict[str, str]:
    metrics = compute_metrics(records, gate)
    return {row.name: row.current for row in metrics.rows if row.name != "profiles in the gate"} | {
        "profiles estimated": str(metrics.n_in_gate)}


def restricted(record: dict[str, Any], quantities: set[str]) -> dict[str, Any]:
    """``record`` judged on ``quantities`` only, its match quality re-derived by the plugin's rule (the total when
    compared, else the worst of weights, KV cache and KV tokens), so both calculators are banded on the same
    quantities."""
    rows = [r for r in record.get("rows") or [] if r["quantity"] in quantities]
    gating = [r for r in rows if r["gating"] and r["percent"] is not None]
    primary = next((r for r in gating if r["quantity"] == "total"), None) or max(
        (r for r in gating if r["quantity"] in PRIMARY_FALLBACK), key=lambda r: abs(r["percent"]), default=None)
    return record | {"rows": rows, "primary_quantity": primary and primary["quantity"],
                     "primary_error_pct": primary and primary["percent"],
                     "match_quality": band(primary["percent"]) if primary else None}


def compared(record: dict[str, Any]) -> set[str]:
    return {r["quantity"] for r in record.get("rows") or [] if r["gating"] and r["percent"] is not None}


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def row(record: dict[str, Any] | None, quantity: str) -> dict[str, Any] | None:
    if record is None:
        return None
    return next((r for r in record.get("rows") or [] if r["quantity"] == quantity and r["gating"]
                 and r["percent"] is not None), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm-sizer-dir", help=f"an LLM Sizer checkout after npm ci (default ${ENV_DIR}, else the "
                                                "shared copy installed into the user cache)")
    parser.add_argument("--profiles", default="profiles", help="what to validate (default: profiles/)")
    parser.add_argument("-n", "--jobs", type=int, default=1, help="pytest -n (xdist workers); default serial")
    args = parser.parse_args()

    given = args.llm_sizer_dir or os.environ.get(ENV_DIR)
    checkout = locate_checkout(given) if given else shared_checkout(SHARED_COPY)
    n_files = sum(1 for _ in (REPO / args.profiles).rglob("*.json")) if (REPO / args.profiles).is_dir() else 1
    adapter = shlex.join([sys.executable, "-m", "pytest_llmsizer.adapters.llm_sizer", "--llm-sizer-dir",
                          str(checkout)])

    with tempfile.TemporaryDirectory() as tmp:
        raw = yaml.safe_load((REPO / "tolerances.yaml").read_text(encoding="utf-8")) or {}
        dropped = len(raw.get("known_failures") or [])
        raw["known_failures"] = []
        tolerances = Path(tmp) / "tolerances.yaml"
        tolerances.write_text(yaml.safe_dump(raw), encoding="utf-8")
        gate = load_tolerances(tolerances).gate
        ours_wall = run_plugin(args.profiles, tolerances, Path(tmp) / "ours.json", args.jobs, None)
        theirs_wall = run_plugin(args.profiles, tolerances, Path(tmp) / "theirs.json", args.jobs, adapter)
        ours = {r["profile_file"]: r for r in json.loads((Path(tmp) / "ours.json").read_text())["profiles"]}
        theirs = {r["profile_file"]: r for r in json.loads((Path(tmp) / "theirs.json").read_text())["profiles"]}

    both = sorted(p for p in ours if in_gate(ours[p]) and p in theirs and in_gate(theirs[p]))
    columns = {
        "ours, all": metric_cells(list(ours.values()), gate),
        "LLM Sizer, all": metric_cells(list(theirs.values()), gate),
        "ours, both": metric_cells([restricted(ours[p], compared(theirs[p])) for p in both], gate),
        "LLM Sizer, both": metric_cells([theirs[p] for p in both], gate),
    }
    names = list(next(iter(columns.values())))
    targets = {r.name: r.target for r in compute_metrics([], gate).rows}
    print(f"{dt.date.today().isoformat()}: {len(ours)} profiles under {args.profiles}/ ({n_files} JSON files); "
          f"LLM Sizer checkout {checkout}")
    print(f"tolerances.yaml without its {dropped} known failures; plugin wall time: ours {ours_wall:.1f} s, "
          f"LLM Sizer {theirs_wall:.1f} s (-n {args.jobs})")
    print("'all': every profile that calculator estimated, on every quantity it returned; 'both': the profiles both "
          "estimated, on the quantities LLM Sizer returned\n")
    width = max(len(n) for n in names)
    header = f"{'metric':<{width}}  {'target':<7}" + "".join(f"  {c:<16}" for c in columns)
    print(header)
    print("-" * len(header))
    for name in names:
        cells = "".join(f"  {col[name]:<16}" for col in columns.values())
        print(f"{name:<{width}}  {targets.get(name, ''):<7}{cells}")

    estimated = [r for r in theirs.values() if in_gate(r)]
    worst = sorted(estimated, key=lambda r: abs(r["primary_error_pct"] or 0), reverse=True)[:5]
    print("\nfive worst profiles for LLM Sizer (quantity, profiled - calculated in % of profiled; ours beside):")
    for r in worst:
        mine = row(ours.get(r["profile_file"]), r["primary_quantity"])
        print(f"  {r['profile_file']}: {r['primary_quantity']} {pct(r['primary_error_pct'])} ({r['match_quality']});"
              f" ours {pct(mine['percent']) if mine else 'not estimated'}")

    pairs = []  # (profile, quantity, LLM Sizer's percent, ours or None) for every quantity LLM Sizer was judged on
    for p in sorted(theirs):
        for theirs_row in theirs[p].get("rows") or []:
            if theirs_row["gating"] and theirs_row["percent"] is not None:
                mine = row(ours.get(p), theirs_row["quantity"])
                pairs.append((p, theirs_row["quantity"], theirs_row["percent"], mine and mine["percent"]))
    for quantity in sorted({q for _, q, _, _ in pairs}):
        both_pcts = [(abs(t), abs(o)) for _, q, t, o in pairs if q == quantity and o is not None]
        if both_pcts:
            t_abs, o_abs = zip(*both_pcts, strict=True)
            print(f"\n{quantity} |error| where both estimated (n={len(both_pcts)}): median / p90 "
                  f"ours {percentile(o_abs, 0.5):.2f}% / {percentile(o_abs, 0.9):.2f}%, "
                  f"LLM Sizer {percentile(t_abs, 0.5):.2f}% / {percentile(t_abs, 0.9):.2f}%")

    closer = Counter(theirs[p].get("model_id") for p, _, t, o in pairs if o is None or abs(t) < abs(o))
    print(f"\nLLM Sizer closer than ours on {sum(closer.values())} of {len(pairs)} compared quantities"
          + (", by model: " + ", ".join(f"{m} {n}" for m, n in closer.most_common()) if closer else ""))
    right = [(p, q, t, o) for p, q, t, o in pairs if abs(t) <= GOOD and (o is None or abs(o) > GOOD)]
    print(f"where LLM Sizer is right (|error| <= {GOOD:g}%) and ours is wrong (> {GOOD:g}%, or no answer): "
          f"{len(right) or 'none'}")
    for p, quantity, t, o in right:
        print(f"  {p}: {quantity} LLM Sizer {pct(t)}, ours {pct(o) if o is not None else 'no answer'}")

    reasons = Counter()
    for r in theirs.values():
        if not in_gate(r):
            why = (r.get("error") or "estimated, but the profile measures none of the quantities LLM Sizer "
                   "returns for it (weights)").split("declined: ")[-1]
            reasons[why.split(" (")[0].split(": ")[0] if "not in LLM Sizer" not in why else
                    "model not in LLM Sizer's catalog"] += 1
    print(f"\nLLM Sizer did not estimate {sum(reasons.values())} of {len(theirs)} profiles:")
    for why, count in reasons.most_common():
        print(f"  {count:4d}  {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
