"""The CSV record: the original guide's data-dictionary columns first, in their order, then ours.

GB here means 1e9 bytes (the guide's ``_gb`` columns), percentages are relative to profiled, and a component a
profile does not hold stays empty (never 0). The file is written once per run, by the controller only: appended
under an exclusive lock on the file (``safe_io.locked_append``), so concurrent runs keep every row exactly once;
appending requires the existing header to match exactly, otherwise the old file is left untouched. Text cells are
neutralised against spreadsheet formula injection (``sanitize.csv_cell``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llmsizer.errors import ConfigError
from pytest_llmsizer.safe_io import atomic_replace, check_output, locked_append
from pytest_llmsizer.sanitize import csv_cell
from pytest_llmsizer.units import GB
from pytest_llmsizer.validation.record import row_of

GUIDE_COLUMNS: tuple[str, ...] = (
    "profile_file", "model_id", "model_params_b", "gpu_type", "gpu_count", "batch_size", "seq_length", "dtype",
    "profiled_total_gb", "calculated_total_gb", "difference_gb", "difference_pct", "match_quality",
    "profiled_weights_gb", "calculated_weights_gb", "weights_diff_pct",
    "profiled_kv_gb", "calculated_kv_gb", "kv_diff_pct",
    "profiled_activations_gb", "calculated_activations_gb", "activations_diff_pct",
    "profiled_overhead_gb", "calculated_overhead_gb", "overhead_diff_pct",
)
"""The guide's data dictionary, exactly these names in this order (a contract)."""

EXTRA_COLUMNS: tuple[str, ...] = (
    "node_id", "engine", "engine_version", "tp_size", "pp_size", "quantization", "kv_cache_dtype", "calculator",
    "overhead_component", "profiled_cuda_graphs_gb", "calculated_cuda_graphs_gb",
    "profiled_kv_tokens", "calculated_kv_tokens", "kv_tokens_diff_pct",
    "profiled_max_concurrency", "calculated_max_concurrency", "max_concurrency_diff_pct",
    "match_basis", "accuracy_verdict", "integrity_verdict", "integrity_findings", "known_failure", "source",
    "timestamp",
)

COLUMNS: tuple[str, ...] = GUIDE_COLUMNS + EXTRA_COLUMNS


def _gb(value: float | None) -> str:
    return "" if value is None else f"{value / GB:.4f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _num(value: Any) -> str:
    return "" if value is None else str(value)


def overhead_component(record: Mapping[str, Any]) -> str | None:
    """The guide's single "overhead": the profile's framework_overhead if it has one, else non-torch memory."""
    for name in ("framework_overhead", "non_torch"):
        if row_of(record, name) is not None:
            return name
    return None


