"""Every model name the shared data and README use resolves, or is known and unsupported with a reason; the same
suffix rules hold for every family; an ambiguous GPU name is settled by the memory size given."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_llmsizer.calculator.resolve import gpu_memory
from pytest_llmsizer.catalog.models import load_model_catalog, resolve_model
from pytest_llmsizer.errors import CatalogError, UnknownModelError

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w. -]*$")


def shared_names() -> set[str]:
    """Model names as the shared logs write them (with the id in parentheses, when there is one), and the ids of
    the shared configs."""
    names: set[str] = set()
    for file in sorted((SHARED / "vllm-startup-logs").glob("*.jsonl")):
        for line in file.read_text().splitlines():
            model = (json.loads(line).get("model") or "").strip()
            if not model:
                continue
            names.add(model.split(" (")[0].strip())
            inner = re.search(r"\(([^),]+)", model)
            if inner and ID.match(inner.group(1).strip()) and not inner.group(1).startswith("local"):
                names.add(inner.group(1).strip())
    names |= {f.stem.replace("--", "/", 1) for f in (SHARED / "model-configs").glob("*.json")}
    return names


def readme_names() -> set[str]:
    text = (REPO / "README.md").read_text()
    names = set(re.findall(r"llmsizer estimate ([\w./-]+/[\w.-]+)", text))
    names |= set(re.findall(r"estimate\(\"([^\"]+)\"", text))
    return {n for n in names if not n.startswith(".")}


NOT_YET_IN_THE_CATALOG = {
    "ibm-fms/Bamba-9.8b-1.8T-hf": "no config in the shared data yet (Bamba support is being added separately); "
                                  "tests/test_external_calculators.py uses it as the example of an unknown model",
}
"""Names left unknown on purpose, each with why."""


def resolves_or_is_known(name: str) -> str | None:
    """None when ``name`` resolves or is a known-unsupported model (with its reason); else why not."""
    try:
        resolve_model(name)
    except CatalogError as e:
        if isinstance(e, UnknownModelError) or not str(e).startswith("known model"):
            return str(e)
    return None


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not beside the checkout")
def test_every_model_name_in_the_shared_data_and_readme_resolves_or_says_why_not():
    names = shared_names() | readme_names()
    assert len(names) > 150
    failures = {n: why for n in sorted(names - set(NOT_YET_IN_THE_CATALOG)) if (why := resolves_or_is_known(n))}
    assert failures == {}


def test_unsupported_entries_carry_reasons():
    catalog = load_model_catalog()
    assert all(len(reason) > 15 for reason in catalog.unsupported.values())


@pytest.mark.parametrize(("query", "target", "removed"), [
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mistralai/Mixtral-8x7B-v0.1", "-Instruct"),
    ("mistralai/Mixtral-8x22B-Instruct-v0.1", "mistralai/Mixtral-8x22B-v0.1", "-Instruct"),
    ("meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-70B", "-Instruct"),
    ("meta-llama/Llama-2-7b-chat-hf", "meta-llama/Llama-2-7b-hf", "-chat"),
    ("Qwen/Qwen3-30B-A3B-Instruct-2507", "Qwen/Qwen3-30B-A3B", "-Instruct, -2507"),
    ("Llama2-7B", "meta-llama/Llama-2-7b-hf", "Llama2 spelled Llama-2"),
])
def test_one_suffix_rule_for_every_family_stated_as_an_assumption(query, target, removed):
    resolved = resolve_model(query)
    assert resolved.arch.id == target
    (assumption,) = resolved.assumptions
    assert assumption.startswith(f"{query} is not in the catalog; using the architecture of {target}")
    assert removed in assumption


def test_informal_spellings_with_a_space_and_autoround():
    with pytest.raises(CatalogError, match=r"known model, architecture not supported: Qwen/Qwen3\.8-27B"):
        resolve_model("Qwen3.8-27B NVFP4")
    resolved = resolve_model("Qwen3.6-27B-AutoRound")
    assert resolved.arch.id == "Qwen/Qwen3.6-27B" and resolved.arch.quantization.source_method == "auto-round"


def test_ambiguous_gpu_name_is_settled_by_the_memory_given():
    found = gpu_memory("NVIDIA A100", round(79.15 * 2**30))
    assert found.name == "NVIDIA A100-SXM4-80GB" and found.platform == "cuda"
    assert found.memory_bytes == round(79.15 * 2**30) and found.compute_capability == "8.0"
    assert "settles it" in found.assumptions[0]
    assert gpu_memory("NVIDIA A100", round(39.4 * 2**30)).name == "NVIDIA A100-PCIE-40GB"
    with pytest.raises(CatalogError):
        gpu_memory("NVIDIA A100", None)  # without a size the name stays ambiguous
