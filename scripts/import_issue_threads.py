"""Turn the vLLM startup-log records of ``issue-threads.jsonl`` into committed native profiles.

Input: ``../shared/data/vllm-startup-logs/issue-threads.jsonl``: logs that people pasted into public GitHub
issues, PRs and blog posts (field meanings in ``../shared/notes/vllm-log-formats.md``).

Output: one native profile per record that names its model AND its GPU (``gpu_name``) or its GPU memory
(``total_gpu_memory_gib``), written to ``profiles/vllm-issue-threads/``. Records lacking both are skipped,
and the script prints which and why.

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
    # The record writes the HF id in parentheses; kept as written (the record does not say "-hf").
    ("vllm-project/vllm#2031", "Llama2-7B (meta-llama/Llama-2-7b)"): "meta-llama/Llama-2-7b",
    # Same PR, same reasoning: the HF id the record states, without an added "-hf".
    ("vllm-project/vllm#2031", "Llama2-70B (meta-llama/Llama-2-70b)"): "meta-llama/Llama-2-70b",
    # Local path only, no organisation anywhere in the record: strip the "(local ...)" decoration, add
    # nothing.
    (
        "vllm-project/vllm#5248",
        "deepseek-coder-6.7b-instruct (local /cm/deepseek-coder-6.7b-instruct/)",
    ): "deepseek-coder-6.7b-instruct",
    # Local path, but the record's notes quote the issue title, which names the HF id
    # "meta-llama/Meta-Llama-3.1-405B-Instruct-FP8".
    (
        "vllm-project/vllm#6746",
        "Meta-Llama-3.1-405B-Instruct-FP8 (local /models/Meta-Llama-3.1-405B-Instruct-FP8)",
    ): "meta-llama/Meta-Llama-3.1-405B-Instruct-FP8",
    # The local path "./Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8" is the HF org/name layout, written out in the
    # record.
    (
        "vllm-project/vllm#34076",
        "Qwen3-Coder-30B-A3B-Instruct-FP8 (local ./Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8)",
    ): "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8",
    # Local path and a --served-model-name without an organisation: strip the decoration, add no org.
    (
        "vllm-project/recipes#12",
        "Qwen3-Coder-480B-A35B-Instruct-FP8 (local /tmp/model/Qwen3-Coder-480B-A35B-Instruct-FP8)",
    ): "Qwen3-Coder-480B-A35B-Instruct-FP8",
    # A local quantized copy with no HF id in the record: the local directory name, as the log prints it.
    (
        "noonghunna/club-3090#295",
        "qwen3.6-27b-autoround-int4 (local ~/.cache/huggingface/qwen3.6-27b-autoround-int4)",
    ): "qwen3.6-27b-autoround-int4",
    # Same local checkpoint as club-3090#295, on a different machine.
    (
        "noonghunna/club-3090#46",
        "qwen3.6-27b-autoround-int4 (local ~/.cache/huggingface/qwen3.6-27b-autoround-int4)",
    ): "qwen3.6-27b-autoround-int4",
    # Local directory name; "Qwen3.6-35B-A3B NVFP4" in the record is a description, not an HF id.
    (
        "noonghunna/club-3090#612",
        "qwen3.6-35b-a3b-nvfp4 (local ~/.cache/huggingface/qwen3.6-35b-a3b-nvfp4; Qwen3.6-35B-A3B NVFP4)",
    ): "qwen3.6-35b-a3b-nvfp4",
    # Local directory name; no HF id in the record.
    (
        "noonghunna/club-3090#594",
        "qwen3.6-27b-fp8 (local ~/.cache/huggingface/qwen3.6-27b-fp8)",
    ): "qwen3.6-27b-fp8",
    # Name from the issue title; the parenthetical is a description. No HF id in the record.
    ("noonghunna/club-3090#1087", "qwen3.8-27b-fp8 (Qwen3.8-27B FP8, per issue title)"): "qwen3.8-27b-fp8",
    # Name from the issue title; no HF id in the record.
    ("noonghunna/club-3090#104", "Qwen3.6-27B-AutoRound (per issue title)"): "Qwen3.6-27B-AutoRound",
    # The record gives the canonical casing "Qwen/..."; the command line used the lower-case alias "qwen/...".
    (
        "QwenLM/Qwen3#16",
        "Qwen/Qwen1.5-7B-Chat-GPTQ-Int4 (as qwen/Qwen1.5-7B-Chat-GPTQ-Int4)",
    ): "Qwen/Qwen1.5-7B-Chat-GPTQ-Int4",
    # Local path; the record writes the HF id "unsloth/QwQ-32B-unsloth-bnb-4bit".
    (
        "vllm-project/vllm#14452",
        "QwQ-32B-unsloth-bnb-4bit (local /models/QwQ-32B-unsloth-bnb-4bit; unsloth/QwQ-32B-unsloth-bnb-4bit)",
    ): "unsloth/QwQ-32B-unsloth-bnb-4bit",
    # The record writes the HF id in parentheses (the script itself loaded a local "DeepSeek-V4-Flash").
    (
        "vllm-project/vllm#44376",
        "DeepSeek-V4-Flash (deepseek-ai/DeepSeek-V4-Flash)",
    ): "deepseek-ai/DeepSeek-V4-Flash",
    # Local path only, no organisation in the record: strip the decoration.
    (
        "syv-ai/qwen38-27b-rtx3090#39",
        "Qwen3.8-27B-W4A16-AutoRound (local /models/Qwen3.8-27B-W4A16-AutoRound)",
    ): "Qwen3.8-27B-W4A16-AutoRound",
    # Name from the issue title. Not an HF repo as written (Qwen publishes -Instruct / -Thinking variants and
    # the record does not say which), so the bare name is kept.
    ("vllm-project/vllm#26612", "Qwen3-VL-30B-A3B (per issue title)"): "Qwen3-VL-30B-A3B",
    # The record writes the HF id in parentheses (the command line used a local "Qwen2.5-32B-Instruct-AWQ").
    (
        "vllm-project/vllm#10360",
        "Qwen2.5-32B-Instruct-AWQ (Qwen/Qwen2.5-32B-Instruct-AWQ)",
    ): "Qwen/Qwen2.5-32B-Instruct-AWQ",
}
"""(record source, raw model string) -> model.id. Raw strings that are already a plain ``org/name`` id (e.g.
"meta-llama/Llama-3.1-8B-Instruct") need no entry and are kept exactly as the record wrote them."""

GPU_NAMES: dict[str, str] = {
    # "(96 GB)" is the reporter's memory note, not part of the device name.
    "NVIDIA GH200 (96 GB)": "NVIDIA GH200",
    # "(95 GiB)" is the memory the record noted, not part of the device name.
    "NVIDIA H20 (95 GiB)": "NVIDIA H20",
    # "(48G)" is the reporter's memory note, not part of the device name.
    "NVIDIA RTX A6000 (48G)": "NVIDIA RTX A6000",
    # "(repo target)" says the GPU is the repository's target machine rather than one the log printed.
    "NVIDIA GeForce RTX 3090 (repo target)": "NVIDIA GeForce RTX 3090",
}
"""Raw gpu_name -> hardware.gpu_name, for names carrying a parenthetical note that is not part of the device
name. Names not listed are kept as written (including the mixed-GPU string of vllm#34076). A cleaned name's
raw form is recorded in source.notes."""

SOURCE = SourceFile(
    name="issue-threads.jsonl",
    folder="vllm-issue-threads",
    schema="log",
    curation=Curation(model_ids=MODEL_IDS, gpu_names=GPU_NAMES),
    script="scripts/import_issue_threads.py",
)

if __name__ == "__main__":
    sys.exit(main(SOURCE))
