"""Does the first CUDA-graph capture release blocks that the caching allocator holds from an earlier eager pass?

Why: before vLLM 0.17 on NVIDIA, the logged "Graph capturing finished in S secs, took X GiB" is centred on zero and
often negative. vLLM measures it as start_free - end_free around capture_model(), and torch.cuda.graph() calls
torch.cuda.empty_cache() on entry (vLLM patches that out for every piece but the first of each forward). Whatever
the allocator held cached when start_free was read (the kernel warm-up's dummy forward at max_num_batched_tokens:
FlashInfer autotune on SM >= 90, DeepGEMM warm-up) is handed back to the device during the capture, so the log
reports pool - released cache. This probe reproduces that order on one GPU with random weights:

1. (dirty variants) one eager forward at TOKENS tokens, its blocks left cached;
2. start_free = torch.cuda.mem_get_info();
3. graphs for vLLM's 51 default sizes (512 .. 1), largest first, into one shared pool, one eager warm-up per size
   (cudagraph_num_of_warmups = 1), empty_cache/gc.collect patched out for every capture but the first;
4. end_free; took = start_free - end_free.

    python benchmarks/gpu_graph_release.py VARIANT LAYERS HIDDEN INTERMEDIATE TOKENS

VARIANT: ``clean`` (nothing extra cached), ``dirty`` (step 1 first), ``dirty_nocache_release`` (step 1, and
empty_cache patched out for every capture). Prints one JSON line. Needs a CUDA GPU: run it through the device tool.

Measured on one NVIDIA H200, torch 2.11.0+cu130, 2026-12-04 (the device tool; layers, hidden 5120, intermediate
16384, bf16; "cached" = reserved - allocated when start_free was read, which includes ~0.5-0.8 GiB of segments the
allocator cannot release because live weights share them):

    variant                 layers  tokens  cached GiB  took GiB
    clean                   40      -       0.78        +0.40
    dirty                   40      8192    2.48        -1.40
    dirty_nocache_release   40      8192    2.48        +0.34
    dirty                   40      2048    0.94        +0.15
    clean                   20      -       0.54        +0.37
    dirty                   20      8192    2.24        -1.43

clean - dirty = 1.80 GiB (40 layers) and 1.80 GiB (20 layers) against 1.70 GiB of releasable cache: the capture
hands back what the eager pass left cached, and the pool itself (0.34-0.40 GiB) is untouched by it.
"""

from __future__ import annotations

import gc
import json
import sys
from unittest.mock import patch

import torch

SIZES = sorted([1, 2, 4, *range(8, 256, 8), *range(256, 513, 16)], reverse=True)


def main(argv: list[str]) -> int:
    if not torch.cuda.is_available():
        print("gpu_graph_release: needs a CUDA GPU (run it through the device tool)", file=sys.stderr)
        return 2
    variant = argv[0]
    layers, h, inter, tokens = (int(a) for a in argv[1:5])
    dev, dt = "cuda", torch.bfloat16
    torch.manual_seed(0)
    weights = [(torch.randn(h, 3 * h, device=dev, dtype=dt) * 0.02, torch.randn(h, h, device=dev, dtype=dt) * 0.02,
                torch.randn(h, 2 * inter, device=dev, dtype=dt) * 0.02,
                torch.randn(inter, h, device=dev, dtype=dt) * 0.02)
               for _ in range(layers)]

    def forward(x: torch.Tensor) -> torch.Tensor:
        for wqkv, wo, wgu, wd in weights:
            qkv = x @ wqkv
            x = x + (qkv[:, :h] * torch.sigmoid(qkv[:, h:2 * h])) @ wo
            gu = x @ wgu
            x = x + (torch.nn.functional.silu(gu[:, :inter]) * gu[:, inter:]) @ wd
        return x

    def snap() -> dict[str, float]:
        free, _ = torch.cuda.mem_get_info()
        return {"free_gib": free / 2**30, "reserved_gib": torch.cuda.memory_reserved() / 2**30,
                "allocated_gib": torch.cuda.memory_allocated() / 2**30}

    out: dict[str, object] = {"variant": variant, "torch": torch.__version__, "layers": layers, "h": h,
                              "inter": inter, "T": tokens}
    torch.cuda.synchronize()
    gc.collect()
    torch.cuda.empty_cache()
    with torch.inference_mode():
        if variant.startswith("dirty"):
            y = forward(torch.randn(tokens, h, device=dev, dtype=dt))
            torch.cuda.synchronize()
            del y
        before = snap()
        start_free = torch.cuda.mem_get_info()[0]
        pool = torch.cuda.graph_pool_handle()
        graphs = []
        inputs = torch.zeros(max(SIZES), h, device=dev, dtype=dt)
        for i, n in enumerate(SIZES):
            forward(inputs[:n])  # eager warm-up
            quiet = i > 0 or variant == "dirty_nocache_release"
            patches = ([patch("gc.collect", lambda: None), patch("torch.cuda.empty_cache", lambda: None)]
                       if quiet else [])
            for p in patches:
                p.start()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=pool):
                o = forward(inputs[:n])
            for p in patches:
                p.stop()
            graphs.append((g, o))
        torch.cuda.synchronize()
        end_free = torch.cuda.mem_get_info()[0]
        after = snap()
    out |= {"cached_before_gib": before["reserved_gib"] - before["allocated_gib"], "graphs": len(SIZES),
            "took_gib": (start_free - end_free) / 2**30, "before": before, "after": after}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
