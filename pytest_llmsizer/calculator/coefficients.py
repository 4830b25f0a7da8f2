"""Every coefficient the built-in calculator uses, named, documented with its source, in one place.

Physics first: most of the calculator is exact arithmetic over the architecture (bytes per parameter, KV page
sizes, vLLM's own block bookkeeping). What cannot be derived is kept here, each with where it comes from
(``../shared/notes/memory-physics.md`` section numbers, vLLM source files, or measured logs) and whether it is a
fitted value. Fitted values are data (``calculator/data/coefficients.json``, each entry with its profiles, date,
uncertainty and held-out error), written by the code of ``llmsizer calibrate`` (``python benchmarks/fit.py --write``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_llmsizer.calculator.coefficient_set import builtin_set
from pytest_llmsizer.units import GiB

_BUILTIN = builtin_set()
"""The fitted coefficients live in ``calculator/data/coefficients.json`` (one versioned data file, each entry with its
provenance); the names below expose the built-in set as they always have. A ``CoefficientSet`` passed on an
``EstimateRequest`` (``calibration=``) replaces them for that estimate."""

# --- dtypes -----------------------------------------------------------------------------------------------------

DTYPE_BYTES: dict[str, float] = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "float8_e4m3fn": 1, "int8": 1,
    "nvfp4": 0.5625,  # per element: 4 bits + one fp8 scale per 16 (memory-physics.md 2.4)
}
"""Bytes per element of activation / KV dtypes."""

DEFAULT_WEIGHT_DTYPE = "bfloat16"
"""vLLM's ``--dtype auto`` takes the checkpoint's torch_dtype; fp32 checkpoints are served in bf16/fp16."""

# --- weights ----------------------------------------------------------------------------------------------------

VOCAB_PADDING = 64
"""vLLM pads the vocabulary of VocabParallelEmbedding / ParallelLMHead to a multiple of 64 x TP
(``vllm/model_executor/layers/vocab_parallel_embedding.py``, DEFAULT_VOCAB_PADDING_SIZE; memory-physics.md 3.1)."""

GPTQ_G_IDX_BYTES = 4
"""GPTQ stores an int32 ``g_idx`` per input channel (memory-physics.md 3.1 table)."""

QUANT_SCALE_BYTES = 2
"""AWQ/GPTQ group scales are fp16."""

FP32_SCALE_BYTES = 4
"""FP8/INT8 per-channel and per-block scales are fp32 (memory-physics.md 3.1)."""

MXFP4_BYTES_PER_PARAM = 0.53125
"""MXFP4: 4 bits + one E8M0 scale per 32 = 4.25 bits (memory-physics.md 3.1)."""

MXFP4_MOE_PADDING = 256
"""vLLM's MXFP4 fused-MoE kernels pad the per-rank expert intermediate size to a multiple of 256
(``vllm/model_executor/layers/quantization/mxfp4.py``); checked against vllm#33155 (gpt-oss-120b, 64.38 GiB)."""

NVFP4_BYTES_PER_PARAM = 0.5625
"""NVFP4: 4 bits + one FP8 scale per 16 = 4.5 bits (memory-physics.md 3.1)."""

BNB_4BIT_BLOCK = 64
"""bitsandbytes NF4 keeps one fp32 absmax per 64 weights (4.5 bits); double quant stores it as int8 with an fp32
scale per 256 blocks (about 4.127 bits) (memory-physics.md 3.1)."""

# --- KV cache ---------------------------------------------------------------------------------------------------

DEFAULT_BLOCK_SIZE = 16
"""vLLM's default KV block size in tokens (``CacheConfig.block_size``) on CUDA and ROCm."""

MAMBA_BLOCK_ALIGNMENT = 16
"""For hybrid Mamba/GDN models vLLM raises the attention block size, in multiples of this, until one attention page
is at least one Mamba state page ("Setting attention block size to 528...2128 tokens", memory-physics.md 2.4)."""

FP8_DS_MLA_BYTES_PER_TOKEN = 656
"""vLLM ``fp8_ds_mla`` KV layout for DeepSeek MLA: 656 B per token per layer (memory-physics.md 2.4)."""

