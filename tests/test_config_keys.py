"""Every config key is understood or explained (catalog/config_keys.py), over every shared config and a user's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_llmsizer.catalog import hf_config, mllama
from pytest_llmsizer.catalog.config_keys import (
    NO_MEMORY_EFFECT,
    NO_MEMORY_EFFECT_VISION,
    READ_TEXT_KEYS,
    READ_VISION_KEYS,
    unexplained_keys,
)
from pytest_llmsizer.errors import CatalogError
from tests.test_cli_estimate import run

SHARED_CONFIGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "model-configs"
CONFIG_FILES = sorted(SHARED_CONFIGS.glob("*.json"))


@pytest.mark.skipif(not CONFIG_FILES, reason="../shared/data not beside the checkout")
def test_every_key_of_every_readable_shared_config_is_read_or_explained():
    unexplained, readable = {}, 0
    for file in CONFIG_FILES:
        config = json.loads(file.read_text())
        try:
            arch = hf_config.arch_from_hf_config(config, file.stem)
        except CatalogError:
            continue  # not readable (the catalog lists it as unsupported); its keys are not relied on
        readable += 1
        if arch.unexplained_config_keys:
            unexplained[file.name] = arch.unexplained_config_keys
    assert readable > 120
    assert unexplained == {}


def test_every_key_claimed_as_read_appears_in_the_reader():
    source = Path(hf_config.__file__).read_text() + Path(mllama.__file__).read_text()  # the reader and its Mllama part
    literals = set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', source))
    assert sorted(READ_TEXT_KEYS - literals) == []
    assert sorted(READ_VISION_KEYS - literals) == []


def test_no_key_is_both_read_and_explained_away():
    assert sorted(READ_TEXT_KEYS & set(NO_MEMORY_EFFECT)) == []
    assert sorted(READ_VISION_KEYS & set(NO_MEMORY_EFFECT_VISION)) == []
    assert all(len(reason) > 20 for reason in [*NO_MEMORY_EFFECT.values(), *NO_MEMORY_EFFECT_VISION.values()])


def test_unknown_keys_are_named_with_their_path():
    config = {"hidden_size": 8, "bos_token_id": 1, "frobnicate": 3, "text_config": {"moe_gizmo": 1},
              "vision_config": {"depth": 2, "lens_count": 4}, "audio_config": {"layers": 2}}
    assert unexplained_keys(config) == ("audio_config (an audio tower is not priced)", "frobnicate",
                                        "text_config.moe_gizmo", "vision_config.lens_count")


def _user_config(tmp_path: Path, **extra) -> Path:
    config = json.loads((SHARED_CONFIGS / "meta-llama--Llama-3.1-8B.json").read_text())
    config.update(extra)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.skipif(not CONFIG_FILES, reason="../shared/data not beside the checkout")
def test_estimate_names_an_unknown_key_and_strict_refuses_it(tmp_path):
    path = _user_config(tmp_path, moe_latent_width=512)
    proc = run("estimate", str(path), "--gpu", "H200", "--json")
    assert proc.returncode == 0, proc.stderr
    assumptions = json.loads(proc.stdout)["assumptions"]
    assert "config key moe_latent_width not understood: the estimate may be wrong" in assumptions
    table = run("estimate", str(path), "--gpu", "H200")
    assert "config key moe_latent_width not understood: the estimate may be wrong" in table.stdout
    strict = run("estimate", str(path), "--gpu", "H200", "--strict")
    assert strict.returncode == 2 and "moe_latent_width" in strict.stderr and strict.stdout == ""


@pytest.mark.skipif(not CONFIG_FILES, reason="../shared/data not beside the checkout")
def test_strict_accepts_a_fully_understood_config(tmp_path):
    path = _user_config(tmp_path, rms_norm_eps=1e-5, attention_dropout=0.0, pad_token_id=None)
    proc = run("estimate", str(path), "--gpu", "H200", "--strict", "--json")
    assert proc.returncode == 0, proc.stderr
    assert not any("not understood" in a for a in json.loads(proc.stdout)["assumptions"])
