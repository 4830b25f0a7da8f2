"""Which fused-MoE kernel vLLM runs for a model, the buffers it holds, and whether they outlive the call.

Two figures depend on it:

* the activation peak of the profile run (``activations.vllm_activation_peak``): the kernel's buffers at
  max_num_batched_tokens are part of the forward pass;
* the CUDA-graph figure vLLM logs before 0.17 (``cuda_graphs``): the pre-capture warm-up forward leaves every
  buffer allocated *per call* cached in torch's allocator, and the first capture hands the cache back inside the
  measured window. A buffer taken from a persistent workspace (allocated once in the profile run, never freed) is
  not cached and not handed back. DeepGEMM's own warm-up of fp8 block-quantized experts, which runs before it,
  leaves its buffers cached as well (``deepgemm_warmup_bytes``).

The kernel, read from vLLM's source (0.11.2, 0.13.0, 0.14.1, 0.16.0, 0.17.0 wheels; defaults, no environment
overrides), with M = min(tokens, VLLM_FUSED_MOE_CHUNK_SIZE), K = the experts' input width (hidden size, or the
latent width of LatentMoE), N = w13 rows per rank (2 I_e for SwiGLU experts, I_e for plain ones, / TP unless the
experts are spread by expert parallelism):

* before 0.14, unquantized and fp8 experts (``Fp8MoEMethod``, ModelOpt FP8) call ``fused_experts`` directly; its
  Triton path allocates ``cache13`` (M x top_k x max(N, K)) and ``cache2`` (M x top_k x N/2, or the M x top_k x N
  relu^2 output of plain experts) per call: transient. compressed-tensors FP8 with per-channel or per-tensor
  scales runs ``cutlass_moe_fp8`` on SM 9.0/10.x, a modular kernel whose workspaces are shared persistent buffers
  (0.11: ``FusedMoEModularKernel.shared_buffers``; 0.13: the workspace manager).
* from 0.14 every method builds a modular kernel (``self.kernel`` / ``moe_mk``); ``TritonExperts.workspace_shapes``
  takes M x top_k x max(N_act, K) and M x top_k x max(N, K) (N_act = N/2 for SwiGLU) from the persistent workspace
  manager (``vllm/v1/worker/workspace.py``), and the output reuses the first.
* from 0.16 ``select_fp8_moe_backend`` (``fused_moe/oracle/fp8.py``) tries FlashInfer's CUTLASS MoE before DeepGEMM
  and Triton without being asked: it takes fp8 block-128 weights on SM 9.0 (from 0.17 only under expert parallelism:
  tensor parallelism prefers Triton again) and static per-tensor fp8 (ModelOpt) on SM >= 9.0. Its workspace is
  allocated per call inside FlashInfer (``getWorkspaceDeviceBufferSizes``, FlashInfer 0.6.3): permuted inputs M x
  top_k x K in the input dtype (bf16 for block scales, fp8 for per-tensor), the GLU intermediate M x top_k x 2 I' in
  bf16 (I' for plain experts), fc1 M x top_k x I' and fc2 M x top_k x K in bf16 (I' = I_e per rank): transient. On SM
  10.x vLLM first tries FlashInfer's TRT-LLM kernel for block scales; its workspace is not traced: priced as the
  Triton kernel's buffers, allocated per call like FlashInfer's CUTLASS one. Unquantized experts keep Triton
  (``oracle/unquantized`` needs VLLM_USE_FLASHINFER_MOE_FP16).
* FlashInfer's fp8 MoE also changes the weights: ``prepare_fp8_moe_layer_for_fi`` pads the per-rank expert
  intermediate of per-tensor fp8 experts to a multiple of 16, from 0.17 of 128 for plain (non-gated) experts
  (``flashinfer_expert_padding``; the weights carry it as the ``experts_flashinfer_padding`` kind).
* other formats (AWQ, GPTQ, MXFP4, NVFP4, INT8) run Marlin or format-specific kernels that are not traced here:
  priced as the Triton buffers of the version, and ``MoeKernel.traced`` says so.

Not modelled: ROCm's AITER kernels (off unless VLLM_ROCM_USE_AITER is set); any environment override; checkpoints
of the ``fp8`` format with static per-tensor activation scales, which FlashInfer would also take from 0.16 (their
``activation_scheme`` is not read, so only ModelOpt's static scales are told apart); experts left unquantized in a
quantized checkpoint (the whole model's format is taken); DeepGEMM's warm-up of fp8 block-quantized *linear* layers
(one fp8 input and one bf16 output of max_num_batched_tokens rows for the largest layer, a few hundred MiB, whose
blocks the larger warm-up forward then reuses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pytest_llmsizer.calculator import coefficients as k
from pytest_llmsizer.catalog.arch import ModelArch, MoeSpec, QuantSpec
from pytest_llmsizer.catalog.gpus import cuda_capability

MODULAR_SINCE = (0, 14)
"""vLLM 0.14: every fused-MoE method runs a modular kernel with workspaces from the persistent workspace manager."""

FLASHINFER_FP8_SINCE = (0, 16)
"""vLLM 0.16: ``select_fp8_moe_backend`` picks FlashInfer's CUTLASS MoE for fp8 block-128 (SM 9.0) and static
per-tensor fp8 (SM >= 9.0) without VLLM_USE_FLASHINFER_MOE_FP8."""

TRITON_FOR_BLOCK_TP_SINCE = (0, 17)
"""vLLM 0.17: ``_get_priority_backends`` moves Triton to the front for fp8 block-128 experts on SM 9.0 under tensor
parallelism ("On Hopper for Block Fp8, prefer Triton for TP and FI CUTLASS for EP"; the same in 0.20)."""

FLASHINFER_PLAIN_ALIGNMENT_SINCE = (0, 17)
"""vLLM 0.17: ``prepare_fp8_moe_layer_for_fi`` pads the per-rank expert intermediate of plain (non-gated) experts to
a multiple of 128 for FlashInfer (``min_alignment = 16 if is_gated else 128``); 0.16 padded every layout to 16."""

FLASHINFER_ALIGNMENT = 16
FLASHINFER_PLAIN_ALIGNMENT = 128

DEEPGEMM_BLOCK = 128
"""DeepGEMM's M/K alignment for the contiguous grouped layout (``get_mk_alignment_for_contiguous_layout``) and the
fp8 weight block it runs: [128, 128]."""

KernelName = Literal["triton", "triton-modular", "cutlass-fp8-modular", "flashinfer-cutlass", "flashinfer-trtllm"]


@dataclass(frozen=True)
class MoeKernel:
    """The fused-MoE kernel of one decoder layer and its buffers per rank at a token count (bytes)."""

    name: KernelName
    transient_bytes: float
    """Allocated per call: freed after each layer, left cached in torch's allocator after a forward."""
    persistent_bytes: float
    """Taken from a workspace that stays allocated from the profile run on."""
    traced: bool
    """False where the format's own kernel was not read and its buffers are priced as Triton's."""

    @property
    def total_bytes(self) -> float:
        return self.transient_bytes + self.persistent_bytes


