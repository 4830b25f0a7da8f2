"""Turn the vLLM startup-log records of ``notebooks-and-docs.jsonl`` into committed native profiles.

Input: ``../shared/data/vllm-startup-logs/notebooks-and-docs.jsonl``: logs printed in public notebooks and docs
(field meanings in ``../shared/notes/vllm-log-formats.md``). Several ran vLLM inside Unsloth, which picks
gpu_memory_utilization itself and enables LoRA; each record's notes say so, and they are carried into the profile's
``source.notes``.

Output: one native profile per record that names its model AND its GPU (``gpu_name``) or its GPU memory
(``total_gpu_memory_gib``), written to ``profiles/vllm-notebooks-and-docs/``. Records lacking both, and records that
repeat a log already imported from another shared file, are skipped; the script prints which and why.

This file holds only the reviewed curation of this source; the conversion, the derived total, ``--check`` and the
README table are the shared code path in ``record_profiles.py`` (its docstring states the rules).
"""

from __future__ import annotations

import sys

from record_profiles import Curation, SourceFile, main

# ----------------------------------------------------------------------------------------------------------
# Curated data. Each entry below was reviewed against the record (its model string, notes and log lines).
# ----------------------------------------------------------------------------------------------------------

MODEL_IDS: dict[tuple[str, str], str] = {
    # The local path "/root/autodl-tmp/Qwen/Qwen3.5-4B" is the HF org/name layout, written out in the record
    # (the same reading as vllm#34076's "./Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8" in issue-threads).
    (
        "datawhalechina/self-llm:models/Qwen3.5/01-Qwen3.5-4B-vLLM 部署调用.md",
        "Qwen3.5-4B (local /root/autodl-tmp/Qwen/Qwen3.5-4B)",
    ): "Qwen/Qwen3.5-4B",
    # Same reading: "/root/autodl-tmp/OpenBMB/MiniCPM5-1B" is the org/name layout.
    (
        "datawhalechina/self-llm:models/minicpm5/01-MiniCPM5-1B-vLLM 部署调用.md",
        "MiniCPM5-1B (local /root/autodl-tmp/OpenBMB/MiniCPM5-1B)",
    ): "OpenBMB/MiniCPM5-1B",
    # Local path without an organisation ("/opt/tiger/test0/Phi-4"): strip the decoration, add nothing.
    (
        "datawhalechina/self-llm:models/phi4/06-Phi-4-GRPO及swanlab可视化.ipynb",
        "Phi-4 (local /opt/tiger/test0/Phi-4)",
    ): "Phi-4",
    # Local path without an organisation: strip the decoration, add nothing.
    (
        "datawhalechina/self-llm:models/DeepSeek-R1-Distill-Qwen/05-DeepSeek-R1-0528-Qwen3-8B-GRPO及swanlab可视化.ipynb",
        "DeepSeek-R1-0528-Qwen3-8B (local /opt/tiger/test0/DeepSeek-R1-0528-Qwen3-8B)",
    ): "DeepSeek-R1-0528-Qwen3-8B",
    # The compose name says NVFP4; the model name is the one the record writes before the parenthesis. No HF id in
    # the record.
    (
        "noonghunna/club-3090#1047",
        "Qwen3.8-27B NVFP4 (club-3090 compose vllm/qwen38-27b-single-nvfp4)",
    ): "Qwen3.8-27B-NVFP4",
    # The parenthetical is the compose file name; no HF id in the record.
    (
        "noonghunna/club-3090#96",
        "Qwen3.6-27B (club-3090 compose vllm-qwen36-27b-dual-nvlink-dflash-noviz, DFlash drafter)",
    ): "Qwen3.6-27B",
}
"""(record source, raw model string) -> model.id. Raw strings that are already a plain ``org/name`` id need no entry
and are kept exactly as the record wrote them."""

GPU_NAMES: dict[str, str] = {
    # "(Colab gpuType metadata)" says where the name came from; it is not part of the device name.
    "NVIDIA A100 (Colab gpuType metadata)": "NVIDIA A100",
    # "(24G)" is the reporter's memory note, not part of the device name.
    "NVIDIA GeForce RTX 4090 D (24G)": "NVIDIA GeForce RTX 4090 D",
}
"""Raw gpu_name -> hardware.gpu_name, for names carrying a note that is not part of the device name. A cleaned name's
raw form is recorded in source.notes."""

KV_CACHE_DTYPES: dict[str, str] = {
    # The ROCm blog's run without --kv-cache-dtype: vLLM's setting is "auto"; "(fp16/bf16)" explains what auto meant.
    "auto (fp16/bf16)": "auto",
}

DUPLICATES: dict[tuple[str, str], str] = {
    # The same run (same source, model, GPU, vLLM 0.24.0 and the same 5.98 GiB / 567,978-token KV lines) is record
    # 23 of issue-threads.jsonl, already profiles/vllm-issue-threads/club-3090-612--qwen3.6-35b-a3b-nvfp4.json.
    (
        "noonghunna/club-3090#612",
        "qwen3.6-35b-a3b-nvfp4 (local ~/.cache/huggingface/qwen3.6-35b-a3b-nvfp4)",
    ): "the same log is already a profile from issue-threads.jsonl "
       "(profiles/vllm-issue-threads/club-3090-612--qwen3.6-35b-a3b-nvfp4.json); a second copy would count it twice",
}

SOURCE = SourceFile(
    name="notebooks-and-docs.jsonl",
    folder="vllm-notebooks-and-docs",
    schema="log",
    curation=Curation(model_ids=MODEL_IDS, gpu_names=GPU_NAMES, kv_cache_dtypes=KV_CACHE_DTYPES,
                      duplicates=DUPLICATES),
    script="scripts/import_notebooks_and_docs.py",
)

if __name__ == "__main__":
    sys.exit(main(SOURCE))
