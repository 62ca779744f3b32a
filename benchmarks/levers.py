"""The levers of issue #6: our small training step with one thing changed at a time.

Run with `python -m benchmarks.run --only levers`: each candidate below is timed interleaved
with "ours" (the trainer's defaults) on the Multi30k batches, and its ratio is its speed-up over
"ours" (below 1 = slower). The baseline nn.Transformer is not part of this case.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from aiayn.data import Batch
from aiayn.model import ModelConfig
from benchmarks.training import OursOptions, ours_step


def without_flush_denormal(run: Callable[[], None]) -> Callable[[], None]:
    """`run` with subnormal floats computed exactly (the process default is to flush them)."""

    def wrapped() -> None:
        torch.set_flush_denormal(False)
        try:
            run()
        finally:
            torch.set_flush_denormal(True)

    return wrapped


def compiled(
    config: ModelConfig, batches: list[Batch], device: torch.device, precision: str
) -> tuple[Callable[[], None], float]:
    """`torch.compile`d step and the seconds its first call (compilation included) took."""
    run = ours_step(config, batches, OursOptions(precision=precision, compile=True), device)
    start = time.perf_counter()
    run()
    return run, time.perf_counter() - start


def candidates(
    config: ModelConfig,
    batches: list[Batch],
    device: torch.device,
    precision: str,
    include_compile: bool = False,
) -> dict[str, Callable[[], None]]:
    """One lever flipped per candidate; "ours" itself is added by the caller."""

    def step(options: OursOptions | None = None, **overrides: object) -> Callable[[], None]:
        options = options or OursOptions(precision=precision)
        return ours_step(config.replace(**overrides), batches, options, device)

    other = "fp32" if precision == "bf16" else "bf16"
    cands = {
        "kernel=explicit": step(attention_kernel="explicit"),
        "nn.Dropout": step(OursOptions(precision=precision, nn_dropout=True)),
        "no output_mask": step(OursOptions(precision=precision, output_mask=False)),
        "Adam not fused": step(OursOptions(precision=precision, fused_adam=False)),
        "no flush_denormal": without_flush_denormal(step()),
        f"precision={other}": step(OursOptions(precision=other)),
        "attention_dropout=0.1": step(attention_dropout=0.1),  # what nn.Transformer does
        "loss=F.cross_entropy": step(OursOptions(precision=precision, torch_loss=True)),
    }
    if include_compile:
        run, seconds = compiled(config, batches, device, precision)
        cands[f"torch.compile ({seconds:.0f} s to compile)"] = run
    return cands
