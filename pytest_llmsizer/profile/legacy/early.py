"""Readers for the two early profilers: legacy torch/transformers (section 1.2) and legacy API (section 1.3).

Neither measured components. The torch profiler read the torch allocator on the current device only; the API
profiler split a whole-system smi total by fixed percentages. Both are recorded faithfully and marked for what
they are, so nobody validates a calculator against a 65/20/10 guess by accident.
"""

from __future__ import annotations

from typing import Any

from pytest_llmsizer.profile.legacy.common import (
    ROCM_SMI_OR_SYSFS,
    SYSFS,
    Fields,
    Unit,
    capacity_note,
    component,
    per_gpu_total,
    profiler_source,
    run_reader,
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
    Workload,
)

# -- legacy torch -----------------------------------------------------------------------------------


def read_legacy_torch(data: dict[str, Any], file: str) -> Profile:
    """HF transformers with ``device_map="auto"``: torch allocator readings in decimal GB, of device 0."""

    def body(f: Fields) -> Profile | None:
        root = f.root
        mb = f.obj(root, "memory_breakdown", required=True)
        mi = f.obj(root, "model_info", required=True)
        gi = f.obj(root, "gpu_info")
        weights = f.gb(mb, "model_weights_gb", required=True)
        kv = f.gb(mb, "kv_cache_gb", required=True)
        act = f.gb(mb, "activations_gb", required=True)
        overhead = f.gb(mb, "framework_overhead_gb")
        peak = f.gb(mb, "total_gb", required=True)
        name = f.text(mi, "model_name", required=True)
        dtype = f.text(mi, "dtype", nullable=True)
        params = f.integer(mi, "num_parameters", nullable=True)
        batch = f.integer(mi, "batch_size", nullable=True, minimum=1)
        prompt_len = f.integer(mi, "prompt_length", nullable=True)
        seq_len = f.integer(mi, "total_sequence_length", nullable=True)
        max_tokens = f.integer(mi, "max_tokens", nullable=True)
        gpus = f.integer(gi, "num_gpus", nullable=True, minimum=1) or 1
        per_device = f.objects(gi, "gpu_memory_per_device")
        allocated = used_values(f, per_device, "allocated_gb") if per_device else None
        multi = f.gb(gi, "multi_gpu_overhead_gb", nullable=True)
        param_weights = f.gb(f.obj(root, "all_measurements"), "model_weights_gb", nullable=True)
        if f.problems:
            return None
        assert weights is not None and kv is not None and act is not None and peak is not None
        assert name is not None

        where = "torch allocator on the current device (cuda:0)"
        if gpus > 1:
            where += f", one of {gpus} GPUs"
        comps: dict[str, Any] = {
            "weights": component(
                weights, "GB", Provenance.DEVICE, Confidence.HIGH if gpus == 1 else Confidence.MEDIUM,
                f"memory_breakdown.model_weights_gb: memory_allocated() after loading, {where}; bytes / 1e9",
            ),
            "kv_cache": component(
                kv, "GB", Provenance.DERIVED, Confidence.LOW,
                f"memory_breakdown.kv_cache_gb: allocated after generate - baseline, {where}; generate() "
                "usually frees its cache before this reading",
            ),
            "activations": component(
                act, "GB", Provenance.DERIVED, Confidence.MEDIUM,
                f"memory_breakdown.activations_gb: peak - final allocated, {where}",
            ),
            "total": component(
                peak, "GB", Provenance.DEVICE, Confidence.MEDIUM,
                f"memory_breakdown.total_gb: max_memory_allocated(), {where}; excludes the CUDA/HIP "
                "context and cached-but-free blocks",
            ),
        }
        if overhead is not None:
            comps["framework_overhead"] = component(
                overhead, "GB", Provenance.DERIVED, Confidence.LOW,
                "memory_breakdown.framework_overhead_gb: allocated - (weights + KV + activations) floored "
                "at 0, which is almost always 0 by construction",
            )
        if multi is not None and gpus > 1:
            comps["multi_gpu_overhead"] = component(
                multi, "GB", Provenance.DERIVED, Confidence.LOW,
                "gpu_info.multi_gpu_overhead_gb: sum of allocated over all devices - device-0 peak, "
                "floored at 0 (mostly the other devices' own share, not an overhead)",
                share=gpus,
            )
        device = None
        if allocated is not None and len(allocated) == gpus:
            final = [to_bytes(v, "GB") for v in allocated]
            device = DeviceReadings(tool="torch", final_bytes=final, unit_read="GB")
        output = seq_len - prompt_len if seq_len is not None and prompt_len is not None else max_tokens
        workload = None
        if batch is not None and prompt_len is not None and output is not None and output >= 0:
            workload = Workload(batch_size=batch, input_tokens=prompt_len, output_tokens=output)
        notes = [
            "HF transformers generate() with device_map='auto': no pre-allocation, memory follows the "
            "workload. Units: torch bytes / 1e9 (decimal GB).",
            None if param_weights is None else
            f"Weights from the parameter count (all_measurements.model_weights_gb): {param_weights} GB, "
            "whole model.",
        ]
        return Profile(
            synthetic=root.data.get("synthetic") is True,
            source=profiler_source(file, "llmsizer-legacy-torch", notes),
            model=ModelInfo(
                id=name,
                name_in_source=name,
                num_parameters=params,
                dtype=dtype.removeprefix("torch.") if dtype else None,
            ),
            hardware=Hardware(gpu_count=gpus),
            engine=Engine(name="transformers", extra_args={"device_map": "auto"}),
            workload=workload,
            measurements=Measurements(components=Components(**comps), device=device),
        )

    return run_reader(file, data, body)


