"""THE validation pipeline: one profile, one calculator, one tolerance set -> one ``ProfileRecord``.

Every door calls :func:`validate` and decides nothing of its own: the pytest items raise what the record says, the
``validate`` and ``batch`` commands print and count it, the Python API wraps it, the reports and the metrics read it.
So the plugin, the CLI and the API cannot disagree about a verdict, a known failure or an integrity finding.

Steps (each failure is this profile's, never the caller's: a bug in a reader, a calculator or a check becomes the
record's ``error`` / ``integrity_error`` and a failed verdict):

1. facts of the profile, the known-failure entry of tolerances.yaml (matched by path when the file is unreadable);
2. accuracy: the calculator's answer compared quantity by quantity (``compare``), the match quality, advice;
3. integrity: every check of ``validation.integrity``, with the parameter count the profile gives or, failing that,
   the catalog's (the same count for every door);
4. verdicts: accuracy passed / failed, or xpassed / xfailed for a known failure; integrity passed / failed.

Pure: no pytest, no I/O (the calculator may do I/O of its own).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from pytest_llmsizer.calculator.result import Calculator, normalise_result
from pytest_llmsizer.errors import LlmsizerError
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.sanitize import clean, describe_exception, plain_data_problem
from pytest_llmsizer.validation.advice import recommendations
from pytest_llmsizer.validation.bands import band
from pytest_llmsizer.validation.compare import compare, render_table
from pytest_llmsizer.validation.integrity import check_profile
from pytest_llmsizer.validation.record import (
    ProfileRecord,
    empty_record,
    outcome_of,
    primary_error,
    row_record,
    set_profile_facts,
)
from pytest_llmsizer.validation.tolerances import Tolerances

if TYPE_CHECKING:
    from pytest_llmsizer.catalog.arch import ModelArch

__all__ = ["accuracy_failure", "catalog_parameters", "integrity_failure", "internal_error", "validate"]


def internal_error(stage: str, e: BaseException) -> str:
    """The message of an unexpected exception. Users point this at thousands of files from many tools: a bug this
    project has not met yet must fail that one profile, with what happened, and let every other one run."""
    return f"internal error while {stage} ({describe_exception(e)}); please report it as a pytest-llmsizer bug"


def catalog_parameters(profile: Profile) -> int | None:
    """The logical parameter count of the profile's model from the catalog, when the model is known."""
    from pytest_llmsizer.catalog.models import resolve_model  # the catalog loads only when a profile needs it

    try:
        return _total_parameters(resolve_model(profile.model.id).arch)
    except LlmsizerError:
        return None


@lru_cache(maxsize=256)
def _total_parameters(arch: ModelArch) -> int:
    """``total_parameters`` once per architecture (frozen and hashable; equal architectures, equal counts): it walks
    every layer, and a profile set holds many profiles of the same model."""
    from pytest_llmsizer.calculator.params import total_parameters

    return total_parameters(arch)


def validate(profile: Profile | None, profile_file: str, *, calculator: Calculator, calculator_name: str,
             tolerances: Tolerances, load_error: str | None = None, accuracy: bool = True) -> ProfileRecord:
    """Validate one loaded profile (or record why it could not be loaded: ``profile=None`` and ``load_error``).

    ``profile_file`` is the path as the user sees it (relative to the project root, ``/`` separators): known
    failures and overrides in tolerances.yaml match it. ``accuracy=False`` runs the integrity checks only (the
    calculator is not called; ``accuracy_verdict`` stays None): what a pytest integrity item needs when its
    profile's accuracy item runs elsewhere, or crashed its process.
    """
    record = empty_record(profile_file, calculator_name)
    known = tolerances.known_failure(profile, profile_file)
    if known is not None:
        record["known_failure"], record["known_failure_strict"] = known.reason, known.strict
    if profile is None:
        record["error"] = record["integrity_error"] = f"profile unreadable: {load_error or 'no profile'}"
        record["integrity_verdict"] = "failed"
        if accuracy:
            record["accuracy_verdict"] = "xfailed" if known is not None else "failed"
        return record
    set_profile_facts(record, profile)
    params = profile.model.num_parameters or catalog_parameters(profile)
    accuracy_ok = _accuracy(record, profile, calculator, calculator_name, tolerances) if accuracy else False
    if record["model_params"] is None:  # the profile's count, else the calculator's, else the catalog's
        record["model_params"] = params
    _integrity(record, profile, tolerances, params)
    if not accuracy:
        return record
    if known is not None:
        record["accuracy_verdict"] = "xpassed" if accuracy_ok else "xfailed"
    else:
        record["accuracy_verdict"] = "passed" if accuracy_ok else "failed"
    return record


