"""Fit the built-in calculator's coefficients on the "fit" half of the real vLLM logs (``llmsizer calibrate``'s code).

Run: ``python benchmarks/fit.py [--split fit|all] [--write]``

A thin caller: the committed profiles of ``profiles/vme-dev`` whose record is in the "fit" split
(``vllm_records.used_for_fitting``: release builds; every record with ``--split all``) are fitted by
``pytest_llmsizer.calibration`` exactly as ``llmsizer calibrate`` fits a user's profiles (its module docstring says
how each family is fitted), cross-validated by model. ``--write`` replaces
``pytest_llmsizer/calculator/data/coefficients.json`` with the result (name "builtin", each entry with its profiles,
date, uncertainty and held-out error). ``benchmarks/accuracy.py``
reports accuracy on the other half.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vllm_records import DEFAULT_DATA, REPO, used_for_fitting, vme_cases

from pytest_llmsizer.calculator.coefficient_set import BUILTIN_NAME, builtin_set
from pytest_llmsizer.calibration.fit import calibrate
from pytest_llmsizer.calibration.observe import observe
from pytest_llmsizer.calibration.render import render_calibration
from pytest_llmsizer.profile.load import load_profile

DATA_FILE = REPO / "pytest_llmsizer" / "calculator" / "data" / "coefficients.json"


PROFILES = REPO / "profiles" / "vme-dev"
RECORD_ID = re.compile(r"record ([0-9a-f-]{36})")


def fit_profile_paths(split: str) -> list[Path]:
    """The committed vme-dev profiles of a split (``used_for_fitting`` for "fit"), by the record id in their source."""
    wanted = {c.record_id for c in vme_cases(DEFAULT_DATA / "vme-dev.jsonl") if split == "all" or used_for_fitting(c)}
    paths = []
    for path in sorted(PROFILES.glob("*.json")):
        match = RECORD_ID.search(load_profile(path).source.reference)
        if match and match.group(1) in wanted:
            paths.append(path)
    return paths


def fit_profiles(split: str) -> tuple[list, list]:
    """(observations, skipped) of the committed vme-dev profiles of a split, as ``llmsizer calibrate`` reads them."""
    observations, skipped = [], []
    for path in fit_profile_paths(split):
        label = str(path.relative_to(REPO))
        result = observe(load_profile(path), label)
        (skipped.append((label, result)) if isinstance(result, str) else observations.append(result))
    return observations, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("fit", "all"), default="fit")
    parser.add_argument("--write", action="store_true", help=f"write {DATA_FILE.relative_to(REPO)}")
    parser.add_argument("--detailed", action="store_true")
    args = parser.parse_args(argv)
    observations, skipped = fit_profiles(args.split)
    produced_by = f"python benchmarks/fit.py --split {args.split} --write (profiles/vme-dev, {args.split} split)"
    result = calibrate(observations, builtin_set(), name=BUILTIN_NAME, skipped=skipped, produced_by=produced_by)
    print(render_calibration(result, detailed=args.detailed))
    if args.write:
        doc = result.coefficients.to_document()
        doc["profiles"]["files"] = (f"{len(observations)} profiles of profiles/vme-dev ({args.split} split: "
                                     "vllm_records.used_for_fitting)")
        DATA_FILE.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {DATA_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
