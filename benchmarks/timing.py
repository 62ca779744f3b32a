"""Interleaved timing: every candidate runs once per round (A B A B ...), after warm-up.

This machine's speed drifts a lot (a shared host: for seconds at a time the process gets one
core instead of two), so candidates are never timed in separate blocks. Each round times every
candidate back to back; figures are medians over rounds, and ratios are medians of the per-round
ratios (paired), which cancel most of the drift.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Samples:
    """Wall-clock seconds of one candidate, one per round."""

    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def interleaved(
    candidates: dict[str, Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 1,
    synchronize: Callable[[], None] = lambda: None,
) -> dict[str, Samples]:
    """Time each candidate `repeats` times, interleaved, after `warmup` untimed rounds.

    `synchronize` runs before the clock stops (e.g. `torch.cuda.synchronize`).
    """
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    synchronize()
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            synchronize()
            seconds[name].append(time.perf_counter() - start)
    return {name: Samples(s) for name, s in seconds.items()}


def paired_ratio(slow: Samples, fast: Samples) -> float:
    """Median over rounds of slow / fast: how many times faster `fast` ran in the same round."""
    return statistics.median(s / f for s, f in zip(slow.seconds, fast.seconds, strict=True))


class MatmulPeak:
    """A large square `torch.mm` of one dtype: the machine's matmul peak, timed as a candidate.

    Timing it inside the same rounds as a training step gives a peak measured under the same
    conditions as that step, for MFU.
    """

    def __init__(
        self, dtype: torch.dtype, device: torch.device, size: int = 2048, calls: int = 2
    ) -> None:
        g = torch.Generator().manual_seed(0)
        self.a = torch.randn(size, size, generator=g).to(device, dtype)
        self.b = torch.randn(size, size, generator=g).to(device, dtype)
        self.calls = calls
        self.flops = 2.0 * size**3 * calls

    def __call__(self) -> None:
        for _ in range(self.calls):
            torch.mm(self.a, self.b)

    def flops_per_second(self, samples: Samples) -> list[float]:
        return [self.flops / s for s in samples.seconds]
