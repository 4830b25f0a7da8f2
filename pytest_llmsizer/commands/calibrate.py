"""``llmsizer calibrate PROFILES... -o calibration.yaml``: fit the calculator's coefficients to your profiles.

Cross-validated by model (a model never sits on both sides of a fold), refusing to write a calibration that makes the
held-out error worse (``--force`` writes it anyway). Use the file with ``--calibration`` (estimate, validate, batch)
or the plugin's ``--llmsizer-calibration``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from pytest_llmsizer.calculator.coefficient_set import builtin_set, load_calibration
from pytest_llmsizer.calibration.fit import DEFAULT_FOLDS, calibrate
from pytest_llmsizer.calibration.observe import Observation, observe
from pytest_llmsizer.calibration.render import calibration_json, render_calibration
from pytest_llmsizer.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    positive_int,
    tolerances_from_args,
    write_new_file,
)
from pytest_llmsizer.commands.discover import profile_files
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profile.load import load_profile


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", help="fit the calculator's coefficients to profiles (cross-validated by model)",
        description="Fit the built-in calculator's coefficients (sampler term, non-torch memory by version / "
                    "platform / GPUs, CUDA-graph pool, CUDA context) on the profiles given, with k-fold "
                    "cross-validation grouped by model; print the held-out error per quantity before and after, "
                    "what was fitted and what had no information (left unchanged), and write the calibration. "
                    "A fitted coefficient that makes the held-out error of a quantity it feeds worse is not written "
                    "(the base value is kept; --force writes it). Exit 0 written; 1 nothing written (every fitted "
                    "coefficient refused, or nothing to fit); 2 bad input.",
    )
    p.add_argument("paths", nargs="+", metavar="PROFILES", help="profile files or directories (searched for *.json)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="calibration file to write (YAML)")
    p.add_argument("--name", metavar="NAME", help="name of the calibration (default: the output file's stem)")
    p.add_argument("--base", metavar="FILE",
                   help="start from this calibration instead of the built-in coefficients")
    p.add_argument("--folds", type=positive_int, default=DEFAULT_FOLDS, metavar="K",
                   help=f"cross-validation folds (default {DEFAULT_FOLDS}; at most one per model)")
    p.add_argument("--force", action="store_true",
                   help="write even when held-out error gets worse, and overwrite an existing output file")
    p.add_argument("--tolerances", metavar="PATH", default=None,
                   help="skip the known failures listed in this tolerances YAML (default: ./tolerances.yaml if "
                        "present), as the gate does")
    p.add_argument("--detailed", action="store_true", help="list every unchanged coefficient and skipped profile")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not args.force:
        raise LlmsizerError(f"{output} exists; pass --force to overwrite it")
    base = load_calibration(args.base) if args.base else builtin_set()
    files = profile_files(args.paths)
    if not files:
        raise LlmsizerError(f"no *.json files found under {' '.join(args.paths)}")
    tolerances = tolerances_from_args(args)
    observations: list[Observation] = []
    skipped: list[tuple[str, str]] = []
    for path in files:
        seen: Observation | str  # an observation, or why the profile was skipped
        try:
            profile = load_profile(path)
            known = tolerances.known_failure(profile, str(path))
            seen = f"known failure: {known.reason}" if known else observe(profile, str(path))
        except LlmsizerError as e:
            seen = f"unreadable: {str(e).splitlines()[0]}"
        if isinstance(seen, str):
            skipped.append((str(path), seen))
        else:
            observations.append(seen)
    command = "llmsizer calibrate " + " ".join(args.paths) + f" -o {args.output}"
    result = calibrate(observations, base, name=args.name or output.stem, skipped=skipped, folds=args.folds,
                       produced_by=command, force=args.force)
    print(json.dumps(calibration_json(result), indent=2) if args.json else render_calibration(
        result, detailed=args.detailed))
    if not result.accepted and not (args.force and result.fitted):
        print(f"llmsizer calibrate: not written: {result.refusal}"
              + ("; --force writes it anyway" if result.fitted else ""), file=sys.stderr)
        return EXIT_FAILED
    doc = result.coefficients.to_document()
    if result.forced or (args.force and not result.accepted):
        doc["forced"] = f"written with --force although {result.refusal}"
    elif result.refused:
        print(f"llmsizer calibrate: {len(result.refused)} fitted coefficient(s) not written, base value kept: "
              f"{result.refusal}", file=sys.stderr)
    header = (f"# llmsizer calibration {result.coefficients.name!r}: use with --calibration {output} "
              f"(llmsizer estimate/validate/batch) or --llmsizer-calibration {output} (pytest)\n")
    write_new_file(output, header + yaml.safe_dump(doc, sort_keys=False, width=118), force=args.force)
    print(f"wrote {output}" + (" (forced)" if "forced" in doc else ""), file=sys.stderr)
    return EXIT_OK
