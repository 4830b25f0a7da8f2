"""Fit the built-in calculator's coefficients on the "fit" half of the real vLLM logs (``llmsizer calibrate``'s code).

Run: ``python benchmarks/fit.py [--data DIR] [--split fit|all] [--write]``

A thin caller: the records of ``vme-dev.jsonl`` (``used_for_fitting``: the "fit" split, release builds, unless
``--split all``) become native profiles (``vllm_records.profile_for``), and ``pytest_llmsizer.calibration`` fits
them exactly as ``llmsizer calibrate`` fits a user's profiles (its module docstring says how each family is fitted),
cross-validated by model. ``--write`` replaces ``pytest_llmsizer/calculator/data/coefficients.json`` with the result
(name "builtin", each entry with its profiles, date, uncertainty and held-out error). ``benchmarks/accuracy.py``
reports accuracy on the other half.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vllm_records import DEFAULT_DATA, REPO, profile_for, used_for_fitting, vme_cases

from pytest_llmsizer.calculator.coefficient_set import BUILTIN_NAME, builtin_set
from pytest_llmsizer.calibration.fit import calibrate
from pytest_llmsizer.calibration.observe import observe
from pytest_llmsizer.calibration.render import render_calibration

DATA_FILE = REPO / "pytest_llmsizer" / "calculator" / "data" / "coefficients.json"


def fit_profiles(data: Path, split: str) -> tuple[list, list]:
    """(observations, skipped) of the vme-dev records of a split."""
    observations, skipped = [], []
    for case in vme_cases(data / "vme-dev.jsonl"):
        if split == "fit" and not used_for_fitting(case):
            continue
        label = f"vme-dev.jsonl#{case.record_id}"
        try:
            result = observe(profile_for(case), label)
        except ValueError as e:  # a record the native format rejects
            result = f"not a valid profile: {str(e).splitlines()[0]}"
        (skipped.append((label, result)) if isinstance(result, str) else observations.append(result))
    return observations, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", choices=("fit", "all"), default="fit")
    parser.add_argument("--write", action="store_true", help=f"write {DATA_FILE.relative_to(REPO)}")
    parser.add_argument("--detailed", action="store_true")
    args = parser.parse_args(argv)
    observations, skipped = fit_profiles(args.data, args.split)
    produced_by = f"python benchmarks/fit.py --split {args.split} --write (vme-dev.jsonl, {args.split} half)"
    result = calibrate(observations, builtin_set(), name=BUILTIN_NAME, skipped=skipped, produced_by=produced_by)
    print(render_calibration(result, detailed=args.detailed))
    if args.write:
        doc = result.coefficients.to_document()
        doc["profiles"]["files"] = (f"{len(observations)} records of vme-dev.jsonl ({args.split} split: "
                                     "vllm_records.used_for_fitting)")
        DATA_FILE.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {DATA_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