def csv_row(record: Mapping[str, Any], timestamp: str) -> dict[str, str]:
    def mem(quantity: str | None) -> tuple[str, str, str]:
        row = row_of(record, quantity) if quantity else None
        if row is None:
            return "", "", ""
        return _gb(row["profiled"]), _gb(row["calculated"]), _pct(row["percent"])

    def plain(quantity: str, digits: int) -> tuple[str, str, str]:
        row = row_of(record, quantity)
        if row is None:
            return "", "", ""
        def fmt(v: float | None) -> str:
            return "" if v is None else f"{v:.{digits}f}"

        return fmt(row["profiled"]), fmt(row["calculated"]), _pct(row["percent"])

    total = row_of(record, "total")
    params = record.get("model_params")
    if isinstance(params, bool) or not isinstance(params, (int, float)):
        params = None  # a calculator may have reported something else ("6.7B"); the column holds numbers only
    seq = record.get("seq_length")
    out = {
        "profile_file": record["profile_file"],
        "model_id": _num(record.get("model_id")),
        "model_params_b": "" if not params else f"{params / 1e9:.3f}",
        "gpu_type": _num(record.get("gpu_type")),
        "gpu_count": _num(record.get("gpu_count")),
        "batch_size": _num(record.get("batch_size")),
        "seq_length": _num(seq),
        "dtype": _num(record.get("dtype")),
        "profiled_total_gb": _gb(total["profiled"]) if total else "",
        "calculated_total_gb": _gb(total["calculated"]) if total else "",
        "difference_gb": _gb(total["difference"]) if total else "",
        "difference_pct": _pct(total["percent"]) if total else "",
        "match_quality": _num(record.get("match_quality")),
    }
    for prefix, quantity in (("weights", "weights"), ("kv", "kv_cache"), ("activations", "activations"),
                             ("overhead", overhead_component(record))):
        p, c, d = mem(quantity)
        out[f"profiled_{prefix}_gb"], out[f"calculated_{prefix}_gb"] = p, c
        out[f"{'weights' if prefix == 'weights' else prefix}_diff_pct"] = d
    graphs = mem("cuda_graphs")
    tokens = plain("kv_cache_tokens", 0)
    conc = plain("max_concurrency", 3)
    findings = record.get("integrity_findings") or []
    out.update({
        "node_id": _num(record.get("node_id")),
        "engine": _num(record.get("engine")),
        "engine_version": _num(record.get("engine_version")),
        "tp_size": _num(record.get("tp_size")),
        "pp_size": _num(record.get("pp_size")),
        "quantization": _num(record.get("quantization")),
        "kv_cache_dtype": _num(record.get("kv_cache_dtype")),
        "calculator": _num(record.get("calculator")),
        "overhead_component": _num(overhead_component(record)),
        "profiled_cuda_graphs_gb": graphs[0], "calculated_cuda_graphs_gb": graphs[1],
        "profiled_kv_tokens": tokens[0], "calculated_kv_tokens": tokens[1], "kv_tokens_diff_pct": tokens[2],
        "profiled_max_concurrency": conc[0], "calculated_max_concurrency": conc[1],
        "max_concurrency_diff_pct": conc[2],
        "match_basis": _num(record.get("primary_quantity")),
        "accuracy_verdict": _num(record.get("accuracy_verdict")),
        "integrity_verdict": _num(record.get("integrity_verdict")),
        "integrity_findings": "; ".join(f"{f['severity']}:{f['check']}" for f in findings),
        "known_failure": _num(record.get("known_failure")),
        "source": _num(record.get("source")),
        "timestamp": timestamp,
    })
    return {name: csv_cell(value) for name, value in out.items()}


def read_header(path: Path) -> list[str] | None:
    """The first row of an existing CSV, or None when the file does not exist or is empty."""
    check_output(path, what="CSV record", append=True)  # a FIFO or device would hang or mislead the read below
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return next(csv.reader(f), None)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"{path}: cannot read the existing CSV record: {e}") from None


def _check_header(path: Path, header: list[str] | None) -> None:
    if header is not None and tuple(header) != COLUMNS:
        raise ConfigError(
            f"{path}: existing CSV has a different header ({len(header)} columns, first {header[:3]}); "
            f"refusing to append {len(COLUMNS)}-column rows. Use a new file or move the old one away; "
            "the existing file was not changed"
        )


def check_appendable(path: Path) -> None:
    """Raise ConfigError unless ``path`` is absent, empty, or a regular CSV file with exactly our header (not a
    symlink, device, FIFO or read-only file)."""
    _check_header(path, read_header(path))


def render(rows: Iterable[dict[str, str]], *, header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path`` (never a half-written file);
    refuses a symlink, device, FIFO or directory (``safe_io.atomic_replace``)."""
    atomic_replace(path, text)


def append_records(path: Path, records: Sequence[Mapping[str, Any]], timestamp: str) -> int:
    """Append one row per record (sorted by profile file) to ``path`` under an exclusive lock; returns rows written.

    The header is checked and written (for a new or empty file) while the lock is held, so of two runs starting
    a record at once exactly one writes the header."""
    rows = [csv_row(r, timestamp) for r in sorted(records, key=lambda r: r["profile_file"])]

    def build(head: bytes, size: int) -> str:
        if size:
            try:
                header = next(csv.reader([head.decode("utf-8-sig")]), None)
            except (UnicodeDecodeError, csv.Error) as e:
                raise ConfigError(f"{path}: cannot read the existing CSV record: {e}") from None
            _check_header(path, header)
        return render(rows, header=not size)

    locked_append(path, build, what="CSV record")
    return len(rows)
