"""Readers for the ``vllm bench latency`` profiler family: bench v1 (inferred format) and v2.0 "enhanced".

Also home of what every bench format (v1, v2, v3) writes under the same keys: the model, engine, workload and
GPUs of the run (llm-sizer-origin.md sections 1.4-1.6), shared with ``v3``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmsizer.profile.legacy.common import (
    Fields,
    Node,
    capacity_note,
    component,
    confidence_of,
    label_note,
    per_gpu_total,
    profiler_source,
    run_reader,
    select_tp_gpus,
    smi_backend,
    to_bytes,
    used_values,
    vendor_of,
)
from pytest_llmsizer.profile.model import (
    Components,
    Confidence,
    DeviceReadings,
    Engine,
    Hardware,
    Measurements,
    ModelInfo,
    Profile,
    Provenance,
    Quantization,
    Workload,
)

GPU_UTIL_NOTE = (
    "gpu_memory_utilization: the profiler never passed --gpu-memory-utilization (nor --max-model-len) to "
    "vLLM, so vLLM's default applied (0.9 in the versions of that time); left unset because the file does "
    "not state it."
)
POST_EXIT_NOTE = (
    "v2 takes its 'post_warmup' and 'peak' snapshots after `vllm bench latency` has exited, so its 'peak' "
    "may not be the memory the run held."
)


@dataclass
class BenchRun:
    """What a bench-format file says about the run, already validated (``None`` where absent)."""

    model: dict[str, Any] = field(default_factory=dict)
    tp: int = 1
    pp: int = 1
    workload: Workload | None = None
    gpu_type: str | None = None
    system_gpus: int | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    timestamp: str | None = None
    notes: list[str | None] = field(default_factory=list)

    @property
    def gpus(self) -> int:
        """The GPUs the run used (TP x PP): the native ``gpu_count`` and the length of every per-GPU list."""
        return self.tp * self.pp


def read_bench_run(f: Fields, *, v1: bool = False) -> BenchRun:
    """model_info, benchmark_parameters, dtype_metadata, gpu_info, engine_metadata and timestamp."""
    run = BenchRun()
    root = f.root
    mi = f.obj(root, "model_info", required=True)
    bp = f.obj(root, "benchmark_parameters", required=True)
    dm = f.obj(root, "dtype_metadata")
    gi = f.obj(root, "gpu_info")
    em = f.obj(root, "engine_metadata")

    name = f.text(mi, "name", required=True)
    quant = f.text(mi, "quantization", nullable=True) or f.text(bp, "quantization", nullable=True)
    run.model = {
        "id": name,
        "name_in_source": name,
        "num_parameters": f.integer(mi, "num_parameters", nullable=True),
        "dtype": f.text(mi, "dtype", nullable=True) or f.text(bp, "dtype", nullable=True),
        "quantization": Quantization(method=quant) if quant else None,
    }
    if v1 and (path := f.text(mi, "path", nullable=True)):
        run.notes.append(f"Model path in the file: {path}.")

    batch = f.integer(bp, "batch_size", required=True, minimum=1)
    input_len = f.integer(bp, "input_len", required=True)
    output_len = f.integer(bp, "output_len", required=True)
    if batch is not None and input_len is not None and output_len is not None:
        run.workload = Workload(batch_size=batch, input_tokens=input_len, output_tokens=output_len)
    run.tp = f.integer(bp, "tensor_parallel_size", required=not v1, minimum=1) or 1
    run.pp = f.integer(bp, "pipeline_parallel_size", nullable=True, minimum=1) or 1

    run.gpu_type = f.text(gi, "gpu_type", nullable=True)
    run.system_gpus = f.integer(gi, "system_gpus", nullable=True) or None
    f.integer(gi, "num_gpus", nullable=True)  # validated only: it is the TP size, read above

    version = f.text(em, "engine_version", nullable=True)
    run.engine = {
        "name": "vllm",
        "version": None if version in (None, "", "unknown") else version,
        "tensor_parallel_size": run.tp,
        "pipeline_parallel_size": run.pp,
        "kv_cache_dtype": f.text(dm, "kv_cache_dtype", nullable=True),
        "enforce_eager": f.flag(bp, "enforce_eager"),
    }
    run.timestamp = f.text(root, "timestamp", nullable=True)
    run.notes.append(GPU_UTIL_NOTE)
    return run


def build_profile(
    file: str,
    f: Fields,
    run: BenchRun,
    fmt: str,
    components: dict[str, Any],
    device: DeviceReadings | None,
    *,
    engine_extra: dict[str, Any] | None = None,
    measurements_extra: dict[str, Any] | None = None,
) -> Profile:
    """The native profile of a bench-format file."""
    engine = {**run.engine, **{k: v for k, v in (engine_extra or {}).items() if v is not None}}
    return Profile(
        synthetic=f.root.data.get("synthetic") is True,
        source=profiler_source(file, fmt, run.notes, run.timestamp),
        model=ModelInfo(**run.model),
        hardware=Hardware(vendor=vendor_of(run.gpu_type), gpu_count=run.gpus),
        engine=Engine(**engine),
        workload=run.workload,
        measurements=Measurements(
            components=Components(**{k: v for k, v in components.items() if v is not None}),
            device=device,
            **(measurements_extra or {}),
        ),
    )


def snapshot(
    f: Fields, mm: Node | None, key: str, gpus: int, *, required: bool
) -> tuple[Node | None, tuple[list[Node], str] | None]:
    """A snapshot's stats object and the per-GPU entries of the run's GPUs (see ``select_tp_gpus``)."""
    stats = f.obj(mm, key, required=required)
    f.gb(stats, "total_gb", required=required)
    return stats, select_tp_gpus(f, f.objects(stats, "per_gpu_details"), gpus)


def totals_of(f: Fields, *chosen: tuple[list[Node], str] | None) -> list[float | None]:
    """``total_gb`` (device capacity) of the chosen per-GPU entries: it tells rocm-smi apart (206.0)."""
    return [f.gb(item, "total_gb", nullable=True) for c in chosen if c for item in c[0]]


# -- bench v1 ---------------------------------------------------------------------------------------

V1_COMPONENTS = {
    "weights": "model_weights_gb",
    "kv_cache": "kv_cache_gb",
    "activations": "activations_gb",
    "framework_overhead": "framework_overhead_gb",
}
V1_HOW = "bench v1 (writer never committed: formula unknown), taken as per GPU like its successor v2"


def read_bench_v1(data: dict[str, Any], file: str) -> Profile:
    """Bench v1.0: its writer was never committed, so how its components were computed is unknown.

    Components are therefore derived/low and taken as per GPU (the convention of its successor v2); the
    per-GPU peaks (``memory_measurements.per_gpu_peak``) give the device total.
    """

    def body(f: Fields) -> Profile | None:
        run = read_bench_run(f, v1=True)
        mm = f.obj(f.root, "memory_measurements", required=True)
        mb = f.obj(f.root, "memory_breakdown", required=True)
        chosen = select_tp_gpus(f, f.objects(mm, "per_gpu_peak", required=True), run.gpus)
        values = {name: f.gb(mb, key, required=True) for name, key in V1_COMPONENTS.items()}
        multi = f.gb(mb, "multi_gpu_overhead_gb", nullable=True)
        total_sum = f.gb(mb, "total_measured_gb", required=True)
        used = used_values(f, chosen[0]) if chosen else None
        totals = totals_of(f, chosen)
        if f.problems:
            return None
        backend = smi_backend(run.gpu_type, totals)
        comps: dict[str, Any] = {}
        for name, key in V1_COMPONENTS.items():
            value = values[name]
            assert value is not None
            note = f"memory_breakdown.{key}: {V1_HOW}"
            comps[name] = component(value, "GB", Provenance.DERIVED, Confidence.LOW, note)
        if multi is not None and run.gpus > 1:
            note = f"memory_breakdown.multi_gpu_overhead_gb: {V1_HOW}"
            comps["multi_gpu_overhead"] = component(multi, "GB", Provenance.DERIVED, Confidence.LOW, note)
        device = None
        if chosen and used is not None:
            note = f"max of memory_measurements.per_gpu_peak[].used_gb; {chosen[1]}"
            comps["total"] = per_gpu_total(used, backend, Confidence.MEDIUM, note)
            device = DeviceReadings(
                tool=backend.tool, peak_bytes=comps["total"].per_gpu_bytes, unit_read=backend.unit
            )
        else:
            assert total_sum is not None
            note = f"memory_breakdown.total_measured_gb, no per-GPU peaks of the TP GPUs; {backend.note}"
            comps["total"] = component(
                total_sum, backend.unit, Provenance.DEVICE, Confidence.LOW, note, share=run.gpus
            )
        run.notes += [f"Units of device readings: {backend.note}.", capacity_note(backend, totals)]
        return build_profile(file, f, run, "llmsizer-bench-v1", comps, device)

    return run_reader(file, data, body)


# -- v2.0 -------------------------------------------------------------------------------------------

V2_FORMULA = {
    "weights": ("model_weights_gb", "params x bytes / (TP x 1e9), per GPU", 0.65),
    "kv_cache": (
        "kv_cache_gb",
        "2 x layers x hidden_size x (I+O) x batch x bytes / (TP x 1e9), per GPU, no GQA",
        0.20,
    ),
    "activations": ("activations_gb", "batch x (I+O) x hidden x 8 x bytes / 1e9, not divided by TP", 0.12),
}
V2_LOW = {"low", "low_estimated"}
"""Labels under which v2 fell back from a formula to a fixed fraction of the net increase."""


def read_v2(data: dict[str, Any], file: str) -> Profile:
    """v2.0: components are formulas or fixed fractions; totals are sums over ALL system GPUs."""

    def body(f: Fields) -> Profile | None:
        run = read_bench_run(f)
        gpus = run.gpus
        mm = f.obj(f.root, "memory_measurements", required=True)
        mb = f.obj(f.root, "memory_breakdown", required=True)
        peak_stats, peak = snapshot(f, mm, "peak", gpus, required=True)
        _, base = snapshot(f, mm, "baseline", gpus, required=False)
        peak_used = used_values(f, peak[0]) if peak else None
        base_used = used_values(f, base[0]) if base else None
        totals = totals_of(f, peak, base)
        levels = f.obj(mb, "confidence_levels")
        labels = {name: f.text(levels, name, nullable=True) for name in (*V2_FORMULA, "overhead")}
        values = {name: f.gb(mb, spec[0], required=True) for name, spec in V2_FORMULA.items()}
        overhead = f.gb(mb, "framework_overhead_gb", required=True)
        total_sum = f.gb(mb, "total_measured_gb", required=True)
        summed = f.integer(peak_stats, "num_gpus") or run.system_gpus or gpus  # 0: no GPU was found
        if f.problems:
            return None
        assert overhead is not None and total_sum is not None
        backend = smi_backend(run.gpu_type, totals)
        net = f"net increase summed over {summed} GPU(s)"
        comps: dict[str, Any] = {}
        for name, (key, formula, fraction) in V2_FORMULA.items():
            value, label = values[name], labels[name]
            assert value is not None
            src = f"memory_breakdown.{key}, {label_note(label)}"
            if label in V2_LOW:
                note = f"{src}: {fraction:.2f} x {net}; {backend.note}"
                comps[name] = component(
                    value, backend.unit, Provenance.DERIVED, confidence_of(label), note, share=gpus
                )
            else:
                note = f"{src}: {formula} (decimal GB)"
                comps[name] = component(value, "GB", Provenance.DERIVED, confidence_of(label), note)
        mixed = "" if backend.unit == "GB" else "; mixed units: formula components are decimal GB"
        note = (
            f"memory_breakdown.framework_overhead_gb, {label_note(labels['overhead'])}: max(0, {net} - "
            f"per-GPU components); {backend.note}{mixed}"
        )
        comps["framework_overhead"] = component(
            overhead, backend.unit, Provenance.DERIVED, confidence_of(labels["overhead"]), note, share=gpus
        )
        device = None
        if peak and peak_used is not None:
            note = f"max of memory_measurements.peak.per_gpu_details[].used_gb; {peak[1]}; {POST_EXIT_NOTE}"
            comps["total"] = per_gpu_total(peak_used, backend, Confidence.LOW, note)
            baseline = [to_bytes(v, backend.unit) for v in base_used] if base_used is not None else None
            device = DeviceReadings(
                tool=backend.tool,
                baseline_bytes=baseline,
                peak_bytes=comps["total"].per_gpu_bytes,
                unit_read=backend.unit,
            )
        else:
            others = f", including {summed - gpus} GPU(s) the run did not use" if summed > gpus else ""
            note = (
                f"memory_breakdown.total_measured_gb, a sum over {summed} GPUs{others} (per-GPU details "
                f"missing or the TP GPUs not identifiable); {backend.note}"
            )
            comps["total"] = component(
                total_sum, backend.unit, Provenance.DEVICE, Confidence.LOW, note, share=gpus
            )
        run.notes += [
            POST_EXIT_NOTE,
            f"Units of device readings: {backend.note}.",
            capacity_note(backend, totals),
        ]
        if summed > gpus:
            run.notes.append(
                f"The profiler's totals sum all {summed} system GPUs although the run used {gpus} "
                "(fixed only in v3)."
            )
        return build_profile(file, f, run, "llmsizer-v2.0", comps, device)

    return run_reader(file, data, body)
