"""One planned profiling run: what to run, how to name its profile, and the command line that runs it."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_VLLM_COMMAND = ("vllm", "bench", "latency")
"""The engine command of the original profilers (notes/llm-sizer-origin.md 1.5): vLLM's latency benchmark."""


@dataclass(frozen=True)
class RunSpec:
    model: str
    """Hugging Face id, local model directory, or (transformers) a config.json file"""
    engine: str
    """"vllm" or "transformers\""""
    batch_size: int
    input_len: int
    output_len: int
    tensor_parallel_size: int = 1
    engine_args: tuple[str, ...] = ()
    """passed through to the engine verbatim (vLLM flags; for transformers: none)"""
    engine_cmd: tuple[str, ...] | None = None
    """launcher replacing ``vllm bench latency``; the run's flags are appended to it"""
    timeout: float | None = None
    random_weights: bool = False
    dtype: str | None = None
    line: int | None = None
    """campaign file line that asked for this run"""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def gpus(self) -> int:
        return self.tensor_parallel_size

    @property
    def run_id(self) -> str:
        """Stable name of the run (the profile's file stem): same settings, same name, so a campaign can resume."""
        model = self.model
        if model.endswith(".json"):
            model = Path(model).stem if Path(model).name != "config.json" else Path(model).parent.name
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.replace("/", "--")).strip("-") or "model"
        parts = [slug, self.engine, f"tp{self.tensor_parallel_size}", f"bs{self.batch_size}",
                 f"in{self.input_len}", f"out{self.output_len}"]
        if self.random_weights:
            parts.append("random")
        if self.engine_args:
            parts.append(re.sub(r"[^A-Za-z0-9._=-]+", "", "_".join(a.lstrip("-") for a in self.engine_args))[:60])
        return "--".join(parts)

    def command(self, output: Path | None = None) -> list[str]:
        """The child command line."""
        if self.engine == "transformers":
            cmd = [sys.executable, "-m", "pytest_llmsizer.cli", "profile", "transformers", self.model,
                   "--batch-size", str(self.batch_size), "--input-len", str(self.input_len),
                   "--output-len", str(self.output_len)]
            if self.random_weights:
                cmd.append("--random-weights")
            if self.dtype:
                cmd += ["--dtype", self.dtype]
            if output is not None:
                cmd += ["-o", str(output), "--force"]
            return cmd
        base = list(self.engine_cmd) if self.engine_cmd else list(DEFAULT_VLLM_COMMAND)
        cmd = [*base, "--model", self.model, "--tensor-parallel-size", str(self.tensor_parallel_size),
               "--batch-size", str(self.batch_size), "--input-len", str(self.input_len),
               "--output-len", str(self.output_len)]
        if self.dtype:
            cmd += ["--dtype", self.dtype]
        return cmd + list(self.engine_args)

    def describe(self) -> str:
        """One line for --dry-run and the progress display."""
        return (f"{self.engine:<12} {self.model}  tp={self.tensor_parallel_size} bs={self.batch_size} "
                f"in={self.input_len} out={self.output_len}"
                + (" random-weights" if self.random_weights else "")
                + (f"  [{' '.join(self.engine_args)}]" if self.engine_args else ""))

    def shell(self, output: Path | None = None) -> str:
        return shlex.join(self.command(output))
