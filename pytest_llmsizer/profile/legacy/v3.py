"""Reader for the v3.0 profiler (``profile-vllm-bench-v3.py``): vLLM log values, a sampled timeline, splits.

v3 is the first profiler that read vLLM's own numbers (weights, KV pool, CUDA graphs; GiB, per rank), so those
become ``engine`` components. Everything else is still a formula or a fixed 70/30 split of a residual, which
stays ``derived`` (llm-sizer-origin.md section 1.6).
"""

from __future__ import annotations

from typing import Any

from pytest_llmsizer.profile.legacy.bench import (
    GPU_UTIL_NOTE,
    BenchRun,
    build_profile,
    read_bench_run,
    snapshot,
    totals_of,
)
from pytest_llmsizer.profile.legacy.common import (
    AMD_SMI,
    ENGINE_LABEL,
    NVIDIA_SMI,
    UNKNOWN_SMI,
    Backend,
    Fields,
    Node,
    capacity_note,
    component,
    confidence_of,
    label_note,
    per_gpu_total,
    run_reader,
    smi_backend,
    to_bytes,
    used_values,
)
from pytest_llmsizer.profile.model import Component, Confidence, DeviceReadings, Profile, Provenance

VLLM_KEYS = {
    # flag in memory_breakdown.vllm_reported_values_used -> the vllm_internal_metrics keys behind it
    "weights": ("model_weights_gb", "model_loading_gb"),
    "kv_cache_allocated": ("available_kv_cache_gb",),
    "kv_cache_used": ("total_gpu_kv_cache_gb",),
    "graph_capture": ("graph_capture_gb",),
    "activations": ("activations_gb",),
}
LOG_MARKERS = (
    "Model loading took",
    "Loading model weights took",
    "Available KV cache memory",
    "GPU KV cache size",
    "Graph capturing finished",
    "# GPU blocks",
    "Maximum concurrency",
)
MAX_LOG_LINES = 20
LABEL_KEYS = ("weights", "kv_cache", "activations", "overhead")


