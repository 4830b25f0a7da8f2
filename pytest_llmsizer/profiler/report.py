"""What ``llmsizer profile`` prints after a run: where the profile went, or why the run failed with the log's tail;
then the integrity checks and the validation against the built-in calculator, on the same core as
``llmsizer validate``."""

from __future__ import annotations

import sys
from typing import Any

from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.units import GiB

EXIT_OK, EXIT_FAILED = 0, 1


def device_lines(profile: Any) -> list[str]:
    dev = profile.measurements.device
    if dev is None or dev.baseline_bytes is None:
        return []
    lines = [f"device memory per GPU ({dev.tool}), GiB = 2^30 bytes:"]
    for i, (b, p, f) in enumerate(zip(dev.baseline_bytes, dev.peak_bytes or [], dev.final_bytes or [], strict=False)):
        lines.append(f"  GPU {i}: baseline {b / GiB:.3f}  peak {p / GiB:.3f}  final {f / GiB:.3f}  "
                     f"(peak - baseline {(p - b) / GiB:.3f})")
    return lines


def print_result(result: Any, *, validate: bool = True) -> int:
    """Print one run's outcome; 0 when the profile was written and is sound, 1 when the run failed."""
    if result.status != "done":
        print(f"llmsizer profile: run failed: {result.reason}", file=sys.stderr)
        if result.profile_path is not None:
            print(f"partial profile (marked failed): {result.profile_path}", file=sys.stderr)
        if result.profile is not None:
            for line in device_lines(result.profile):
                print(line, file=sys.stderr)
        print(f"engine log: {result.log_path}; its last lines:", file=sys.stderr)
        for line in result.log_tail.splitlines():
            print(f"  | {line}", file=sys.stderr)
        return EXIT_FAILED
    profile = result.profile
    held = ", ".join(profile.measurements.components.present()) or "no memory component"
    print(f"wrote {result.profile_path}: {profile.model.id}, {held}; engine log {result.log_path}")
    for line in device_lines(profile):
        print(line)
    if not validate:
        return EXIT_OK
    from pytest_llmsizer.api import validate_loaded
    from pytest_llmsizer.report.text import render_validation

    try:
        report = validate_loaded(profile, str(result.profile_path))
    except LlmsizerError as e:
        print(f"(no validation against the calculator: {e})")
        return EXIT_OK
    print()
    print(render_validation(report))
    return EXIT_OK
