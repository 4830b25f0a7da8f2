"""Profile files as pytest collectors and items.

A profile file yields ``<path>::accuracy`` (calculator against measurement) and ``<path>::integrity`` (is the
measurement sound?). Collection only loads and validates the JSON (every xdist worker collects every file, so it must
stay cheap and deterministic); the validation pipeline runs in ``runtest``, once per file and process, and both items
read its one record: they raise what the record says and decide nothing themselves. A file that cannot be read or
validated still yields both items, which fail with the load error: a collection error would stop every other
profile from running.

The record travels to the xdist controller on the test report (``report.llmsizer``, plain builtins), where the plugin
writes the CSV / JSON records and evaluates the gate. Heavy modules (pydantic, the calculator, the catalog) are
imported here only when a profile is collected or run.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmsizer.sanitize import clean, clean_block, has_control
from pytest_llmsizer.state import STATE_KEY, PluginState

if TYPE_CHECKING:
    from pytest_llmsizer.profile.model import Profile
    from pytest_llmsizer.validation.record import ProfileRecord


class LlmsizerFailure(Exception):
    """A prepared failure message: shown as is, without a traceback."""


class DataQualityWarning(pytest.PytestWarning):
    """A profile's measurement looks unsound (an integrity check at severity "warn").

    ``-W error::pytest_llmsizer.DataQualityWarning`` turns these into failures of the integrity item.
    """


_MARKS = {name: getattr(pytest.mark, name) for name in ("llmsizer", "accuracy", "integrity")}
"""Mark decorators shared by every item (they are immutable): two fewer objects per item for the garbage collector
to walk, which shows with thousands of profiles."""


class ProfileFile(pytest.File):
    profile: Profile | None = None
    load_error: str | None = None
    relpath: str = ""
    _record: ProfileRecord | None = None
    _integrity_record: ProfileRecord | None = None

    def collect(self) -> Iterator[pytest.Item]:
        from pytest_llmsizer.errors import ProfileError
        from pytest_llmsizer.profile.load import load_profile
        from pytest_llmsizer.validation.pipeline import internal_error

        state: PluginState = self.config.stash[STATE_KEY]
        root = self.config.rootpath
        self.relpath = self.path.relative_to(root).as_posix() if self.path.is_relative_to(root) \
            else self.path.as_posix()
        if has_control(self.relpath):
            self.relpath = clean(self.relpath, None)  # shown in headers and records: escape characters escaped
        try:
            self.profile = load_profile(self.path)
        except ProfileError as e:
            self.load_error = e.render()
        except Exception as e:  # a reader bug must fail this file's items, not stop collection
            self.load_error = f"{self.path}: $: {internal_error('reading the profile', e)}"
        known = state.tolerances.known_failure(self.profile, self.relpath)
        keywords = self.profile.keywords() if self.profile is not None else set()
        for cls, name in ((AccuracyItem, "accuracy"), (IntegrityItem, "integrity")):
            item = cls.from_parent(self, name=name)
            item.add_marker(_MARKS["llmsizer"])
            item.add_marker(_MARKS[name])
            item.extra_keyword_matches.update(keywords)
            if known is not None and name == "accuracy":
                item.add_marker(pytest.mark.xfail(reason=f"known failure: {known.reason}", strict=known.strict))
            yield item

    def record(self, *, accuracy: bool = True) -> ProfileRecord:
        """The file's validation record: the whole pipeline runs once per process, for the accuracy item; an
        integrity item whose accuracy item has not run here (xdist may send it to another worker, or it may have
        crashed its worker) gets the integrity part alone, without calling the calculator."""
        if self._record is not None:
            return self._record
        if not accuracy and self._integrity_record is not None:
            return self._integrity_record
        from pytest_llmsizer.validation.pipeline import validate

        state: PluginState = self.config.stash[STATE_KEY]
        record = validate(self.profile, self.relpath, calculator=state.calculator,
                          calculator_name=state.calculator_name, tolerances=state.tolerances,
                          load_error=self.load_error, accuracy=accuracy)
        if accuracy:
            self._record = record
        else:
            self._integrity_record = record
        return record


class ProfileItem(pytest.Item):
    """Common to both items of a profile: the shared record and the prepared-failure display."""

    parent: ProfileFile
    record: ProfileRecord | None = None

    @property
    def relpath(self) -> str:
        return self.parent.relpath

    def _record(self) -> ProfileRecord:
        from pytest_llmsizer.validation.record import integrity_part

        if isinstance(self, AccuracyItem):
            record = self.parent.record().copy()
            record["node_id"] = self.nodeid
        else:
            record = integrity_part(self.parent.record(accuracy=False))
        self.record = record
        return record

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
        from pytest_llmsizer.validation.pipeline import accuracy_failure
        from pytest_llmsizer.validation.record import row_of

        record = self._record()
        total = row_of(record, "total")
        if total is not None and total["percent"] is not None:
            self.user_properties.append(("llmsizer_total_error_pct", round(total["percent"], 3)))
        message = accuracy_failure(record)
        if message is not None:
            raise LlmsizerFailure(message)


class IntegrityItem(ProfileItem):
    def runtest(self) -> None:
        from pytest_llmsizer.validation.pipeline import integrity_failure

        record = self._record()
        for finding in record["integrity_findings"]:
            if finding["severity"] == "warn":
                # the message names the check. Line 0, not Node.warn's line 1: the warnings summary prints the warned
                # line of the file, and the first line of a minified profile is all of it.
                warnings.warn_explicit(DataQualityWarning(clean(f"{self.relpath}: {finding['message']}", 2000)),
                                       category=None, filename=str(self.path), lineno=0)
        message = integrity_failure(record)
        if message is not None:
            raise LlmsizerFailure(message)
