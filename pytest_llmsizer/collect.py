"""Profile files as pytest collectors and items.

A profile file yields ``<path>::accuracy`` (calculator against measurement) and ``<path>::integrity`` (is the
measurement sound?). Collection only loads and validates the JSON (every xdist worker collects every file, so it must
stay cheap and deterministic); the calculator and the checks run in ``runtest``. A file that cannot be read or
validated still yields both items, which fail with the load error: a collection error would stop every other
profile from running.

Each item leaves a record of plain builtins on itself; the plugin moves it onto the test report so that it reaches
the xdist controller, which writes the CSV / JSON records and evaluates the gate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import pytest

from pytest_llmsizer.calculator.params import total_parameters
from pytest_llmsizer.calculator.result import normalise_result
from pytest_llmsizer.catalog.arch import ModelArch
from pytest_llmsizer.catalog.models import resolve_model
from pytest_llmsizer.errors import LlmsizerError, Problem, ProfileError
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.report.records import accuracy_record
from pytest_llmsizer.sanitize import clean, clean_block, describe_exception, has_control, plain_data_problem
from pytest_llmsizer.state import STATE_KEY, PluginState
from pytest_llmsizer.validation.advice import recommendations
from pytest_llmsizer.validation.compare import compare, render_table
from pytest_llmsizer.validation.integrity import check_profile


def _internal(stage: str, e: Exception) -> str:
    """The message of an unexpected exception. Users point the plugin at thousands of files from many tools: a bug
    this project has not met yet must fail that one profile, with what happened, and let every other one run."""
    return f"internal error while {stage} ({describe_exception(e)}); please report it as a pytest-llmsizer bug"


class LlmsizerFailure(Exception):
    """A prepared failure message: shown as is, without a traceback."""


class DataQualityWarning(pytest.PytestWarning):
    """A profile's measurement looks unsound (an integrity check at severity "warn").

    ``-W error::pytest_llmsizer.DataQualityWarning`` turns these into failures of the integrity item.
    """


def catalog_parameters(profile: Profile) -> int | None:
    """The logical parameter count of the profile's model from the catalog, when the model is known."""
    try:
        return _total_parameters(resolve_model(profile.model.id).arch)
    except LlmsizerError:
        return None


@lru_cache(maxsize=256)
def _total_parameters(arch: ModelArch) -> int:
    """``total_parameters`` once per architecture (a frozen, hashable model; equal architectures have equal counts):
    it walks every layer, and a profile set holds many profiles of the same model."""
    return total_parameters(arch)


_MARKS = {name: getattr(pytest.mark, name) for name in ("llmsizer", "accuracy", "integrity")}
"""Mark decorators shared by every item (they are immutable): two fewer objects per item for the garbage collector
to walk, which shows with thousands of profiles."""


class ProfileFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        state: PluginState = self.config.stash[STATE_KEY]
        root = self.config.rootpath
        rel = self.path.relative_to(root).as_posix() if self.path.is_relative_to(root) else self.path.as_posix()
        if has_control(rel):
            rel = clean(rel, None)  # shown in headers and records: a file name's escape characters, escaped
        profile: Profile | None = None
        error: ProfileError | None = None
        try:
            profile = load_profile(self.path)
        except ProfileError as e:
            error = e
        except Exception as e:  # a reader bug must fail this file's items, not stop collection (see _internal)
            error = ProfileError(str(self.path), [Problem("$", _internal("reading the profile", e))])
        known = state.tolerances.known_failure(profile, rel)
        for cls, name in ((AccuracyItem, "accuracy"), (IntegrityItem, "integrity")):
            item = cls.from_parent(self, name=name, profile=profile, load_error=error, relpath=rel)
            item.add_marker(_MARKS["llmsizer"])
            item.add_marker(_MARKS[name])
            if profile is not None:
                item.extra_keyword_matches.update(profile.keywords())
            if known is not None and name == "accuracy":
                item.known_failure = known.reason
                item.add_marker(pytest.mark.xfail(reason=f"known failure: {known.reason}", strict=known.strict))
            yield item


class ProfileItem(pytest.Item):
    """Common to both items of a profile: the loaded profile, the load error, and the prepared-failure display."""

    def __init__(self, *, profile: Profile | None, load_error: ProfileError | None, relpath: str,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.profile = profile
        self.load_error = load_error
        self.relpath = relpath
        self.known_failure: str | None = None
        self.record: dict[str, Any] | None = None

    @property
    def state(self) -> PluginState:
        return self.config.stash[STATE_KEY]

    def _require_profile(self) -> Profile:
        if self.load_error is not None:
            raise LlmsizerFailure(f"profile unreadable: {self.load_error.render()}")
        assert self.profile is not None
        return self.profile

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, LlmsizerFailure):
            return clean_block(str(excinfo.value))  # file names, ids and calculator text: no escapes, bounded
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int, str]:
        # The domain is the failure headline. It must not be a suffix of the node id: pytest would then turn the
        # dots of ".json" into "::" in verbose lines.
        return self.path, 0, f"{self.name} of {self.relpath}"


