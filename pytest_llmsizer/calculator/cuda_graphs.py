"""The CUDA-graph figure vLLM logs ("Graph capturing finished in S secs, took X GiB"), per GPU, and the pool in it.

vLLM captures one graph per batch size in its capture list (largest first, into one shared pool), per compiled
piece of the model (piecewise) and, from ~0.17, full graphs for decode as well (FULL_AND_PIECEWISE). What the pool
holds grows with the number of captured graphs, with the layers each graph replays (their static buffers and
kernel nodes), and with the attention backend (``attention_backend``: MLA decode, DeepSeek-V3.2's sparse MLA,
Mamba-2 and Gated-DeltaNet state kernels keep their own metadata buffers). The pool is modelled as

    pool = n_graphs / n_ref x (base + per_layer x layers + backend offset)      (>= 0)

with ``base``, ``per_layer`` and the backend offsets fitted per vLLM version bucket and platform by
``benchmarks/fit.py`` (``coefficients.CUDA_GRAPH_POOL``, at the reference capture count ``n_ref`` of the data:
max_num_seqs 1024 -> 51 sizes). The count n_graphs scales it to other max_num_seqs. Before 0.17 on CUDA the line is
the 0.17-0.19 one (the capture code is the same; ``calibration/fit.GRAPH_RELEASE_FITS`` says why).

The log does not print the pool. ``capture_model()`` logs start_free - end_free (``torch.cuda.mem_get_info``) around
the capture, and just before it ``kernel_warmup()`` ran, on SM >= 90: DeepGEMM's warm-up of fp8 block-quantized
experts (where DeepGEMM is installed) and a FlashInfer autotune that is a full eager forward at
max_num_batched_tokens. What they free stays cached in torch's allocator; ``torch.cuda.graph()`` empties the cache on
entry (vLLM keeps that only for the first piece of each forward), so the first capture hands it back to the device
inside the measured window:

    logged = pool - released,
    released = max(DeepGEMM reserve, rho x dense forward + the MoE kernel's per-call buffers)     (``released_bytes``)

The dense forward is ``activations.dense_forward_bytes``; the MoE kernel, its buffers and whether they are
allocated per call or held in a persistent workspace (which is never cached, so never handed back) are
``moe_kernels``' (from vLLM's source per version). rho, per version bucket and platform
(``coefficients.CUDA_GRAPH_RELEASE``, 0 where not fitted), scales the dense formula only. Reproduced on an H200 by
``benchmarks/gpu_graph_release.py``. So the logged figure can be negative (a big forward, a small pool) and only
there; the pool itself never is. rho is fitted > 0 only before vLLM 0.17 on NVIDIA: from 0.17 the logs no longer
show the release, for a reason not established (the capture and warm-up code is the same; torch 2.9 -> 2.10,
flashinfer 0.6.3 -> 0.6.4).
The pool is outside vLLM's budget before 0.21 (it sits on top of utilization x total), inside from 0.21.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator.moe_kernels import MoeKernel
from pytest_llmsizer.calculator.versions import version_bucket
from pytest_llmsizer.catalog.arch import ModelArch
from pytest_llmsizer.catalog.gpus import cuda_capability
from pytest_llmsizer.units import GiB


@functools.lru_cache(maxsize=256)
def capture_sizes(max_num_seqs: int, version: tuple[int, int]) -> tuple[int, ...]:
    """vLLM's default ``cudagraph_capture_sizes``: from 0.11, [1, 2, 4] + multiples of 8 below 256 + multiples of
    16 from 256, up to min(2 x max_num_seqs, 512) (``max_cudagraph_capture_size``); before, [1, 2, 4] + multiples of
    8 up to min(max_num_seqs, 512)."""
    if version >= (0, 11):
        top = min(2 * max_num_seqs, k.MAX_CUDAGRAPH_CAPTURE_SIZE)
        sizes = [1, 2, 4, *range(8, 256, 8), *range(256, top + 1, 16)]
    else:
        top = min(max_num_seqs, k.MAX_CUDAGRAPH_CAPTURE_SIZE)
        sizes = [1, 2, 4, *range(8, k.MAX_CUDAGRAPH_CAPTURE_SIZE + 1, 8)]
    return tuple(s for s in sizes if s <= top)


def attention_backend(arch: ModelArch) -> str:
    """The backend class whose graphs differ: ``mla`` (DeepSeek-style latent attention), ``mla_sparse`` (latent
    attention with DeepSeek-V3.2's DSA indexer), ``mamba`` (Mamba-2 layers beside attention), ``linear``
    (Gated-DeltaNet / linear-attention layers beside attention), else ``standard``. Each decodes through its own
    kernels with their own metadata and state buffers: DSA runs the sparse FlashMLA kernels and the indexer's top-k
    selection instead of dense MLA decode, Mamba-2 and Gated DeltaNet different state-update kernels."""
    if arch.mla is not None:
        return "mla_sparse" if arch.indexer is not None else "mla"
    if "mamba" in arch.layer_attention:
        return "mamba"
    if "linear" in arch.layer_attention:
        return "linear"
    return "standard"


def line_gib(line: Mapping[str, float], layers: int, backend: str) -> float:
    """One fitted pool line at the reference capture count, GiB: base + per_layer x layers + the backend's offset
    (the calculator below and the calibration's fit of the line both price it here)."""
    return line.get("base", 0.0) + line.get("per_layer", 0.0) * layers + line.get(backend, 0.0)


def graph_pool_bytes(arch: ModelArch, platform: str, version: tuple[int, int], max_num_seqs: int,
                     layers: int, table: dict[str, dict[str, dict[str, float]]] | None = None,
                     ) -> tuple[int, dict[str, float | int | str]]:
    """The pool per GPU for the rank holding ``layers`` decoder layers, and the terms it came from (``table``: a
    calibration's ``CUDA_GRAPH_POOL``; default the built-in one)."""
    pool = k.CUDA_GRAPH_POOL if table is None else table
    buckets = list(k.VERSION_BUCKETS)  # a bucket or platform not fitted takes the nearest older fitted one
    start = buckets.index(version_bucket(version))
    name = next((b for b in reversed(buckets[: start + 1]) if platform in pool.get(b, {})), None)
    if name is None:
        pool, name = k.CUDA_GRAPH_POOL, next(iter(k.CUDA_GRAPH_POOL))
    c = pool[name].get(platform) or pool[name]["cuda"]
    backend = attention_backend(arch)
    graphs = len(capture_sizes(max_num_seqs, version))
    gib = graphs / k.CUDA_GRAPH_REFERENCE_SIZES * line_gib(c, layers, backend)
    terms: dict[str, float | int | str] = {"coefficients_bucket": name, "capture_sizes": graphs,
                                           "attention_backend": backend, "layers": layers}
    return max(0, round(gib * GiB)), terms


AUTOTUNE_MIN_CAPABILITY = (9, 0)
"""vLLM's ``kernel_warmup()`` gate for the FlashInfer autotune: ``current_platform.has_device_capability(90)``."""


def cache_release_cause(platform: str, compute_capability: str | None, version: tuple[int, int]) -> str | None:
    """What leaves allocator blocks cached when vLLM starts capturing, or None when nothing does.

    ``kernel_warmup()`` runs the FlashInfer autotune (a forward at max_num_batched_tokens) only on CUDA devices of
    compute capability >= 9.0 (``has_device_capability(90)``) with FlashInfer installed; ROCm builds do not ship
    FlashInfer. ``compute_capability`` is the catalog's (``GpuSpec.compute_capability``, the one home of that fact);
    a GPU that is no catalog entry (None: given by its memory size only, or by a name the catalog does not know) is
    taken to be SM >= 9.0 (every NVIDIA record we have is). Versions before ``k.CUDA_GRAPH_RELEASE_SINCE`` are not
    known to run that forward before capture: none."""
    if platform != "cuda" or version < k.CUDA_GRAPH_RELEASE_SINCE:
        return None
    if compute_capability is not None:
        sm = cuda_capability(compute_capability)  # None: an AMD gfx target, no CUDA device
        if sm is None or sm < AUTOTUNE_MIN_CAPABILITY:
            return None
    return "FlashInfer autotune forward at max_num_batched_tokens before capture (SM >= 9.0)" + (
        "" if compute_capability else "; not a catalog GPU, SM >= 9.0 assumed")


def release_coefficient(platform: str, version: tuple[int, int],
                        table: dict[str, dict[str, float]] | None = None) -> float:
    """rho for a platform and vLLM version: the exact bucket's fitted value, else 0 (no older bucket is borrowed:
    the release stops showing in the logs at 0.17, so a newer bucket without a fit has none)."""
    release = k.CUDA_GRAPH_RELEASE if table is None else table
    return float(release.get(version_bucket(version), {}).get(platform, 0.0))


def released_bytes(rho: float, *, dense_bytes: float, moe_bytes: float, deepgemm_bytes: float) -> float:
    """The allocator cache the first capture hands back (bytes per GPU), from what the pre-capture warm-ups left:

        released = max(DeepGEMM warm-up reserve, rho x dense forward + the MoE kernel's per-call buffers)

    The DeepGEMM warm-up runs first; the autotune forward then reuses its cached blocks, so the cache holds the
    larger of the two (``deepgemm_bytes``: ``moe_kernels.deepgemm_warmup_bytes``). ``moe_bytes`` are the kernel's
    per-call buffers (``MoeKernel.transient_bytes``), exact sizes from vLLM's and FlashInfer's source; rho scales only
    the dense forward of ``activations.dense_forward_bytes``, a sum of the layer's large tensors that the real forward
    (norms, rotary and residual copies, fragmentation between sizes) exceeds. rho 0 (a version and platform whose
    logs show no release: ``release_coefficient``) releases nothing. Any unit works (the fit uses GiB)."""
    if rho <= 0:
        return 0.0
    return max(deepgemm_bytes, rho * dense_bytes + moe_bytes)


def logged_graph_bytes(arch: ModelArch, platform: str, version: tuple[int, int], max_num_seqs: int, layers: int,
                       *, dense_bytes: float, moe: MoeKernel | None, deepgemm_bytes: int,
                       compute_capability: str | None,
                       pool_table: dict[str, dict[str, dict[str, float]]] | None = None,
                       release_table: dict[str, dict[str, float]] | None = None,
                       ) -> tuple[int, int, dict[str, float | int | str | None]]:
    """(the figure vLLM logs, the pool, the terms): logged = pool - ``released_bytes`` where a pre-capture warm-up
    leaves blocks cached (``cache_release_cause``), else the pool. ``dense_bytes`` is the estimate's
    ``activations.dense_forward_bytes`` at max_num_batched_tokens, ``moe`` its fused-MoE kernel there and
    ``deepgemm_bytes`` DeepGEMM's warm-up reserve (``moe_kernels``); ``compute_capability`` the request's
    (``cache_release_cause``); the tables are a calibration's (default the built-in set)."""
    pool, pool_terms = graph_pool_bytes(arch, platform, version, max_num_seqs, layers, pool_table)
    cause = cache_release_cause(platform, compute_capability, version)
    rho = release_coefficient(platform, version, release_table) if cause else 0.0
    moe_bytes = moe.transient_bytes if moe else 0.0
    released = round(released_bytes(rho, dense_bytes=dense_bytes, moe_bytes=moe_bytes, deepgemm_bytes=deepgemm_bytes))
    if released and deepgemm_bytes >= released:
        cause = ("warm-up of the fp8 block-quantized experts by DeepGEMM before capture (the FlashInfer autotune "
                 "forward that follows reuses its blocks)")
    terms: dict[str, float | int | str | None] = {
        **pool_terms, "pool_bytes": pool, "released_cache_bytes": released,
        "released_by": cause if released else None, "release_coefficient": rho,
        "release_dense_bytes": round(dense_bytes) if cause else 0,
        "release_moe_bytes": round(moe_bytes) if cause else 0,
        "release_deepgemm_bytes": deepgemm_bytes if cause else 0}
    return pool - released, pool, terms


def bound_release(terms: dict[str, float | int | str | None], free_bytes: int,
                  ) -> tuple[int, dict[str, float | int | str | None]]:
    """(logged figure, terms) with the release bounded by ``free_bytes``, the memory per GPU not held by weights, KV
    pool and non-torch memory when capture starts (0 where vLLM stops before capturing): the warm-up cannot have
    cached more than was free. Never binds on the records (the release is at most 2.2 GiB there, next to 10+ GiB
    free); it keeps absurd settings (a forward of 10^5 tokens on a small GPU) from releasing memory the GPU does not
    have."""
    released = int(terms["released_cache_bytes"] or 0)
    bounded = max(0, min(released, free_bytes))
    pool = int(terms["pool_bytes"] or 0)
    if bounded == released:
        return pool - released, terms
    return pool - bounded, {**terms, "released_cache_bytes": bounded,
                            "released_by": (str(terms["released_by"]) + "; bounded by the free memory")
                            if bounded else None}
