"""Finding a calculator by name: the built-in one, a registered entry point, or ``module:attribute``.

Three ways to plug a calculator in:

* a name registered in the entry-point group ``pytest_llmsizer.calculators`` (``load_calculator("NAME")``);
* ``module:attribute`` (``load_calculator("pkg.mod:calc")``);
* an external program in any language, spoken to over stdin/stdout JSON (``command_calculator("CMD")`` in
  ``pytest_llmsizer.pluggable.command``, protocol ``llmsizer-calculator/1``, described in ``examples/README.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import replace
from importlib import metadata
from typing import Any

from pytest_llmsizer.calculator import Estimate, estimate
from pytest_llmsizer.calculator.coefficient_set import CoefficientSet
from pytest_llmsizer.calculator.resolve import request_from_profile
from pytest_llmsizer.calculator.result import Calculator
from pytest_llmsizer.errors import CalculatorError
from pytest_llmsizer.profile.model import Profile
from pytest_llmsizer.sanitize import describe_exception

ENTRY_POINT_GROUP = "pytest_llmsizer.calculators"
"""Entry-point group of named calculators: ``NAME = "module:calculator_callable"``."""



def builtin(profile: Profile) -> Estimate:
    """The project's own calculator, given the settings the profile records."""
    return estimate(request_from_profile(profile))


def calibrated(coefficients: CoefficientSet) -> Calculator:
    """The built-in calculator with another coefficient set (a calibration from ``llmsizer calibrate``)."""

    def calculator(profile: Profile) -> Estimate:
        return estimate(replace(request_from_profile(profile), calibration=coefficients))

    calculator.__name__ = f"builtin[{coefficients.name}]"
    return calculator


def calibration_label(coefficients: CoefficientSet) -> str:
    """How records and reports name the built-in calculator with a calibration."""
    return f"builtin (calibration {coefficients.name!r}: {coefficients.source})"


def registered_calculators() -> dict[str, metadata.EntryPoint]:
    """Calculators registered in the ``pytest_llmsizer.calculators`` entry-point group, by name."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, as for imports
    return found


def _available(registered: Mapping[str, Any]) -> str:
    names = ["builtin", *sorted(n for n in registered if n != "builtin")]
    return ", ".join(repr(n) for n in names)


def _checked_callable(spec: str, obj: Any) -> Calculator:
    if not callable(obj):
        raise CalculatorError(f"calculator {spec!r} is not callable (got {type(obj).__name__})")
    return obj


def load_calculator(spec: str | None) -> Calculator:
    """The calculator a spec names.

    ``None``, ``""`` or ``"builtin"``: the built-in calculator (whether or not its entry point is installed);
    ``"NAME"``: the entry point NAME of the group ``pytest_llmsizer.calculators``; ``"module:attribute"``: an
    importable callable. An entry point is looked up first, so a registered name may even contain a colon.
    """
    if spec is None or spec.strip() in ("", "builtin"):
        return builtin
    spec = spec.strip()
    registered = registered_calculators()
    if spec in registered:
        try:
            obj = registered[spec].load()
        except Exception as e:  # an installed plugin that cannot import is a configuration error, said in one line
            raise CalculatorError(f"calculator {spec!r}: entry point {registered[spec].value!r} "
                                  f"cannot be loaded: {type(e).__name__}: {e}") from None
        return _checked_callable(spec, obj)
    module_name, sep, attr = spec.partition(":")
    if not sep:
        raise CalculatorError(f"unknown calculator {spec!r}; registered calculators: {_available(registered)} "
                              f"(entry-point group {ENTRY_POINT_GROUP!r}); or give 'module:attribute'")
    if not module_name or not attr:
        raise CalculatorError(f"calculator {spec!r}: expected a registered name ({_available(registered)}) "
                              "or 'module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise CalculatorError(f"calculator {spec!r}: cannot import {module_name!r}: {e}") from None
    except Exception as e:  # a syntax error in it, or an exception while it runs: a usage error, said in one line
        raise CalculatorError(f"calculator {spec!r}: importing {module_name!r} failed: "
                              f"{describe_exception(e)}") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise CalculatorError(f"calculator {spec!r}: {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    return _checked_callable(spec, target)