# -- legacy API -------------------------------------------------------------------------------------

API_GUESSES = {
    "kv_cache": ("kv_cache_gb", "0.20 x baseline total (reduced if the residual went negative)"),
    "framework_overhead": ("framework_overhead_gb", "baseline total - weights - KV, or 0.10 x it"),
}


def read_legacy_api(data: dict[str, Any], file: str) -> Profile:
    """API profiler against a running vLLM server: fixed-percentage splits of a whole-system smi total.

    Every breakdown value is a share of the total over all listed GPUs, so each is divided by the GPU count
    for a per-GPU figure. The per-GPU ``used_gb`` of the final snapshot gives the device total.
    """

    def body(f: Fields) -> Profile | None:
        root = f.root
        mb = f.obj(root, "memory_breakdown", required=True)
        mi = f.obj(root, "model_info", required=True)
        gi = f.obj(root, "gpu_info", required=True)
        guesses = {name: f.gb(mb, key, required=True) for name, (key, _) in API_GUESSES.items()}
        weights = f.gb(mb, "model_weights_gb", required=True)
        act = f.gb(mb, "activations_gb", required=True)
        multi = f.gb(mb, "multi_gpu_overhead_gb", nullable=True)
        total_sum = f.gb(mb, "total_gb", required=True)
        model_id = f.text(mi, "model_id", nullable=True)
        name = f.text(mi, "model_name", required=not model_id, nullable=bool(model_id))
        params = f.integer(mi, "num_parameters", nullable=True)
        batch = f.integer(mi, "batch_size", nullable=True, minimum=1) or 1
        prompt = f.integer(mi, "prompt_tokens", nullable=True)
        completion = f.integer(mi, "completion_tokens", nullable=True)
        max_tokens = f.integer(mi, "max_tokens", nullable=True)
        gpu_type = f.text(gi, "gpu_type", nullable=True)
        n = f.integer(gi, "num_gpus", required=True, minimum=1)
        snaps = {k: f.objects(gi, k) for k in ("gpu_memory_baseline", "gpu_memory_final")}
        used = {k: used_values(f, v) if v else None for k, v in snaps.items()}
        totals = [f.gb(item, "total_gb", nullable=True) for v in snaps.values() if v for item in v]
        if f.problems:
            return None
        assert weights is not None and act is not None and total_sum is not None and n is not None

        # rocm-smi's total is a hard-coded 206.0 (recognised by smi_backend); a real one came from sysfs
        rocm = SYSFS if any(t is not None for t in totals) else ROCM_SMI_OR_SYSFS
        backend = smi_backend(gpu_type, totals, rocm=rocm)
        comps: dict[str, Any] = {}
        if params:
            note = "memory_breakdown.model_weights_gb: params x 2 / 1e9, whole model (FP16 always assumed)"
            comps["weights"] = component(weights, "GB", Provenance.DERIVED, Confidence.MEDIUM, note, share=n)
        else:
            note = f"memory_breakdown.model_weights_gb: 0.65 x baseline total; {backend.note}"
            comps["weights"] = component(
                weights, backend.unit, Provenance.DERIVED, Confidence.LOW, note, share=n
            )
        for name_, (key, how) in API_GUESSES.items():
            value = guesses[name_]
            assert value is not None
            note = f"memory_breakdown.{key}: {how}; {backend.note}"
            comps[name_] = component(value, backend.unit, Provenance.DERIVED, Confidence.LOW, note, share=n)
        unit: Unit
        if act == 0.5:
            unit, how = "GB", "the fixed 0.5 GB guess (the increase was under 0.1 GB)"
        else:
            unit, how = backend.unit, f"0.8 x (final - baseline total); {backend.note}"
        note = f"memory_breakdown.activations_gb: {how}"
        comps["activations"] = component(act, unit, Provenance.DERIVED, Confidence.LOW, note, share=n)
        if multi is not None and (n > 1 or multi > 0):
            note = "memory_breakdown.multi_gpu_overhead_gb: (mean used - weights / GPUs) x GPUs, floored at 0"
            comps["multi_gpu_overhead"] = component(
                multi, backend.unit, Provenance.DERIVED, Confidence.LOW, note, share=n
            )
        final_used = used["gpu_memory_final"]
        if final_used is not None and len(final_used) == n:
            note = "max of gpu_info.gpu_memory_final[].used_gb, read 1 s after the request, server running"
            comps["total"] = per_gpu_total(final_used, backend, Confidence.HIGH, note)
        else:
            note = f"memory_breakdown.total_gb (final total over the GPUs); {backend.note}"
            comps["total"] = component(
                total_sum, backend.unit, Provenance.DEVICE, Confidence.LOW, note, share=n
            )
        readings = {
            k: [to_bytes(x, backend.unit) for x in v] if v is not None and len(v) == n else None
            for k, v in used.items()
        }
        device = None
        if any(readings.values()):
            device = DeviceReadings(
                tool=backend.tool,
                baseline_bytes=readings["gpu_memory_baseline"],
                final_bytes=readings["gpu_memory_final"],
                unit_read=backend.unit,
            )
        output = completion // batch if completion is not None else max_tokens
        workload = None
        if prompt is not None and output is not None:
            workload = Workload(batch_size=batch, input_tokens=prompt // batch, output_tokens=output)
        notes = [
            "The API profiler queried an already running vLLM server: that server's tensor_parallel_size, "
            "gpu_memory_utilization and max_model_len are not recorded (TP left at 1, utilization unset).",
            f"Units of device readings: {backend.note}.",
            capacity_note(backend, totals),
            f"Workload from usage: prompt/completion tokens summed over the batch, divided by {batch}.",
        ]
        return Profile(
            synthetic=root.data.get("synthetic") is True,
            source=profiler_source(file, "llmsizer-legacy-api", notes),
            model=ModelInfo(id=model_id or name or "", name_in_source=name, num_parameters=params),
            hardware=Hardware(vendor=vendor_of(gpu_type), gpu_count=n),
            engine=Engine(name="vllm"),
            workload=workload,
            measurements=Measurements(components=Components(**comps), device=device),
        )

    return run_reader(file, data, body)
