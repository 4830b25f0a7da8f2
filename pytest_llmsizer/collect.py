"""Profile files as pytest collectors and items.

A profile file yields ``<path>::accuracy``. Collection only loads and validates the JSON (every xdist worker
collects every file, so it must stay cheap and deterministic); the calculator runs in ``runtest``. A file that
cannot be read or validated still yields its item, which fails with the load error: a collection error would stop
every other profile from running.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_llmsizer.calculators import normalise_result
from pytest_llmsizer.errors import LlmsizerError, ProfileError
from pytest_llmsizer.profile.load import load_profile
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.state import STATE_KEY, PluginState
from pytest_llmsizer.validation.compare import Outcome, compare, render_table


class LlmsizerFailure(Exception):
    """A prepared failure message: shown as is, without a traceback."""


class ProfileFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        state: PluginState = self.config.stash[STATE_KEY]
        rel = self.path.relative_to(self.config.rootpath).as_posix() if self.path.is_relative_to(
            self.config.rootpath) else self.path.as_posix()
        profile: Profile | None = None
        error: ProfileError | None = None
        try:
            profile = load_profile(self.path)
        except ProfileError as e:
            error = e
        item = AccuracyItem.from_parent(self, name="accuracy", profile=profile, load_error=error, relpath=rel)
        item.add_marker(pytest.mark.llmsizer)
        item.add_marker(pytest.mark.accuracy)
        if profile is not None:
            item.extra_keyword_matches.update(profile.keywords())
        known = state.tolerances.known_failure(profile, rel)
        if known is not None:
            item.add_marker(pytest.mark.xfail(reason=f"known failure: {known.reason}", strict=known.strict))
        yield item


class AccuracyItem(pytest.Item):
    def __init__(self, *, profile: Profile | None, load_error: ProfileError | None, relpath: str,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.profile = profile
        self.load_error = load_error
        self.relpath = relpath
        self.outcome: Outcome | None = None

    def runtest(self) -> None:
        if self.load_error is not None:
            raise LlmsizerFailure(f"profile unreadable: {self.load_error.render()}")
        assert self.profile is not None
        state: PluginState = self.config.stash[STATE_KEY]
        try:
            result = normalise_result(state.calculator(self.profile))
        except LlmsizerError as e:
            raise LlmsizerFailure(f"cannot estimate {self.relpath}: {e}") from None
        except Exception as e:  # a plugged-in calculator's bug fails this profile, not the run
            raise LlmsizerFailure(
                f"calculator {state.calculator_name} raised {type(e).__name__}: {e}"
            ) from None
        tolerances = state.tolerances.for_profile(self.profile, self.relpath)
        outcome = compare(self.profile, result, tolerances, gate_derived=state.tolerances.gate_derived)
        self.outcome = outcome
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
            if outcome.assumptions:
                lines.append("calculator assumptions:")
                lines += [f"  - {a}" for a in outcome.assumptions]
            raise LlmsizerFailure("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, LlmsizerFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int, str]:
        # The domain is the failure headline. It must not be a suffix of the node id: pytest would then turn the
        # dots of ".json" into "::" in verbose lines.
        return self.path, 0, f"{self.name} of {self.relpath}"
