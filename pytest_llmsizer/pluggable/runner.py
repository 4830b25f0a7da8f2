"""Running a plugged-in Python calculator under a time limit.

How: each call runs in a new **daemon thread**; the caller waits at most ``timeout_s`` seconds for it. A calculator
that has not returned by then fails that profile with ``CalculatorError`` ("did not return within N s"), and the
run goes on with the next profile.

What is killed: nothing. Python cannot stop a thread from outside, so the abandoned call keeps running in the
background until it returns or the process exits (a daemon thread never keeps the process alive). A calculator that
hangs in C code while holding the GIL cannot be preempted by any in-process means; use ``--calculator-cmd`` (a
subprocess, whose whole process group is killed at the timeout) for calculators that may do that.

A thread rather than a subprocess because a Python calculator receives a live ``Profile`` and may return live
objects: a subprocess would have to pickle both, and fork a process that (under pytest-xdist) runs execnet's threads.
The built-in calculator is not wrapped (it is pure arithmetic, and a thread per call would cost time).
"""

from __future__ import annotations

import threading
from typing import Any

from pytest_llmsizer.calculator.result import Calculator
from pytest_llmsizer.errors import CalculatorError
from pytest_llmsizer.profile.model import Profile


class TimedCalculator:
    """A Python calculator called in a daemon thread, given at most ``timeout_s`` seconds per profile."""

    def __init__(self, calculator: Calculator, timeout_s: float, name: str) -> None:
        self.calculator = calculator
        self.timeout_s = timeout_s
        self.name = name

    def __repr__(self) -> str:
        return f"TimedCalculator({self.name!r}, timeout_s={self.timeout_s:g})"

    def __call__(self, profile: Profile) -> Any:
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["result"] = self.calculator(profile)
            except BaseException as e:  # handed to the waiting thread, re-raised there
                box["error"] = e

        thread = threading.Thread(target=call, name=f"llmsizer-calculator {self.name}", daemon=True)
        thread.start()
        thread.join(self.timeout_s)
        if thread.is_alive():
            raise CalculatorError(
                f"calculator {self.name!r} did not return within {self.timeout_s:g} s (its thread is abandoned, "
                "not killed); raise --llmsizer-calculator-timeout (pytest) or --calculator-timeout (llmsizer) if "
                "it needs longer"
            )
        if "error" in box:
            raise box["error"]
        return box.get("result")


def with_timeout(calculator: Calculator, timeout_s: float, name: str) -> Calculator:
    """``calculator`` limited to ``timeout_s`` seconds per call, unless it is the built-in one (see module doc)."""
    from pytest_llmsizer.pluggable.command import CommandCalculator
    from pytest_llmsizer.pluggable.loader import builtin

    # the built-in one needs no limit; an external command already kills its own process at its timeout
    if calculator is builtin or isinstance(calculator, (TimedCalculator, CommandCalculator)):
        return calculator
    return TimedCalculator(calculator, timeout_s, name)