class AccuracyItem(ProfileItem):
    def runtest(self) -> None:
        state = self.state
        self.record = accuracy_record(self.profile, self.relpath, None, calculator=state.calculator_name,
                                      error=self.load_error.render() if self.load_error else None)
        profile = self._require_profile()
        try:
            result = normalise_result(state.calculator(profile))
        except LlmsizerError as e:
            self.record["error"] = str(e)
            raise LlmsizerFailure(f"cannot estimate {self.relpath}: {e}") from None
        except Exception as e:  # a plugged-in calculator's bug fails this profile, not the run
            self.record["error"] = clean(describe_exception(e), 2000)
            raise LlmsizerFailure(f"calculator {state.calculator_name} raised {describe_exception(e)}") from None
        try:
            tolerances = state.tolerances.for_profile(profile, self.relpath)
            outcome = compare(profile, result, tolerances, gate_derived=state.tolerances.gate_derived)
            advice = recommendations(profile, outcome)
        except Exception as e:
            self.record["error"] = clean(describe_exception(e), 2000)
            raise LlmsizerFailure(f"{self.relpath}: {_internal('comparing', e)}") from None
        params = result.inputs.get("num_parameters") if result.inputs else None
        if isinstance(params, bool) or not isinstance(params, (int, float)) or not math.isfinite(params):
            params = None  # a count only; a calculator's "6.7B" or an object is not one
        else:
            params = int(params)
        self.record = accuracy_record(profile, self.relpath, outcome, calculator=state.calculator_name,
                                      recommendations=advice, calculated_params=params)
        problem = plain_data_problem(self.record, "record")
        if problem:  # it could not travel to the xdist controller: fail this profile, not the whole run
            self.record = accuracy_record(profile, self.relpath, None, calculator=state.calculator_name,
                                          error=f"calculator result is not plain data: {problem}")
            raise LlmsizerFailure(f"{self.relpath}: calculator {state.calculator_name} returned a result that "
                                  f"cannot be recorded: {problem}")
        total = outcome.row("total")
        if total is not None and total.percent is not None:
            self.user_properties.append(("llmsizer_total_error_pct", round(total.percent, 3)))
        if not outcome.gating_rows:
            raise LlmsizerFailure(
                f"{self.relpath}: nothing to compare: the profile holds no measured quantity that the calculator "
                "estimates\n" + render_table(outcome)
            )
        if not outcome.passed:
            names = ", ".join(r.quantity for r in outcome.failures)
            lines = [f"{self.relpath}: outside tolerance: {names}", render_table(outcome)]
            if advice:
                lines.append("recommendations:")
                lines += [f"  - {a}" for a in advice]
            if outcome.assumptions:
                lines.append("calculator assumptions:")
                lines += [f"  - {a}" for a in outcome.assumptions]
            raise LlmsizerFailure("\n".join(lines))


class IntegrityItem(ProfileItem):
    def runtest(self) -> None:
        self.record = {"profile_file": self.relpath, "integrity_findings": [], "integrity_applied": [],
                       "integrity_not_applicable": {}}
        profile = self._require_profile()
        params = profile.model.num_parameters or catalog_parameters(profile)
        try:
            report = check_profile(profile, self.state.tolerances.integrity, num_parameters=params)
        except Exception as e:
            raise LlmsizerFailure(f"{self.relpath}: {_internal('running the integrity checks', e)}") from None
        self.record.update({
            "integrity_findings": [
                {"check": f.check, "severity": f.severity, "message": f.message, "values": dict(f.values)}
                for f in report.findings
            ],
            "integrity_applied": list(report.applied),
            "integrity_not_applicable": dict(report.not_applicable),
        })
        for finding in report.findings:
            if finding.severity == "warn":  # the message names the check
                # Line 0, not Node.warn's line 1: the warnings summary prints the warned line of the file, and the
                # first line of a minified profile is all of it.
                warnings.warn_explicit(DataQualityWarning(clean(f"{self.relpath}: {finding.message}", 2000)),
                                       category=None, filename=str(self.path), lineno=0)
        failed = [f for f in report.findings if f.severity == "fail"]
        if failed:
            lines = [f"{self.relpath}: {len(failed)} integrity check(s) failed"]
            lines += [f"  - {f.message}" for f in failed]
            raise LlmsizerFailure("\n".join(lines))
