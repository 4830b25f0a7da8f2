"""``llmsizer gpus``: the packaged GPU catalog as a table, one entry, or JSON."""

from __future__ import annotations

import json

import pytest

from pytest_llmsizer.catalog.gpus import CATALOG_FORMAT, load_gpu_catalog, parse_gpu_catalog
from pytest_llmsizer.cli import main


def test_the_table_lists_every_gpu_with_its_compute_capability(capsys: pytest.CaptureFixture[str]):
    assert main(["gpus"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "compute capability" in lines[0] and "visible GiB" in lines[0]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == [spec.id for spec in load_gpu_catalog()]
    for spec in load_gpu_catalog():
        assert f"  {spec.compute_capability}  " in rows[spec.id] and f"{spec.memory_gib:.2f}" in rows[spec.id]


def test_a_name_shows_the_entry_it_resolves_to(capsys: pytest.CaptureFixture[str]):
    assert main(["gpus", "NVIDIA GeForce RTX 5090"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("NVIDIA GeForce RTX 5090 (rtx-5090)")
    assert "  compute_capability: 12.0\n" in out and "developer.nvidia.com/cuda-gpus" in out
    assert "  memory_gib: 31.36 (memory_bytes / 2^30)\n" in out  # gpus.md: torch OOM 'Total GPU memory: 31.36 GiB'


def test_json_is_the_catalog_itself(capsys: pytest.CaptureFixture[str]):
    assert main(["gpus", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert parse_gpu_catalog(json.dumps({"format": CATALOG_FORMAT, "gpus": entries})) == load_gpu_catalog()


def test_an_unknown_or_ambiguous_name_is_bad_input(capsys: pytest.CaptureFixture[str]):
    assert main(["gpus", "NVIDIA Imaginary X9000"]) == 2
    assert main(["gpus", "A100"]) == 2
    err = capsys.readouterr().err
    assert "unknown GPU 'NVIDIA Imaginary X9000'" in err and "a100-sxm-80gb" in err