INDEXER_SCALE_BLOCK = 128
"""DeepSeek-V3.2 indexer keys are fp8 with one fp32 scale per 128 (index_head_dim x (1 + 4/128) B, physics 2.4)."""

# --- vLLM engine policy -----------------------------------------------------------------------------------------

DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
"""``--gpu-memory-utilization`` default; requested = utilization x TOTAL memory (memory-physics.md 2.1)."""

LARGE_GPU_THRESHOLD_BYTES = 70 * GiB
"""``arg_utils.get_batch_defaults``: GPUs with >= 70 GiB (not A100) get larger batch defaults (physics 2.2)."""


@dataclass(frozen=True)
class BatchDefaults:
    max_num_batched_tokens: int
    max_num_seqs: int


BATCH_DEFAULTS_LARGE_GPU = BatchDefaults(max_num_batched_tokens=8192, max_num_seqs=1024)
"""API-server defaults on >= 70 GiB non-A100 GPUs, vLLM >= 0.10 (memory-physics.md 2.2)."""

BATCH_DEFAULTS_SMALL_GPU = BatchDefaults(max_num_batched_tokens=2048, max_num_seqs=256)
"""API-server defaults on smaller GPUs and A100s, vLLM >= 0.10 (memory-physics.md 2.2)."""

BATCH_DEFAULTS_V1_EARLY = BatchDefaults(max_num_batched_tokens=8192, max_num_seqs=256)
"""vLLM 0.8-0.9 V1 API server: 8192 batched tokens, 256 sequences (``_set_default_args_v1``)."""

V0_MIN_BATCHED_TOKENS = 2048
"""vLLM V0 (< 0.8) without chunked prefill profiles max(max_model_len, 2048) tokens with 256 sequences."""
V0_MAX_NUM_SEQS = 256

VERSION_BUCKETS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "<0.17": ((0, 0), (0, 17)),
    "0.17-0.19": ((0, 17), (0, 20)),
    ">=0.20": ((0, 20), (99, 0)),
}
"""vLLM version ranges (lower inclusive, upper exclusive) whose profiling behaviour differs: the sampler warm-up
shrinks at ~0.18 (Triton top-k/top-p) and again at 0.20 (Model Runner V2), memory-physics.md 2.2 and 2.5."""

SAMPLER_BYTES_PER_SEQ_VOCAB: dict[str, float] = _BUILTIN.table("sampler_bytes_per_seq_vocab")
"""c_v: bytes of the sampler warm-up peak per (dummy sequence x vocab entry), by vLLM version bucket. The profile run
samples over max_num_seqs dummy requests with top-k/top-p, sorting the fp32 [N, V] logits (values + int64 indices).
FITTED (data file, by ``python benchmarks/fit.py --write``) on the "fit" half of vme-dev.jsonl (single-GPU CUDA
records, non-torch held at 0.15 GiB): 39.7 (12 records; the physics note measured 38.7 on 6 H100/H200 logs), 17.0 (8
records), 0.0 (1 record: from 0.20 the profiling peak no longer shows in the budget at one GPU)."""

SAMPLER_COEFFICIENT_SOURCE = ("calculator/data/coefficients.json (fitted by benchmarks/fit.py on the fit half of "
                              "vme-dev.jsonl)")

FORWARD_ACTIVATION_BYTES = 2
"""Forward-pass term at T tokens: about 2 B x T x (2h + (n_q + 2 n_kv) d / t + 3 I / t) (physics 3.3)."""

FUSED_MOE_CHUNK_TOKENS = 16384
"""``VLLM_FUSED_MOE_CHUNK_SIZE``: fused-MoE intermediates are chunked at this many tokens (physics 2.2)."""

NON_TORCH_GIB: dict[str, dict[str, dict[int, float]]] = _BUILTIN.table("non_torch_gib")
"""Non-torch memory growth during vLLM start-up (NCCL, custom all-reduce buffers, cuBLAS workspaces), GiB, by version
bucket, platform and GPUs per replica (TP x PP). FITTED (data file, by ``python benchmarks/fit.py --write``) on the
fit half of vme-dev.jsonl as the median of (utilization x total - logged weights - logged KV - c_v x N x V); the
single-GPU CUDA value is the 0.15 GiB prior of memory-physics.md 3.4 (llm-d H100 TP1 0.13). Sizes between table
entries are interpolated on log2(GPUs); a platform or size missing from a bucket falls back to the nearest older
bucket (an assumption the estimate reports)."""