def read_v3(data: dict[str, Any], file: str) -> Profile:
    """v3.0: engine values from vLLM's log (GiB), device totals from a timeline, the rest derived."""

    def body(f: Fields) -> Profile | None:
        run = read_bench_run(f)
        gpus = run.gpus
        mm = f.obj(f.root, "memory_measurements", required=True)
        mb = f.obj(f.root, "memory_breakdown", required=True)
        vim = f.obj(f.root, "vllm_internal_metrics")
        base_stats, base = snapshot(f, mm, "baseline", gpus, required=False)
        _, final = snapshot(f, mm, "final_snapshot", gpus, required=False)
        pft = f.obj(mm, "peak_from_timeline", required=True)
        peak_sum = f.gb(pft, "total_gb", required=True)
        source = f.text(pft, "source", nullable=True)
        system = f.integer(base_stats, "system_total_gpus", nullable=True) or run.system_gpus
        base_used = used_values(f, base[0]) if base else None
        final_used = used_values(f, final[0]) if final else None
        totals = totals_of(f, base, final)

        levels = f.obj(mb, "confidence_levels")
        labels = {k: f.text(levels, k, nullable=True) for k in LABEL_KEYS}
        flags_node = f.obj(mb, "vllm_reported_values_used")
        flags = {k: f.flag(flags_node, k) for k in VLLM_KEYS}
        weights = f.gb(mb, "model_weights_gb", required=True)
        kv_alloc = f.gb(mb, "kv_cache_allocated_gb", required=True)
        kv_used = f.gb(mb, "kv_cache_used_gb", nullable=True)
        graph = f.gb(mb, "graph_capture_gb", nullable=True)
        act = f.gb(mb, "activations_gb", required=True)
        overhead = f.gb(mb, "framework_overhead_gb", required=True)
        vm = {k: f.gb(vim, k, nullable=True) for keys in VLLM_KEYS.values() for k in keys}
        engine_extra, measurements_extra = _vllm_settings(f, vim, run)
        log_lines = _log_lines(f)
        _check_flags(f, flags_node, flags, vim, vm)
        if f.problems:
            return None
        assert weights is not None and kv_alloc is not None and act is not None and overhead is not None
        assert peak_sum is not None

        snap = smi_backend(run.gpu_type, totals, rocm=AMD_SMI)
        from_final = source == "final_snapshot"
        tl = snap if from_final else _timeline_backend(run.gpu_type, snap)
        # GPUs summed into the peak: the TP filter (< TP) on ROCm and in snapshots; every GPU in CUDA samples
        summed = system if (run.gpu_type == "cuda" and not from_final and system) else gpus
        weights_from_log = flags["weights"]
        if weights_from_log is None:  # older files without the flags: the label says it
            weights_from_log = labels["weights"] == ENGINE_LABEL
        residual = (
            f"of the residual max(0, net - weights - KV pool - graphs), net summed over {summed} GPU(s) "
            f"({tl.note}) minus per-GPU vLLM values"
        )
        comps: dict[str, Component | None] = {}
        if weights_from_log:
            comps["weights"] = _engine(weights, "memory_breakdown.model_weights_gb = 'Model loading took'")
        else:
            comps["weights"] = _derived_weights(weights, labels["weights"], tl, summed, gpus)
        comps["kv_cache"] = _kv_cache(
            kv_alloc, kv_used, labels["kv_cache"], bool(flags["kv_cache_used"]), tl, gpus
        )
        if kv_alloc > 0 and kv_used:
            run.notes.append(
                f"memory_breakdown.kv_cache_used_gb = {kv_used} ({label_note(labels['kv_cache'])}) is the "
                "profiler's estimate of the KV the workload used (non-GQA formula), not a native component."
            )
        if graph:
            comps["cuda_graphs"] = _engine(graph, "memory_breakdown.graph_capture_gb = 'Graph capturing'")
        if flags["activations"]:
            comps["activations"] = _engine(act, "memory_breakdown.activations_gb")
        else:
            note = f"memory_breakdown.activations_gb, {label_note(labels['activations'])}: 0.7 {residual}"
            comps["activations"] = component(
                act, tl.unit, Provenance.DERIVED, confidence_of(labels["activations"]), note, share=gpus
            )
        note = f"memory_breakdown.framework_overhead_gb, {label_note(labels['overhead'])}: 0.3 {residual}"
        comps["framework_overhead"] = component(
            overhead, tl.unit, Provenance.DERIVED, confidence_of(labels["overhead"]), note, share=gpus
        )
        comps["total"], peak_bytes = _total(peak_sum, source, final, final_used, tl, summed, gpus)

        device = None
        if base_used is not None or final_used is not None or peak_bytes is not None:
            device = DeviceReadings(
                tool=snap.tool,
                baseline_bytes=[to_bytes(v, snap.unit) for v in base_used] if base_used is not None else None,
                peak_bytes=peak_bytes,
                final_bytes=[to_bytes(v, snap.unit) for v in final_used] if final_used is not None else None,
                unit_read=snap.unit if tl.unit == snap.unit else None,
            )
        run.notes += [
            f"Units of device snapshots: {snap.note}; of the timeline: {tl.note}.",
            capacity_note(snap, totals),
        ]
        profile = build_profile(
            file, f, run, "llmsizer-v3.0", comps, device,
            engine_extra=engine_extra, measurements_extra=measurements_extra,
        )
        if log_lines:
            source_ = profile.source.model_copy(update={"log_lines": log_lines})
            profile = profile.model_copy(update={"source": source_})
        return profile

    return run_reader(file, data, body)


def _vllm_settings(f: Fields, vim: Node | None, run: BenchRun) -> tuple[dict[str, Any], dict[str, Any]]:
    """Engine settings and KV capacity parsed by v3 from the vLLM log (each may be null)."""
    util = f.number(vim, "gpu_memory_utilization", nullable=True, minimum=0.01, maximum=1.0)
    attention = f.text(vim, "attention_backend", nullable=True)
    version = f.text(vim, "vllm_version", nullable=True)
    graphs_on = f.flag(vim, "cuda_graphs_enabled")
    log_format = f.text(vim, "log_format_version", nullable=True)
    engine = {
        "block_size": f.integer(vim, "block_size", nullable=True, minimum=1),
        "gpu_memory_utilization": util,
        "max_model_len": f.integer(vim, "max_model_len", nullable=True, minimum=1),
        "extra_args": {"attention_backend": attention} if attention else None,
    }
    measurements = {
        "kv_cache_tokens": f.integer(vim, "total_gpu_kv_cache_tokens", nullable=True),
        "num_gpu_blocks": f.integer(vim, "num_gpu_blocks", nullable=True),
    }
    if util is not None:
        run.notes.remove(GPU_UTIL_NOTE)
        run.notes.append("gpu_memory_utilization as v3 parsed it from the vLLM log.")
    if run.engine["enforce_eager"] is None and graphs_on is not None:
        run.engine["enforce_eager"] = not graphs_on
    if run.engine["version"] is None:
        run.engine["version"] = version
    run.notes.append(f"vLLM log format v3 recognised: {log_format or 'unknown'}.")
    return engine, measurements