def _accuracy(record: ProfileRecord, profile: Profile, calculator: Calculator, name: str,
              tolerances: Tolerances) -> bool:
    file = record["profile_file"]
    try:
        result = normalise_result(calculator(profile))
    except LlmsizerError as e:
        record["error"] = f"cannot estimate {file}: {e}"
        return False
    except Exception as e:  # a plugged-in calculator's bug fails this profile, not the run
        record["error"] = clean(f"calculator {name} raised {describe_exception(e)}", 2000)
        return False
    try:
        outcome = compare(profile, result, tolerances.for_profile(profile, file),
                          gate_derived=tolerances.gate_derived)
        advice = recommendations(profile, outcome)
    except Exception as e:
        record["error"] = f"{file}: {internal_error('comparing', e)}"
        return False
    quantity, pct = primary_error(outcome)
    record.update({
        "rows": [row_record(r) for r in outcome.rows],
        "assumptions": list(outcome.assumptions),
        "primary_quantity": quantity,
        "primary_error_pct": pct,
        "match_quality": band(pct),
        "recommendations": advice,
    })
    if result.inputs and isinstance(result.inputs.get("num_parameters"), int):
        record["model_params"] = record["model_params"] or result.inputs["num_parameters"]
    problem = plain_data_problem({"rows": record["rows"], "assumptions": record["assumptions"],
                                  "recommendations": record["recommendations"], "model_params": record["model_params"]},
                                 "record")
    if problem:  # it could not travel to an xdist controller: fail this profile, not the whole run
        record.update({"rows": [], "assumptions": [], "recommendations": [], "model_params": None,
                       "primary_quantity": None, "primary_error_pct": None, "match_quality": None})
        record["error"] = f"{file}: calculator {name} returned a result that cannot be recorded: {problem}"
        return False
    if not outcome.gating_rows:
        record["error"] = (f"{file}: nothing to compare: the profile holds no measured quantity that the "
                           "calculator estimates")
        return False
    return outcome.passed


def _integrity(record: ProfileRecord, profile: Profile, tolerances: Tolerances, params: int | None) -> None:
    try:
        report = check_profile(profile, tolerances.integrity, num_parameters=params)
    except Exception as e:
        record["integrity_error"] = f"{record['profile_file']}: {internal_error('running the integrity checks', e)}"
        record["integrity_verdict"] = "failed"
        return
    record["integrity_findings"] = [
        {"check": f.check, "severity": f.severity, "message": f.message, "values": dict(f.values)}
        for f in report.findings
    ]
    record["integrity_applied"] = list(report.applied)
    record["integrity_not_applicable"] = dict(report.not_applicable)
    record["integrity_off"] = list(report.off)
    record["integrity_verdict"] = "failed" if report.failed else "passed"


# -- the prepared failure messages (what a failing item prints; formatting only, the verdict is the record's) ------

def accuracy_failure(record: ProfileRecord) -> str | None:
    """The one failure message of a record whose accuracy failed (None when it passed): the component table, the
    recommendations and the calculator's assumptions."""
    if record["accuracy_verdict"] in ("passed", "xpassed", None):
        return None
    file = record["profile_file"]
    outcome = outcome_of(record)
    if record["error"] is not None:
        return record["error"] + ("\n" + render_table(outcome) if outcome.rows else "")
    names = ", ".join(r.quantity for r in outcome.failures)
    lines = [f"{file}: outside tolerance: {names}", render_table(outcome)]
    if record["recommendations"]:
        lines.append("recommendations:")
        lines += [f"  - {a}" for a in record["recommendations"]]
    if record["assumptions"]:
        lines.append("calculator assumptions:")
        lines += [f"  - {a}" for a in record["assumptions"]]
    return "\n".join(lines)


def integrity_failure(record: ProfileRecord) -> str | None:
    """The failure message of a record whose integrity failed (None when it passed)."""
    if record["integrity_verdict"] != "failed":
        return None
    if record["integrity_error"] is not None:
        return record["integrity_error"]
    failed = [f for f in record["integrity_findings"] if f["severity"] == "fail"]
    lines = [f"{record['profile_file']}: {len(failed)} integrity check(s) failed"]
    lines += [f"  - {f['message']}" for f in failed]
    return "\n".join(lines)
