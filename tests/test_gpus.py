"""GPU catalog: names resolve to the right entry, memory equals what the runtime reports
(shared/data/gpus.md), and nothing matches by memory size or by a part of a name."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from pydantic import ValidationError

from pytest_llmsizer.catalog.gpus import (
    GpuNameError,
    GpuSpec,
    cuda_capability,
    list_gpu_ids,
    load_gpu_catalog,
    parse_gpu_catalog,
    resolve_gpu,
)
from pytest_llmsizer.errors import CatalogError, UnknownGpuError
from pytest_llmsizer.units import GiB, MiB

# (expected id, name nvidia-smi / amd-smi / torch prints, short name people write)
REQUIRED = [
    ("h100-sxm", "NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("h100-pcie", "NVIDIA H100 PCIe", "H100 PCIe"),
    ("h100-nvl", "NVIDIA H100 NVL", "H100 NVL"),
    ("h200", "NVIDIA H200", "H200"),
    ("h200-nvl", "NVIDIA H200 NVL", "H200 NVL"),
    ("gh200", "NVIDIA GH200 480GB", "GH200"),
    ("b200", "NVIDIA B200", "B200"),
    ("a100-sxm-80gb", "NVIDIA A100-SXM4-80GB", "A100 80GB"),
    ("a100-pcie-80gb", "NVIDIA A100 80GB PCIe", "A100 PCIe 80GB"),
    ("a100-sxm-40gb", "NVIDIA A100-SXM4-40GB", "A100 40GB"),
    ("a100-pcie-40gb", "NVIDIA A100-PCIE-40GB", "A100 PCIe 40GB"),
    ("a10g", "NVIDIA A10G", "A10G"),
    ("a10", "NVIDIA A10", "A10"),
    ("l4", "NVIDIA L4", "L4"),
    ("l40s", "NVIDIA L40S", "L40S"),
    ("l40", "NVIDIA L40", "L40"),
    ("t4", "Tesla T4", "T4"),
    ("v100-sxm2-16gb", "Tesla V100-SXM2-16GB", "V100 16GB"),
    ("v100-sxm2-32gb", "Tesla V100-SXM2-32GB", "V100 32GB"),
    ("rtx-3090", "NVIDIA GeForce RTX 3090", "RTX 3090"),
    ("rtx-3090-ti", "NVIDIA GeForce RTX 3090 Ti", "RTX 3090 Ti"),
    ("rtx-4090", "NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("rtx-5090", "NVIDIA GeForce RTX 5090", "RTX 5090"),
    ("rtx-4080", "NVIDIA GeForce RTX 4080", "RTX 4080"),
    ("rtx-a6000", "NVIDIA RTX A6000", "A6000"),
    ("rtx-6000-ada", "NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada"),
    ("rtx-pro-6000-blackwell", "NVIDIA RTX PRO 6000 Blac...", "RTX PRO 6000"),
    ("a40", "NVIDIA A40", "A40"),
    ("mi300x", "AMD Instinct MI300X", "MI300X"),
    ("mi325x", "AMD Instinct MI325X", "MI325X"),
    ("mi355x", "AMD Instinct MI355X", "MI355X"),
    ("mi350x", "AMD Instinct MI350X", "MI350X"),
    ("mi250x", "AMD Instinct MI250X", "MI250X"),
    ("mi210", "AMD Instinct MI210", "MI210"),
    ("rx-7900-xtx", "Radeon RX 7900 XTX", "RX 7900 XTX"),
]


@pytest.mark.parametrize(("gpu_id", "smi_name", "short_name"), REQUIRED, ids=[r[0] for r in REQUIRED])
def test_required_gpu_resolves_from_tool_name_short_name_and_id(gpu_id: str, smi_name: str, short_name: str):
    assert resolve_gpu(smi_name).id == gpu_id
    assert resolve_gpu(short_name).id == gpu_id
    assert resolve_gpu(gpu_id).id == gpu_id
    assert resolve_gpu(gpu_id.upper()).id == gpu_id


@pytest.mark.parametrize(
    ("query", "gpu_id"),
    [
        # the brief's own examples
        ("H100", "h100-sxm"),
        ("NVIDIA H100", "h100-sxm"),
        ("h100-sxm", "h100-sxm"),
        ("A100-80GB", "a100-sxm-80gb"),
        ("A100 80GB", "a100-sxm-80gb"),
        ("NVIDIA A100-80GB", "a100-sxm-80gb"),
        ("NVIDIA A100 80GB", "a100-sxm-80gb"),
        ("mi300x", "mi300x"),
        ("GeForce RTX 4090", "rtx-4090"),
        ("4090", "rtx-4090"),
        # spelling variants: case, separators, vendor words, word order
        ("nvidia h100 80gb hbm3", "h100-sxm"),
        ("NVIDIA_H100_80GB_HBM3", "h100-sxm"),  # vLLM's fused-MoE config file names
        ("NVIDIA_L40S", "l40s"),
        ("A100 80GB SXM4", "a100-sxm-80gb"),
        ("A100-PCIE-80GB", "a100-pcie-80gb"),
        ("NVIDIA T4", "t4"),
        ("RTX3090", "rtx-3090"),
        ("GeForce RTX 3090", "rtx-3090"),  # older torch / HF docs print it without "NVIDIA"
        ("AMD Radeon RX 7900 XTX", "rx-7900-xtx"),
        ("A100-SXM4-40GB", "a100-sxm-40gb"),  # Paddle's spelling
        # ids of the original LLM Sizer (notes/llm-sizer-origin.md 4.2) and of its broken H200 match (3.2)
        ("a100-80gb", "a100-sxm-80gb"),
        ("a100-40gb", "a100-sxm-40gb"),
        ("h200-sxm", "h200"),
        ("rtx-6000-ada", "rtx-6000-ada"),
        # other tools' ids
        ("h100_sxm", "h100-sxm"),
        ("b200_sxm", "b200"),
        ("mi250x-128gb", "mi250x"),
        # names as logs and issues write them, with memory notes that agree
        ("NVIDIA H100 80GB", "h100-sxm"),
        ("NVIDIA GH200 (96 GB)", "gh200"),
        ("NVIDIA RTX A6000 (48G)", "rtx-a6000"),
        ("A100 (40 GB)", "a100-sxm-40gb"),
        ("Tesla T4 (15 GB)", "t4"),
        ("AMD Instinct MI300X (192 GB)", "mi300x"),
        # nvidia-smi's cut name and the full product names
        ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "rtx-pro-6000-blackwell"),
        ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "rtx-pro-6000-blackwell"),
        ("NVIDIA RTX PRO 6000 Blackwell Work…", "rtx-pro-6000-blackwell"),
        ("AMD Instinct MI300X VF", "mi300x-vf"),
        ("  NVIDIA L4  ", "l4"),
    ],
)
def test_spellings_resolve(query: str, gpu_id: str):
    assert resolve_gpu(query).id == gpu_id


# -------------------------------------------------------------------------------------- memory (gpus.md)


@pytest.mark.parametrize(
    ("gpu_id", "low_gib", "high_gib"),
    [
        ("h100-sxm", 79.18, 79.21),  # torch 81082-81106 MiB; memory-physics 2.5: 79.18
        ("h200", 139.80, 139.82),  # vLLM 139.81 GiB (152 vme-dev records); torch 143156 MiB
        ("b200", 178.345, 178.355),  # torch OOM / vme-dev 178.35 GiB
        ("mi300x", 191.975, 191.985),  # 196592 MiB = 191.98 GiB
        ("rtx-3090", 23.575, 23.595),  # vLLM 23.58 GiB; deviceQuery 24154 MiB = 23.588 GiB
        ("t4", 14.735, 14.745),  # vLLM 14.74 GiB (Unsloth Colab notebooks)
        ("a100-sxm-40gb", 39.555, 39.565),  # vLLM 39.56 GiB
        ("rtx-4090", 23.63, 23.65),  # vLLM 23.63, torch OOM 23.64 GiB
        ("mi325x", 255.975, 255.985),
        ("mi355x", 287.975, 287.985),
    ],
)
def test_memory_is_what_the_runtime_reports(gpu_id: str, low_gib: float, high_gib: float):
    spec = resolve_gpu(gpu_id)
    assert low_gib <= spec.memory_gib <= high_gib
    assert spec.memory_gib == spec.memory_bytes / GiB


@pytest.mark.parametrize(
    ("gpu_id", "exact_bytes"),
    [
        ("h100-sxm", 81082 * MiB),  # torch total_memory=81082MB
        ("h100-nvl", 99861594112),  # deviceQuery bytes
        ("a100-sxm-80gb", 85100068864),  # deviceQuery bytes
        ("l40s", 47803596800),
        ("rtx-3090", 25327697920),
        ("rtx-4090", 25386352640),
        ("mi300x", 206141652992),  # = rocm-smi VRAM total; torch 196592 MiB
        ("mi250x", 68702699520),  # per GCD
        ("mi210", 68702699520),
        ("rx-7900-xtx", 24560 * MiB),
    ],
)
def test_read_totals_are_stored_exactly(gpu_id: str, exact_bytes: int):
    assert resolve_gpu(gpu_id).memory_bytes == exact_bytes


def test_runtime_memory_is_below_the_nominal_figure_where_that_is_gb():
    # The reason the catalog exists: an "80 GB" card hands a process less than 80 GiB.
    for gpu_id in ("h100-sxm", "a100-sxm-80gb", "h200", "b200", "rtx-4090", "t4"):
        spec = resolve_gpu(gpu_id)
        assert spec.memory_gib < spec.nominal_gb


def test_mi250x_is_per_gcd():
    spec = resolve_gpu("MI250X")
    assert spec.devices_per_package == 2
    assert spec.nominal_gb == 128
    assert spec.memory_bytes == 65520 * MiB
    assert "GCD" in spec.notes


def test_derived_entries_say_so_and_name_the_sibling():
    for spec in load_gpu_catalog():
        if spec.memory_basis == "smi_minus_sibling_reserve":
            assert spec.smi_total_mib is not None
            assert "reserve" in spec.source and "Derived" in spec.notes, spec.id


def test_default_variants_are_documented():
    # A short name that could mean several variants resolves only where the entry's notes explain the choice.
    defaults = [
        ("H100", "h100-sxm"),
        ("A100 80GB", "a100-sxm-80gb"),
        ("A100 40GB", "a100-sxm-40gb"),
        ("GH200", "gh200"),
        ("V100 16GB", "v100-sxm2-16gb"),
    ]
    for short, gpu_id in defaults:
        spec = resolve_gpu(short)
        assert spec.id == gpu_id
        assert short in spec.aliases
        assert f"'{short}'" in spec.notes, (short, spec.notes)


# -------------------------------------------------------------------------------------- refusing to guess


@pytest.mark.parametrize("query", ["A100", "NVIDIA A100", "a100"])
def test_bare_a100_is_ambiguous(query: str):
    with pytest.raises(UnknownGpuError) as exc:
        resolve_gpu(query)
    assert isinstance(exc.value, GpuNameError)
    assert "a100-sxm-80gb" in exc.value.suggestions
    assert "a100-sxm-40gb" in exc.value.suggestions
    assert "ambiguous" in str(exc.value)
    assert exc.value.query == query


@pytest.mark.parametrize(
    ("query", "expected"),
    [("V100", {"v100-sxm2-16gb", "v100-sxm2-32gb"}), ("A100 PCIe", {"a100-pcie-80gb", "a100-pcie-40gb"})],
)
def test_other_ambiguous_names_list_every_variant(query: str, expected: set[str]):
    with pytest.raises(GpuNameError) as exc:
        resolve_gpu(query)
    assert expected <= set(exc.value.suggestions)


@pytest.mark.parametrize(
    ("query", "suggested"),
    [
        ("NVIDIA H20", "h200"),  # not in the catalog; must not become H200 or H100 NVL
        ("NVIDIA GeForce RTX 4090 D", "rtx-4090"),  # a different GPU: no partial-name match
        ("RTX 4080 SUPER", "rtx-4080"),
        ("NVIDIA GeForce RTX 5090 D", "rtx-5090"),
        ("NVIDIA GH200 144G HBM3e", "gh200"),  # the 144 GB part is not the 96 GB one
        ("NVIDIA GeForce RTX 3090 (repo target)", "rtx-3090"),
        ("Tesla V100-PCIE-16GB", "v100-sxm2-16gb"),
        ("H1OO", "h100-sxm"),
    ],
)
def test_unknown_names_raise_with_suggestions(query: str, suggested: str):
    with pytest.raises(UnknownGpuError) as exc:
        resolve_gpu(query)
    assert exc.value.query == query
    assert suggested in exc.value.suggestions
    assert 1 <= len(exc.value.suggestions) <= 5
    assert all(s in list_gpu_ids() for s in exc.value.suggestions)
    assert "--gpu-memory-gib" in str(exc.value)


@pytest.mark.parametrize("query", ["", "   ", "NVIDIA", "xyzzy"])
def test_names_without_a_gpu_raise(query: str):
    with pytest.raises(UnknownGpuError):
        resolve_gpu(query)


@pytest.mark.parametrize(
    "query",
    [
        "80GB",  # a memory size is not a GPU
        "192 GB",
        "178.35 GiB",
        "MI300X VF (80 GB)",
        "NVIDIA A10 (80 GB)",  # the note contradicts the GPU it names
        "H100 (94GB)",
        "NVIDIA B200 (80 GiB)",
    ],
)
def test_never_matches_by_memory_size(query: str):
    with pytest.raises(UnknownGpuError):
        resolve_gpu(query)


def test_a_contradicting_memory_note_says_so():
    with pytest.raises(GpuNameError) as exc:
        resolve_gpu("NVIDIA A10 (80 GB)")
    assert "(80 GB)" in str(exc.value)
    assert exc.value.suggestions[0] == "a10"


def test_b200_is_never_an_mi300x():
    # The original validate-calculator mapped a ~179 GiB CUDA GPU to MI300X by VRAM (llm-sizer-origin.md 3.2).
    spec = resolve_gpu("NVIDIA B200")
    assert (spec.id, spec.vendor, spec.platform) == ("b200", "nvidia", "cuda")


# -------------------------------------------------------------------------------------- the data file


def _packaged_text() -> str:
    return resources.files("pytest_llmsizer.catalog").joinpath("data/gpus.json").read_text(encoding="utf-8")


def test_data_file_validates_and_has_the_declared_layout():
    raw = json.loads(_packaged_text())
    assert set(raw) == {"format", "gpus"}
    assert raw["format"] == "llmsizer-gpus/1"
    gpus = parse_gpu_catalog(_packaged_text(), "gpus.json")
    assert gpus == load_gpu_catalog()
    assert all(isinstance(g, GpuSpec) for g in gpus)
    for entry in raw["gpus"]:
        assert isinstance(entry["memory_bytes"], int)
        assert entry["source"].startswith("gpus.md")


def test_catalog_covers_the_required_gpus():
    ids = list_gpu_ids()
    assert len(ids) == len(set(ids))
    assert {r[0] for r in REQUIRED} <= set(ids)


def test_ids_names_and_aliases_point_to_one_gpu_each():
    owner: dict[str, str] = {}
    for spec in load_gpu_catalog():
        for spelling in (spec.id, spec.name, *spec.aliases):
            key = spelling.lower()
            assert owner.setdefault(key, spec.id) == spec.id, f"{spelling!r}: {owner[key]} and {spec.id}"
            assert resolve_gpu(spelling).id == spec.id, spelling


def test_entries_are_consistent():
    for spec in load_gpu_catalog():
        assert spec.platform == ("cuda" if spec.vendor == "nvidia" else "rocm")
        if spec.smi_total_mib is not None:
            assert spec.memory_bytes <= spec.smi_total_mib * MiB, spec.id
        assert spec.source and spec.memory_basis


@pytest.mark.parametrize(("name", "capability"), [
    ("H100", "9.0"), ("H200", "9.0"), ("B200", "10.0"), ("A100 80GB", "8.0"), ("L4", "8.9"), ("RTX 5090", "12.0"),
    ("Tesla T4", "7.5"), ("MI300X", "gfx942"), ("MI250X", "gfx90a"), ("RX 7900 XTX", "gfx1100"),
])
def test_compute_capability_as_each_runtime_reports_it(name, capability):
    assert resolve_gpu(name).compute_capability == capability


def test_every_entry_names_where_its_compute_capability_comes_from():
    for spec in load_gpu_catalog():
        assert spec.compute_capability in spec.source, spec.id
        assert ("developer.nvidia.com/cuda-gpus" if spec.vendor == "nvidia" else "rocm.docs.amd.com") in spec.source


def test_cuda_capability_is_a_comparable_pair_for_nvidia_only():
    assert cuda_capability("12.0") == (12, 0) > cuda_capability("9.0") == (9, 0)
    assert cuda_capability("gfx942") is None and cuda_capability(None) is None


def test_catalog_is_cached_and_frozen():
    assert load_gpu_catalog() is load_gpu_catalog()
    spec = resolve_gpu("H100")
    with pytest.raises(ValidationError):
        spec.memory_bytes = 1  # type: ignore[misc]


# -------------------------------------------------------------------------------------- validation errors


def _doc(*entries: dict) -> str:
    return json.dumps({"format": "llmsizer-gpus/1", "gpus": list(entries)})


def _entry(**overrides: object) -> dict:
    base = {
        "id": "x100",
        "name": "NVIDIA X100",
        "vendor": "nvidia",
        "platform": "cuda",
        "nominal_gb": 80.0,
        "memory_bytes": 81000 * MiB,
        "memory_basis": "cuda_total_read",
        "smi_total_mib": 81559,
        "bandwidth_gbps": None,
        "compute_capability": "9.0",
        "aliases": ["X100"],
        "source": "test",
    }
    return {**base, **overrides}


def test_parse_accepts_a_minimal_document():
    (spec,) = parse_gpu_catalog(_doc(_entry()))
    assert spec.id == "x100"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "not valid JSON"),
        (json.dumps({"format": "llmsizer-gpus/2", "gpus": [_entry()]}), "format"),
        (_doc(_entry(vendor="amd")), "platform"),
        (_doc(_entry(compute_capability="gfx942")), "$.gpus.0: Value error, compute_capability 'gfx942' is not an"),
        (_doc(_entry(compute_capability="9")), "expected 'major.minor' as CUDA reports it"),
        (_doc(_entry(compute_capability="9.0\n")), "compute_capability '9.0\\n'"),
        (_doc(_entry(vendor="amd", platform="rocm", compute_capability="9.4")), "expected the gfx target"),
        (_doc({k: v for k, v in _entry().items() if k != "compute_capability"}), "compute_capability: Field required"),
        (_doc(_entry(memory_bytes=81000.5)), "memory_bytes"),
        (_doc(_entry(memory_bytes=82000 * MiB)), "exceeds the smi total"),
        (_doc(_entry(memory_bytes=40 * GiB, smi_total_mib=None)), "nominal"),  # 40 GiB for an 80 GB card
        (_doc(_entry(id="X 100")), "id"),
        (_doc(_entry(extra=1)), "extra"),
        (_doc(_entry(), _entry()), "duplicate id"),
        (_doc(_entry(), _entry(id="y100", name="NVIDIA Y100", aliases=["x-100"])), "also matches"),
        (_doc(_entry(), _entry(id="y100", name="NVIDIA Y100", aliases=["NVIDIA X100"])), "also matches"),
    ],
)
def test_parse_rejects_bad_documents(text: str, fragment: str):
    with pytest.raises(CatalogError) as exc:
        parse_gpu_catalog(text, "bad.json")
    assert "bad.json" in str(exc.value)
    assert fragment in str(exc.value)
