"""How calculators are plugged in: by name or ``module:attribute`` (``loader``), or as a program (``command``).

Named for what it does so it does not sit beside ``calculator/`` (the built-in calculator) under a near-identical
name. Both doors yield a ``Calculator``: a callable ``(Profile) -> result`` that ``calculator.result``
normalises into a ``CalculatorResult``.
"""

from pytest_llmsizer.pluggable.command import PROTOCOL, CommandCalculator, command_calculator, protocol_request
from pytest_llmsizer.pluggable.loader import ENTRY_POINT_GROUP, builtin, load_calculator, registered_calculators

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROTOCOL",
    "CommandCalculator",
    "builtin",
    "command_calculator",
    "load_calculator",
    "protocol_request",
    "registered_calculators",
]
