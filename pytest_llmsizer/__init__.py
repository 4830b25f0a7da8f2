"""pytest-llmsizer: validate LLM inference GPU-memory calculators against real measurements."""
__version__ = "0.1.0"
