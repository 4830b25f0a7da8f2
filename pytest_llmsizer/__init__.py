"""pytest-llmsizer: validate LLM inference GPU-memory calculators against real measurements."""
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy, so that importing the pure core (calculator, profiles) does not import pytest.
    if name == "DataQualityWarning":
        from pytest_llmsizer.collect import DataQualityWarning

        return DataQualityWarning
    raise AttributeError(f"module 'pytest_llmsizer' has no attribute {name!r}")
