"""Validation: tolerances, comparison of profiles with calculators, match bands."""