MAX_CUDAGRAPH_CAPTURE_SIZE = 512
"""vLLM's largest default CUDA-graph capture size (``max_cudagraph_capture_size`` = min(2 x max_num_seqs, 512))."""

CUDA_GRAPH_REFERENCE_SIZES = 51
"""Capture sizes at max_num_seqs >= 256 from vLLM 0.11 (1, 2, 4, 8..248 by 8, 256..512 by 16): every record the
pool coefficients were fitted on."""

CUDA_GRAPH_POOL: dict[str, dict[str, dict[str, float]]] = _BUILTIN.table("cuda_graph_pool_gib")
"""CUDA-graph pool per GPU at the reference capture count (GiB; calculator/cuda_graphs.py): base + per_layer x
decoder layers on the rank + an offset per attention backend class (``cuda_graphs.attention_backend``: mla,
mla_sparse, mamba, linear), per version bucket and platform. FITTED (data file, by ``python benchmarks/fit.py
--write``) on the "fit" split of vme-dev.jsonl (release builds): least squares where a bucket has >= 3 records and
several layer counts (<0.17 ROCm n=9, residual median 0.03 GiB; 0.17-0.19 CUDA n=19 of 8 models, 0.035 GiB), else the
nearest older line of the platform times the median ratio logged / line (0.17-0.19 ROCm x1.689 from 1 record; >=0.20
CUDA from 1 record). Before 0.17 on CUDA the log is the pool minus the cache the capture releases
(``CUDA_GRAPH_RELEASE``); there the line is the 0.17-0.19 one, borrowed (``calibration/fit.GRAPH_RELEASE_FITS``).
Each backend offset rests on few models (mla: DeepSeek-R1 and sarvam-105b; mla_sparse: DeepSeek-V3.2; mamba:
Nemotron-3-Nano; linear: Qwen3.5 and Qwen3-Coder-Next), so a new model of a class inherits that class's size.
Held-out error of the logged figure (``python benchmarks/accuracy.py``, 2026-12-04; |logged - calculated| median /
p90, and |%| over |logged| >= 0.25 GiB): CUDA < 0.17 0.094 / 0.244 GiB (62 records; the spread among identical
settings of those records: median 0.02, p90 0.48, max 0.78 GiB), 17.5% / 57.7% over 29 records; CUDA 0.17-0.19
0.061 / 0.407 GiB, 6.4% / 19.7% (37 records); CUDA >= 0.20 0.268 / 1.226 GiB, 16.8% / 53.4% (8 records,
issue-thread consumer GPUs among them); ROCm 0.086 / 2.267 GiB, 1.9% / 42.4% (21 records; the p90 is development
builds). Every held-out record: 9.6% / 46.7% (94 records over 0.25 GiB). Cross-validated by model (5 folds, fit
split, ``benchmarks/fit.py``): mean |error| 0.255 GiB, median 24.5%, where the former model (own < 0.17 line, rho
over the whole forward, one hybrid class) gave 0.309 GiB, 48.4%."""

CUDA_GRAPH_RELEASE: dict[str, dict[str, float]] = _BUILTIN.table("cuda_graph_release")
"""rho, by version bucket and platform (dimensionless; calculator/cuda_graphs.py ``released_bytes``): the allocator
cache the first CUDA-graph capture hands back per byte of the pre-capture warm-up forward's dense part
(``activations.dense_forward_bytes`` at max_num_batched_tokens; the FlashInfer autotune on SM >= 9.0), beside the
exact per-call buffers of the MoE kernel and DeepGEMM's warm-up reserve (``moe_kernels``). FITTED (data file, by
``python benchmarks/fit.py --write``) on the 36 CUDA < 0.17 fit records under the borrowed 0.17-0.19 pool line:
1.580. The H200 probe ``benchmarks/gpu_graph_release.py`` (a bf16 dense stack, one eager forward at 8192 tokens)
released 1.80 GiB against a dense forward of 1.14 GiB for its layer shape (2 B x 8192 x (2 x 5120 + 3 x 5120 + 3 x
16384)): rho 1.58 measured there, 1.580 fitted on the logs. 0 elsewhere: from vLLM 0.17 the logs show no release
(why is not established); fitted on CUDA 0.17-0.19 (0.12 under the former model) it made the held-out error worse
(``GRAPH_RELEASE_FITS``); ROCm builds run neither the FlashInfer autotune nor DeepGEMM."""

