"""Profiles: the native format, readers for older formats, and format detection."""

from pytest_llmsizer.profile.load import load_profile, profile_from_data
from pytest_llmsizer.profile.model import COMPONENT_NAMES, Component, Confidence, Profile, Provenance

__all__ = ["COMPONENT_NAMES", "Component", "Confidence", "Profile", "Provenance", "load_profile", "profile_from_data"]
