"""Read a vLLM startup log: the facts it states (``parse_vllm_log``) and a native profile (``profile_from_log``).

Pure: both functions take the log text and return objects; nothing here reads or writes files.

The formats are those of ``shared/notes/vllm-log-formats.md``:

* engine configuration: ``Initializing an LLM engine [(vX)] with config: ...`` / ``Initializing a V0|V1 LLM engine
  (vX) with config: ...``, ``non-default args: {...}``, ``args: Namespace(...)``, ``vLLM API server version X``;
* weights: ``Loading model weights took X MB|GB``, ``Model loading took X GB|GiB [memory] and S seconds``. vLLM's
  "GB" on these lines has always meant bytes / 2**30 (GiB); the MB preview meant bytes / 2**20 (MiB);
* memory profiling: the one-line ~0.6.4 ``Memory profiling results: total_gpu_memory=... peak_torch_memory=...``
  (``peak_torch_memory`` is weights + activation peak and is kept as such, never split), the multi-line table of
  PR #10511, the three V0 ``worker.py`` lines, V1 ``Available KV cache memory: X GiB`` and the V1 post-startup
  ``Free memory on device (F/T GiB) ... Actual usage is ...`` summary;
* KV capacity: ``# GPU blocks`` / ``# CUDA blocks`` / ``# cuda blocks`` (with or without CPU blocks, and with the
  leading ``#`` lost in a paste), ``GPU KV cache size: N tokens``, ``Maximum concurrency for L tokens per request:
  Xx``, the V0 and V1 "max seq len" errors and ``No available memory for the cache blocks``;
* CUDA graphs: ``Graph capturing finished in S secs[, took X GiB]``, ``Estimated CUDA graph memory``, ``Profiling
  CUDA graph memory``, ``CUDA graph pool memory: A GiB (actual), E GiB (estimated)``, the 1~3 GiB warning and the
  opt-in / default-on profiling notices (which state the current ``--gpu-memory-utilization``);
* third-party: the fork line ``... The engine can allocate N GPU blocks, M CPU blocks on PP Rank p TP Rank t.`` and
  Unsloth's ``vLLM's KV Cache can use up to X GB`` (kept as Unsloth's estimate, never as the KV cache).

Lines starting with ``#`` are comments (fixture headers, shell prompts) and are ignored, except a bare vLLM block
count line (``# GPU blocks: N, # CPU blocks: M``) whose timestamp prefix was stripped in a paste.

Ranks: a line's rank comes from its process prefix: ``(VllmWorker rank=N pid=..)``, ``(Worker_TPn pid=..)``,
``(Worker_PPp_TPt ..)``, ``[rankN]:``, or ``TP Rank N`` in the line. ``(VllmWorkerProcess pid=..)`` and
``(RayWorkerWrapper pid=..)`` workers do not print their rank; they are taken in order of first appearance, after the
main process (the V0 driver worker, rank 0). Per-rank lists are in rank order: the main process, then ranks the
log numbers, then unnumbered workers by appearance.
"""

from pytest_llmsizer.profile.vllm_log.build import profile_from_log
from pytest_llmsizer.profile.vllm_log.facts import Conflict, Fact, MemoryFact, Rank, VllmLogFacts
from pytest_llmsizer.profile.vllm_log.parse import parse_vllm_log

__all__ = [
    "Conflict",
    "Fact",
    "MemoryFact",
    "Rank",
    "VllmLogFacts",
    "parse_vllm_log",
    "profile_from_log",
]
