"""Shared set-up of the end-to-end plugin tests: a pytester project holding chosen real committed profiles.

A helper module, not a conftest (pytest puts ``tests/`` on ``sys.path``, the folder having no ``__init__.py``): only
the tests that import it pay for it, and their fixtures stay visible in each file.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles" / "vllm-issue-threads"

# The outer test run has imported pytest_llmsizer already, so in-process runs cannot assertion-rewrite it.
INI = """
[pytest]
llmsizer_profile_paths = profiles
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
"""


def make_project(pytester: pytest.Pytester, names: Iterable[str], *, tolerances: str | None = None,
                 ini: str = INI) -> pytest.Pytester:
    """Write the ini, copy the named profiles of ``profiles/vllm-issue-threads`` into ``profiles/`` and, when given,
    write ``tolerances.yaml``."""
    pytester.makeini(ini)
    (pytester.path / "profiles").mkdir()
    for name in names:
        shutil.copy(PROFILES / name, pytester.path / "profiles" / name)
    if tolerances is not None:
        (pytester.path / "tolerances.yaml").write_text(tolerances)
    return pytester
