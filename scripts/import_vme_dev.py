"""Turn the records of ``vme-dev.jsonl`` into committed native profiles.

Input: ``../shared/data/vllm-startup-logs/vme-dev.jsonl``: 193 records of the public validation set of a vLLM memory
estimator (ashishkamra/vllm-memory-estimator ``test_data/validation_db.json``; H200, B200, MI300X; vLLM 0.11 to 0.20;
TP 1 to 8). Field meanings are in ``../shared/data/README.md``: weights_gib ("Model loading took"),
available_kv_cache_gib, kv_cache_tokens, max_concurrency (for max_concurrency_tokens per request), cuda_graphs_gib,
gpu_total_gib (the torch-visible total per GPU) and the engine settings (runtime_args).

Output: one native profile per record, written to ``profiles/vme-dev/``, its source naming the validation set and the
record's id. Every record names its model and accelerator, so none is skipped today; one that did not would be listed
with the reason.

This file holds only what is particular to this source; the conversion, the derived total, ``--check`` and the README
table are the shared code path in ``record_profiles.py`` (its docstring states the rules).
"""

from __future__ import annotations

import sys

from record_profiles import Curation, SourceFile, main

# Every model string in vme-dev.jsonl is a plain Hugging Face org/name id: no curated model ids are needed.
SOURCE = SourceFile(
    name="vme-dev.jsonl",
    folder="vme-dev",
    schema="vme",
    curation=Curation(),
    script="scripts/import_vme_dev.py",
)

if __name__ == "__main__":
    sys.exit(main(SOURCE))
