"""``llmsizer validate PROFILE``: what the validation guide shows for one profile, on the plugin's core."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

from pytest_llmsizer.api import apply_overrides, validate_loaded
from pytest_llmsizer.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_calculator_options,
    calculator_from_args,
    memory_gib,
    parameter_count,
    tolerances_from_args,
)
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.report.csv_record import append_records
from pytest_llmsizer.report.text import render_validation
from pytest_llmsizer.sanitize import clean_block, clean_tree


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="compare one profile with a calculator",
        description="Show a profile's model, GPU and configuration, the profiled memory (ground truth) and the exact "
                    "calculator inputs, then compare with the built-in calculator (or another one, or a total you "
                    "give) and print the component table, the summary and recommendations. Exit 0 within "
                    "tolerances, 1 outside, 2 on bad input.",
    )
    p.add_argument("profile", metavar="PROFILE", help="a profile JSON file (native or original LLM Sizer format)")
    p.add_argument("--calculator-total", type=memory_gib, metavar="GB",
                   help="compare the profile's measured total with this calculated total (GB = 1e9 bytes)")
    p.add_argument("--record", metavar="CSV", help="append the result to a CSV record (the plugin's columns)")
    p.add_argument("--model-id", help="use this model id instead of the profile's")
    p.add_argument("--gpu-id", help="use this GPU name instead of the profile's")
    p.add_argument("--inference-quant", metavar="Q", help="weights quantization: awq, gptq, fp8, int8, none, ...")
    p.add_argument("--kv-quant", metavar="K", help="KV cache dtype: auto, fp8, fp8_e4m3, ...")
    p.add_argument("--model-params", type=parameter_count, metavar="N", help="parameter count (8.03e9 or 8.03B)")
    add_calculator_options(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    tolerances = tolerances_from_args(args)
    profile = apply_overrides(
        load_profile(args.profile), model_id=args.model_id, gpu_id=args.gpu_id,
        inference_quant=args.inference_quant, kv_quant=args.kv_quant,
        model_params=round(args.model_params) if args.model_params else None,
    )
    calculator, name = calculator_from_args(args)
    report = validate_loaded(profile, args.profile, calculator=calculator, calculator_name=name,
                             calculator_total_gb=args.calculator_total, tolerances=tolerances)
    if args.record:
        append_records(Path(args.record), [report.record], datetime.now(timezone.utc).isoformat(timespec="seconds"))
    # user-supplied strings (ids, versions, notes) shortened and without control characters, in both forms
    print(json.dumps(clean_tree(report.to_json()), indent=2, default=str) if args.json
          else clean_block(render_validation(report)))
    return EXIT_OK if report.summary.passed else EXIT_FAILED