def moe_layers(arch: ModelArch) -> MoeSpec | None:
    """The MoE spec when some decoder layer runs routed experts, else None."""
    return arch.moe if "moe" in arch.layer_mlp else None


def _rows(moe: MoeSpec, tp: int, expert_parallel: bool) -> tuple[float, float]:
    """(N, I'): w13 rows and expert intermediate width per rank (expert parallelism keeps whole experts)."""
    split = 1 if expert_parallel else tp
    width = moe.expert_intermediate_size / split
    return (2 if moe.gated else 1) * width, width


def _fp8_block_128(quant: QuantSpec | None) -> bool:
    return (quant is not None and quant.method == "fp8" and quant.fp8_scaling == "block"
            and quant.weight_block_size == (DEEPGEMM_BLOCK, DEEPGEMM_BLOCK))


def _deepgemm_capable(sm: tuple[int, int] | None) -> bool:
    """SM 9.0 or 10.x: where DeepGEMM runs (``is_deep_gemm_supported``) and where FlashInfer's fp8 block-scale MoE
    does (CUTLASS on 9.0, TRT-LLM on 10.x)."""
    return sm is not None and (sm == (9, 0) or (10, 0) <= sm < (11, 0))


def _flashinfer_fp8(arch: ModelArch, *, version: tuple[int, int], platform: str, sm: tuple[int, int] | None,
                    expert_parallel: bool) -> KernelName | None:
    """The FlashInfer kernel vLLM's fp8 oracle picks without being asked (``select_fp8_moe_backend``), or None:
    fp8 block-128 experts on SM 9.0 (CUTLASS; from 0.17 only under expert parallelism) or SM 10.x (TRT-LLM), and
    ModelOpt's static per-tensor fp8 on SM >= 9.0 (CUTLASS), from 0.16."""
    quant = arch.quantization
    if (version < FLASHINFER_FP8_SINCE or platform != "cuda" or sm is None or sm < (9, 0) or quant is None
            or quant.method != "fp8"):
        return None
    if _fp8_block_128(quant):
        if (10, 0) <= sm < (11, 0):
            return "flashinfer-trtllm"
        tensor_parallel_prefers_triton = not expert_parallel and version >= TRITON_FOR_BLOCK_TP_SINCE
        return "flashinfer-cutlass" if sm == (9, 0) and not tensor_parallel_prefers_triton else None
    return "flashinfer-cutlass" if quant.source_method == "modelopt" else None


