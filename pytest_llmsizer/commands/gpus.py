"""``llmsizer gpus [NAME]``: the GPU catalog, so a user can see which names resolve and what each entry holds.

The table shows what the calculator takes from an entry: the memory the runtime sees (GiB, 2^30 bytes, as vLLM and
PyTorch print it) and how it was obtained, and the compute capability (CUDA "major.minor", or the AMD gfx target)
that decides, e.g., whether vLLM's FlashInfer autotune warm-up runs before the CUDA-graph capture.
"""

from __future__ import annotations

import argparse
import json

from pytest_llmsizer.catalog.gpus import GpuSpec, load_gpu_catalog, resolve_gpu
from pytest_llmsizer.commands.common import EXIT_OK

COLUMNS = ("id", "name", "vendor", "compute capability", "visible GiB", "nominal GB", "memory basis")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gpus", help="list the GPU catalog (or show the entry a name resolves to)",
        description="The GPUs the catalog knows: id, name, vendor, compute capability (CUDA major.minor or the "
                    "AMD gfx target), the memory the runtime sees per device (GiB) and how it was obtained. With "
                    "NAME, the one entry that name resolves to, with its aliases, sources and notes.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="a GPU name, id or alias (as --gpu takes it)")
    p.add_argument("--json", action="store_true", help="print the entries as JSON (memory in bytes)")
    p.set_defaults(handler=run)


def _row(spec: GpuSpec) -> tuple[str, ...]:
    return (spec.id, spec.name, spec.vendor, spec.compute_capability, f"{spec.memory_gib:.2f}",
            f"{spec.nominal_gb:g}", spec.memory_basis)


def render_table(gpus: tuple[GpuSpec, ...]) -> str:
    """A plain fixed-width table, one GPU a line, in catalog order."""
    rows = [COLUMNS, *(_row(s) for s in gpus)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def render_entry(spec: GpuSpec) -> str:
    """Every field of one entry, one per line."""
    lines = [f"{spec.name} ({spec.id})"]
    for key, value in spec.model_dump(mode="json").items():
        if key in ("id", "name"):
            continue
        shown = ", ".join(value) if isinstance(value, list) else value
        lines.append(f"  {key}: {shown}")
        if key == "memory_bytes":
            lines.append(f"  memory_gib: {spec.memory_gib:.2f} (memory_bytes / 2^30)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    gpus = (resolve_gpu(args.name),) if args.name else load_gpu_catalog()
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in gpus], indent=2))
    elif args.name:
        print(render_entry(gpus[0]))
    else:
        print(render_table(gpus))
    return EXIT_OK
