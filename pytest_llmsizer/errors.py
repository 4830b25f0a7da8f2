"""The project's own typed errors.

Only these escape the package's public functions. Each carries enough context (file, JSON path, what was expected)
for a one-line message a user can act on without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class LlmsizerError(Exception):
    """Base class of every error the package raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where (JSON path, ``$`` = root) and what was expected."""

    path: str
    message: str

    def render(self) -> str:
        return f"{self.path}: {self.message}"


class ProfileError(LlmsizerError):
    """A profile file could not be read or validated. Lists every problem found, not only the first."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"{self.file}: {self.problems[0].render()}"
        lines = [f"{self.file}: {len(self.problems)} problems"]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)


class CatalogError(LlmsizerError):
    """A model or GPU is unknown, or a config.json cannot be understood."""


class UnknownModelError(CatalogError):
    def __init__(self, query: str, suggestions: list[str]):
        self.query = query
        self.suggestions = suggestions
        hint = f"; closest known ids: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown model {query!r}{hint}")


class UnknownGpuError(CatalogError):
    def __init__(self, query: str, suggestions: list[str]):
        self.query = query
        self.suggestions = suggestions
        hint = f"; closest known GPUs: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown GPU {query!r}{hint}; pass --gpu-memory-gib to give the memory directly")


class EstimateError(LlmsizerError):
    """The calculator was asked something it cannot answer (unsupported option, impossible configuration)."""


class ConfigError(LlmsizerError):
    """tolerances.yaml or another configuration file is invalid."""


class CalculatorError(LlmsizerError):
    """A calculator could not be loaded, or returned something unusable."""