CUDA_GRAPH_RELEASE_SINCE = (0, 11)
"""The oldest vLLM whose "Graph capturing took" is taken to include the release of the warm-up's cached blocks: the
oldest version of the records that show it (vme-dev starts at 0.11). Older versions (V0, early V1) are not known to
run a full forward between the profile run's empty_cache and the capture; no release is predicted for them."""

CUDA_GRAPHS_IN_BUDGET_SINCE = (0, 21)
"""``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` is on by default since v0.21.0: graph memory is then subtracted from
the KV budget; before, the pool sits on top of the budget (physics 2.1, vllm-log-formats.md 5)."""

DEFAULT_VLLM_VERSION = (0, 11)
"""Assumed when a profile or the user gives no parseable vLLM version (the most common version in our data)."""

# --- plain transformers engine ----------------------------------------------------------------------------------

CUDA_CONTEXT_BYTES = round(_BUILTIN.table("cuda_context_gib")["cuda"] * GiB)
"""CUDA context per process, 0.3-0.5 GiB with lazy module loading (physics 3.4): a prior of 500 MiB, entry
``cuda_context_gib/cuda`` of the data file (calibratable from plain-transformers profiles). Counted as non-torch
memory by a plain engine; vLLM's budget excludes it (it sits in the baseline snapshot)."""

LOGITS_BYTES = 4
"""fp32 logits of the last token per sequence when sampling (physics 3.3, generic engines)."""

# --- ROCm "Model loading took" (calculator/platform.py) ---------------------------------------------------------

ROCM_PAD_STRIDE_MULTIPLE = 512
"""``_maybe_pad_weight`` pads a fused-MoE weight only when its row stride in bytes is a multiple of 512."""

ROCM_MOE_PAD_BYTES = 256
"""``VLLM_ROCM_MOE_PADDING``: 256 bytes added to each such row, kept (architectures.md section 7)."""

ROCM_LOAD: dict = {**_BUILTIN.table("rocm_load"), "load_growth_gib": _BUILTIN.table("rocm_load_growth_gib")}
"""Fitted terms of the ROCm load figure (calculator/platform.py): FITTED (data file entries ``rocm_load/*`` and
``rocm_load_growth_gib/*``, by ``python benchmarks/fit.py --write``) on the "fit" split of vme-dev.jsonl, MI300X
release builds (10 records), after subtracting the exact terms (MoE row padding, the fp8 fnuz mask): load growth per
GPUs per replica = median over 16-bit dense records (Llama-3.3-70B: TP1 0.17 GiB from 3 records, TP4 0.07 from 1;
sizes in between and above take the nearest smaller); 16-bit expert reserve 0.298 (1 record, Qwen3-VL-30B-A3B TP1; the
held-out Llama-4-Maverick bf16 TP8 record implies 0.31); FP8 MoE layer reserve 0.785 (2 records: DeepSeek-R1-0528
0.62, Llama-4-Maverick FP8 0.95); online-FP8 reserve 0.124 of the 16-bit bytes quantized while loading (1 record,
Ministral-3-14B with --quantization fp8). The dense FP8 checkpoints (Llama-3.3-70B FP8-dynamic) need no coefficient:
mask + growth leave 0.02 GiB. Held-out error (``python benchmarks/accuracy.py``, "platform rocm / holdout", 21
records, 2026-12-04): weights median 0.04% / p90 0.27%, KV pool 0.66% / 2.66% (before these terms, over all 31 MI300X
records: 2.16% / 27.15% and 1.79% / 25.03%)."""