def _flashinfer_padded(inter: float, gated: bool, version: tuple[int, int]) -> float:
    """The per-rank expert intermediate after ``align_fp8_moe_weights_for_fi`` (per-tensor fp8 only)."""
    align = FLASHINFER_PLAIN_ALIGNMENT if not gated and version >= FLASHINFER_PLAIN_ALIGNMENT_SINCE \
        else FLASHINFER_ALIGNMENT
    return -(-inter // align) * align


def flashinfer_expert_padding(arch: ModelArch, tp: int, *, version: tuple[int, int], platform: str,
                              compute_capability: str | None, expert_parallel: bool = False) -> float:
    """Factor by which vLLM pads the routed-expert weights of per-tensor fp8 checkpoints that FlashInfer's MoE runs
    (``prepare_fp8_moe_layer_for_fi``): the per-rank intermediate is rounded up to the kernel's alignment, so w13
    and w2 grow alike. Nemotron-3-Nano FP8 (plain experts, 1856 wide): no padding on 0.16 (a multiple of 16),
    1856 -> 1920 from 0.17, +0.94 GiB, where vme-dev logs 30.52 GiB on 0.13-0.16 and 31.40 from 0.18. 1.0 where no
    padding applies."""
    moe = moe_layers(arch)
    sm = cuda_capability(compute_capability) if compute_capability else (9, 0)
    if moe is None or _fp8_block_128(arch.quantization) or _flashinfer_fp8(
            arch, version=version, platform=platform, sm=sm, expert_parallel=expert_parallel) is None:
        return 1.0
    _, inter = _rows(moe, tp, expert_parallel)
    return _flashinfer_padded(inter, moe.gated, version) / inter


def moe_kernel(arch: ModelArch, tokens: int, tp: int, act_bytes: float, *, version: tuple[int, int],
               platform: str, compute_capability: str | None, expert_parallel: bool = False) -> MoeKernel | None:
    """The kernel and its buffers for ``tokens`` tokens on one rank, None for a model without routed experts.
    ``compute_capability`` is the catalog's (None: not a catalog GPU, taken to be SM 9.0 like every NVIDIA record)."""
    moe = moe_layers(arch)
    if moe is None:
        return None
    m = min(tokens, k.FUSED_MOE_CHUNK_TOKENS)
    rows = m * moe.experts_per_token
    n, inter = _rows(moe, tp, expert_parallel)
    width = moe.latent_size or arch.hidden_size
    quant = arch.quantization
    sm = cuda_capability(compute_capability) if compute_capability else (9, 0)
    cuda_sm90 = platform == "cuda" and sm is not None and sm >= (9, 0)
    traced = quant is None or quant.method == "fp8"

    flashinfer = _flashinfer_fp8(arch, version=version, platform=platform, sm=sm, expert_parallel=expert_parallel)
    if flashinfer == "flashinfer-trtllm":
        n_act = n / 2 if moe.gated else n  # TRT-LLM kernel: not traced, priced as Triton's buffers, per call
        return MoeKernel("flashinfer-trtllm", act_bytes * rows * (max(n_act, width) + max(n, width)), 0.0, False)
    if flashinfer == "flashinfer-cutlass":
        block = _fp8_block_128(quant)
        inter = inter if block else _flashinfer_padded(inter, moe.gated, version)
        input_bytes = 2 if block else 1  # block scales quantize inside the kernel; per-tensor arrives fp8
        glu = (2 if moe.gated else 1) * inter * 2
        workspace = rows * (width * input_bytes + glu + inter * input_bytes + width * 2)
        return MoeKernel("flashinfer-cutlass", workspace, act_bytes * m * width, True)
    if version >= MODULAR_SINCE:
        n_act = n / 2 if moe.gated else n
        return MoeKernel("triton-modular", 0.0, act_bytes * rows * (max(n_act, width) + max(n, width)), traced)
    if (quant is not None and quant.method == "fp8" and quant.source_method == "compressed-tensors"
            and quant.fp8_scaling in ("channel", "tensor") and cuda_sm90):
        return MoeKernel("cutlass-fp8-modular", 0.0,
                         act_bytes * (rows * (max(n, width) + max(n / 2, width)) + m * width), True)
    second = n / 2 if moe.gated else n
    return MoeKernel("triton", act_bytes * rows * (max(n, width) + second), 0.0, traced)


def deepgemm_warmup_bytes(arch: ModelArch, tokens: int, tp: int, *, platform: str, compute_capability: str | None,
                          expert_parallel: bool = False) -> int:
    """What DeepGEMM's warm-up of the grouped expert GEMMs leaves reserved in torch's allocator (bytes per rank).

    ``kernel_warmup()`` runs ``deep_gemm_warmup`` before the FlashInfer autotune when DeepGEMM is installed (vLLM's
    CUDA images ship it; ``is_deep_gemm_supported``: SM 9.0 or 10.x). For experts of a non-modular method with fp8
    block-128 weights (``_fused_moe_grouped_gemm_may_use_deep_gemm`` answers True for every such layer, whichever
    kernel then runs them) it allocates, for w13 then w2, an fp8 input of MAX_M x k, its fp32 scales (k / 128 per
    row) and a bf16 output of MAX_M x n, MAX_M = round_up(M x top_k + E_local x 127, 128)
    (``compute_aligned_M``), M = min(tokens, VLLM_FUSED_MOE_CHUNK_SIZE), and frees them. The w2 buffers reuse
    the w13 blocks where they fit (best fit, as torch's allocator splits a cached block); what does not fit is
    reserved anew. 0 where it does not run."""
    moe = moe_layers(arch)
    quant = arch.quantization
    sm = cuda_capability(compute_capability) if compute_capability else (9, 0)
    if moe is None or not _fp8_block_128(quant) or platform != "cuda" or not _deepgemm_capable(sm):
        return 0
    m = min(tokens, k.FUSED_MOE_CHUNK_TOKENS)
    local_experts = moe.num_experts // (tp if expert_parallel else 1)
    max_m = -(-(m * moe.experts_per_token + local_experts * (DEEPGEMM_BLOCK - 1)) // DEEPGEMM_BLOCK) * DEEPGEMM_BLOCK
    n, inter = _rows(moe, tp, expert_parallel)
    width = moe.latent_size or arch.hidden_size
    reserved, cached = 0, list[int]()
    for out_cols, in_cols in ((int(n), width), (width, int(inter))):
        sizes = [max_m * in_cols, max_m * (in_cols // DEEPGEMM_BLOCK) * 4, max_m * out_cols * 2]
        for size in sizes:
            fits = [b for b in cached if b >= size]
            if fits:
                block = min(fits)
                cached.remove(block)
                if block - size > 0:
                    cached.append(block - size)
            else:
                reserved += size
        cached.extend(sizes)
    return reserved
