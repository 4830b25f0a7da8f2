"""The CUDA-graph pool ("Graph capturing finished in S secs, took X GiB"), per GPU.

vLLM captures one graph per batch size in its capture list (largest first, into one shared pool), per compiled
piece of the model (piecewise) and, from ~0.17, full graphs for decode as well (FULL_AND_PIECEWISE). What the pool
holds grows with the number of captured graphs, with the layers each graph replays (their static buffers and
kernel nodes), and with the attention backend (MLA decode kernels and Mamba/GDN state kernels keep their own
metadata buffers). The pool is modelled as

    pool = n_graphs / n_ref x (base + per_layer x layers + backend offset)

with ``base``, ``per_layer`` and the backend offsets fitted per vLLM version bucket and platform by
``benchmarks/fit.py`` (``coefficients.CUDA_GRAPH_POOL``, at the reference capture count ``n_ref`` of the data:
max_num_seqs 1024 -> 51 sizes). The count n_graphs scales it to other max_num_seqs. Floored at 0: a negative "took"
in a log means capturing released cached allocator blocks (common before 0.17 on CUDA), not that graphs give
memory back. Outside vLLM's budget before 0.21 (the pool sits on top of utilization x total), inside from 0.21.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.calculator.versions import version_bucket
from pytest_llmsizer.catalog.arch import ModelArch
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
    """The backend class whose graphs differ: ``mla`` (DeepSeek-style latent attention), ``hybrid`` (Mamba or
    Gated-DeltaNet layers beside attention), else ``standard``."""
    if arch.mla is not None:
        return "mla"
    if any(kind in ("mamba", "linear") for kind in arch.layer_attention):
        return "hybrid"
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
