"""The shipped JSON Schema of the native profile: never stale, valid draft 2020-12, as strict as the model.

The freshness test regenerates the schema with ``scripts/export_schema.py`` and compares texts, so a change to
``model.py`` without rerunning the script fails here, instead of shipping a schema that disagrees with it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pytest_llmsizer.profile.load import load_profile, profile_from_data

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = REPO_ROOT / "pytest_llmsizer" / "schema" / "profile.schema.json"
SCRIPT = REPO_ROOT / "scripts" / "export_schema.py"
LEGACY_FIXTURES = Path(__file__).parent / "fixtures" / "legacy"

MINIMAL: dict[str, Any] = {
    "format": "llmsizer-profile",
    "format_version": 1,
    "source": {"reference": "https://example.invalid/run/1"},
    "model": {"id": "org/model"},
}


def _export_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("export_schema", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_shipped_schema_is_what_the_script_generates() -> None:
    script = _export_script()
    assert SCHEMA_FILE.read_text(encoding="utf-8") == script.render_schema(), (
        "pytest_llmsizer/schema/profile.schema.json is stale: run python scripts/export_schema.py"
    )
    assert script.SCHEMA_PATH == SCHEMA_FILE
    assert script.main(["--check"]) == 0


def test_schema_header(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://pytest-llmsizer/profile.schema.json"
    assert schema["title"]
    assert schema["additionalProperties"] is False


def test_minimal_profile_is_valid_for_schema_and_model(validator: Draft202012Validator) -> None:
    assert list(validator.iter_errors(MINIMAL)) == []
    assert profile_from_data(copy.deepcopy(MINIMAL), "minimal.json").model.id == "org/model"


@pytest.mark.parametrize(
    "path",
    [(), ("source",), ("model",)],
    ids=["top-level", "source", "model"],
)
def test_unknown_keys_are_rejected(validator: Draft202012Validator, path: tuple[str, ...]) -> None:
    bad = copy.deepcopy(MINIMAL)
    node = bad
    for key in path:
        node = node[key]
    node["tyop"] = 1
    errors = list(validator.iter_errors(bad))
    assert errors and any("tyop" in e.message for e in errors)


def test_unknown_component_key_is_rejected(validator: Draft202012Validator) -> None:
    bad = copy.deepcopy(MINIMAL)
    bad["measurements"] = {"components": {"weights": {"bytes": 1, "provenance": "engine", "gib": 1.0}}}
    assert list(validator.iter_errors(bad))


LOADABLE = sorted(p.name for p in LEGACY_FIXTURES.glob("*.json") if not p.name.startswith("broken_"))


@pytest.mark.parametrize("name", LOADABLE)
def test_converted_legacy_profiles_satisfy_the_schema(validator: Draft202012Validator, name: str) -> None:
    """What the readers produce is valid by the published schema too, not only by pydantic."""
    profile = load_profile(LEGACY_FIXTURES / name)
    assert list(validator.iter_errors(profile.model_dump(mode="json"))) == []
