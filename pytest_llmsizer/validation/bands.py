"""Match quality bands on |percent| (DESIGN.md section 3, a contract)."""

from __future__ import annotations

BANDS: tuple[tuple[float, str], ...] = ((2.0, "Excellent"), (5.0, "Good"), (10.0, "Acceptable"), (20.0, "Fair"))
POOR = "Poor"
ORDER = ("Excellent", "Good", "Acceptable", "Fair", "Poor")
GOOD_OR_BETTER = ("Excellent", "Good")
"""The bands the original guide's success metric counts ("Good or better")."""


def band(percent: float | None) -> str | None:
    """Excellent <= 2, Good <= 5, Acceptable <= 10, Fair <= 20, Poor above (|percent|); None when unknown."""
    if percent is None:
        return None
    value = abs(percent)
    for limit, name in BANDS:
        if value <= limit:
            return name
    return POOR