def _log_lines(f: Fields) -> list[str] | None:
    """The vLLM log lines v3 parsed its numbers from, verbatim from ``raw_logs``, for auditing."""
    logs = f.obj(f.root, "raw_logs")
    lines: list[str] = []
    for key in ("vllm_stdout", "vllm_stderr"):
        text = f.text(logs, key, nullable=True) or ""
        lines += [ln.strip() for ln in text.splitlines() if any(m in ln for m in LOG_MARKERS)]
    return lines[:MAX_LOG_LINES] or None


def _check_flags(
    f: Fields,
    flags_node: Node | None,
    flags: dict[str, bool | None],
    vim: Node | None,
    vm: dict[str, float | None],
) -> None:
    """A value flagged as vLLM's needs the log value behind it; otherwise ``engine`` is a mere claim."""
    if flags_node is None or vim is None:
        return
    for flag, keys in VLLM_KEYS.items():
        if flags[flag] and all(vim.data.get(k) is None for k in keys):
            f.problem(
                flags_node.at(flag),
                f"true, but vllm_internal_metrics.{' / '.join(keys)} is null: no vLLM log value backs it",
            )


def _timeline_backend(gpu_type: str | None, snap: Backend) -> Backend:
    """v3 samples with amd-smi on ROCm and nvidia-smi on CUDA: GiB either way."""
    return {"rocm": AMD_SMI, "cuda": NVIDIA_SMI}.get(gpu_type or "", snap if snap.known else UNKNOWN_SMI)


def _engine(value: float, what: str) -> Component:
    note = f"{what}; vLLM log value, GiB, per rank"
    return component(value, "GiB", Provenance.ENGINE, Confidence.HIGH, note)


def _derived_weights(value: float, label: str | None, tl: Backend, summed: int, gpus: int) -> Component:
    src = f"memory_breakdown.model_weights_gb, {label_note(label)}"
    if label == "high_from_params":
        note = f"{src}: params x bytes / (TP x 1e9), decimal GB"
        return component(value, "GB", Provenance.DERIVED, Confidence.HIGH, note)
    note = f"{src}: 0.65 x net increase summed over {summed} GPU(s); {tl.note}"
    return component(value, tl.unit, Provenance.DERIVED, confidence_of(label), note, share=gpus)


def _kv_cache(
    kv_alloc: float, kv_used: float | None, label: str | None, used_from_log: bool, tl: Backend, gpus: int
) -> Component | None:
    """The native KV component is vLLM's pool; only without it does the profiler's estimate stand in."""
    if kv_alloc > 0:
        return _engine(kv_alloc, "memory_breakdown.kv_cache_allocated_gb = 'Available KV cache memory'")
    if not kv_used:
        return None  # 0 means "not found" here: missing stays missing
    if used_from_log:
        return _engine(kv_used, "memory_breakdown.kv_cache_used_gb = v0 'Total GPU KV cache' (the pool)")
    src = f"memory_breakdown.kv_cache_used_gb, {label_note(label)}"
    if label == "high_calculated":
        note = (
            f"{src}: workload KV by the non-GQA formula 2 x layers x hidden x (I+O) x batch x bytes / "
            "(TP x 1e9), decimal GB, not vLLM's pool"
        )
        return component(kv_used, "GB", Provenance.DERIVED, Confidence.HIGH, note)
    note = f"{src}: 0.20 x net increase, not vLLM's pool; {tl.note}"
    return component(kv_used, tl.unit, Provenance.DERIVED, confidence_of(label), note, share=gpus)


def _total(
    peak_sum: float,
    source: str | None,
    final: tuple[list[Node], str] | None,
    final_used: list[float] | None,
    tl: Backend,
    summed: int,
    gpus: int,
) -> tuple[Component, list[int] | None]:
    """Per-GPU total and per-GPU peaks. The timeline keeps only sums, so it is per GPU for one GPU only."""
    if source == "final_snapshot" and final and final_used is not None:
        note = (
            "no timeline samples: max of memory_measurements.final_snapshot.per_gpu_details[].used_gb, "
            f"read after the run; {final[1]}"
        )
        total = per_gpu_total(final_used, tl, Confidence.LOW, note)
        return total, total.per_gpu_bytes
    what = f"memory_measurements.peak_from_timeline.total_gb (source {source or 'unknown'})"
    if summed == 1:
        total = per_gpu_total([peak_sum], tl, Confidence.HIGH, f"{what}, one GPU")
        return total, total.per_gpu_bytes
    others = ""
    if summed > gpus:
        others = f"; the CUDA timeline sums all {summed} system GPUs, other GPUs' memory included"
    confidence = Confidence.LOW if summed > gpus else Confidence.MEDIUM
    note = f"{what}, an even split over the TP GPUs assumed{others}; {tl.note}"
    return component(peak_sum, tl.unit, Provenance.DEVICE, confidence, note, share=gpus), None
