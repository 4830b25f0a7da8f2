"""What the calculator is asked (``EstimateRequest``) and what it answers (``Estimate``).

A request holds already-resolved facts (an architecture, a GPU memory size), so the calculator stays pure: the CLI,
the plugin and the Python API each resolve names through the catalog and then call the same ``estimate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pytest_llmsizer.catalog.arch import ModelArch

if TYPE_CHECKING:
    from pytest_llmsizer.calculator.coefficient_set import CoefficientSet

Engine = Literal["vllm", "transformers"]
Platform = Literal["cuda", "rocm"]


@dataclass(frozen=True)
class EstimateRequest:
    """Inputs of one estimate. ``None`` means "use the engine's default" (the estimate records what it chose)."""

    arch: ModelArch
    gpu_memory_bytes: int
    gpu_name: str | None = None
    gpu_compute_capability: str | None = None
    """The catalog's compute capability of the GPU (``GpuSpec.compute_capability``: CUDA "9.0", or a gfx target);
    None when the GPU is not a catalog entry (given by its memory only, or by a name the catalog does not know)."""
    platform: Platform = "cuda"
    engine: Engine = "vllm"
    engine_version: str | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    enable_expert_parallel: bool = False
    dtype: str | None = None
    kv_cache_dtype: str | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    block_size: int | None = None
    enforce_eager: bool = False
    allow_long_max_model_len: bool = False
    """VLLM_ALLOW_LONG_MAX_MODEL_LEN=1: a max_model_len above the model's derived limit is accepted."""
    language_model_only: bool = False
    mm_encoder_tp_mode: Literal["weights", "data"] | None = None
    batch_size: int | None = None
    input_len: int | None = None
    output_len: int | None = None
    assumptions: tuple[str, ...] = ()
    """Assumptions already made while resolving names (e.g. a model variant), carried into the estimate."""
    calibration: CoefficientSet | None = field(default=None, compare=False)
    """Fitted coefficients to use instead of the built-in set (``llmsizer calibrate``); None: the built-in set."""


COMPONENTS = ("weights", "kv_cache", "activations", "non_torch", "cuda_graphs", "total")


@dataclass(frozen=True)
class Estimate:
    """Per-GPU memory by component (bytes), KV capacity, and every input as resolved."""

    per_gpu_bytes: dict[str, int]
    kv_cache_tokens: int | None
    max_concurrency: float | None
    inputs: dict[str, Any]
    assumptions: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Why the engine would refuse this deployment, in its own words (``calculator.feasibility``); empty = it
    starts. The numbers are still computed, so a user sees how far off the deployment is."""

    @property
    def fits(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The ``llmsizer estimate --json`` object (a contract: scripts depend on these keys)."""
        return {
            "per_gpu_bytes": {k: int(self.per_gpu_bytes[k]) for k in COMPONENTS},
            "fits": self.fits,
            "reasons": list(self.problems),
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": self.max_concurrency,
            "inputs": self.inputs,
            "assumptions": list(self.assumptions),
            "details": self.details,
        }
