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


@dataclass(frozen=True)
class Spread:
    """A figure measured once per round: its median and its range over the rounds."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"median": self.median, "min": self.low, "max": self.high, "rounds": self.values}

    def text(self, fmt: str = "{:.2f}", unit: str = "x") -> str:
        """E.g. "1.21x (1.15-1.26)": the median, then the lowest and highest round."""
        return f"{fmt.format(self.median)}{unit} ({fmt.format(self.low)}-{fmt.format(self.high)})"


def paired_ratios(slow: Samples, fast: Samples) -> Spread:
    """Per round, slow / fast: how many times faster `fast` ran in the same round."""
    return Spread([s / f for s, f in zip(slow.seconds, fast.seconds, strict=True)])


def paired_ratio(slow: Samples, fast: Samples) -> float:
    """Median over rounds of slow / fast (see `paired_ratios`)."""
    return paired_ratios(slow, fast).median


# Square sizes tried for the matmul peak: the largest that fit a device's memory comfortably.
# Small ones understate a CPU's peak (the blocking of MKL/oneDNN pays off only from ~3000 up).
PEAK_SIZES = {"cpu": (2048, 3072, 4096), "cuda": (8192, 12288, 16384)}


class MatmulPeak:
    """A large square `torch.mm` of one dtype: the machine's matmul peak, timed as a candidate.

    Timing it inside the same rounds as a training step gives a peak measured under the same
    conditions as that step, for MFU. `saturating` picks the size that runs fastest.
    """

    def __init__(self, dtype: torch.dtype, device: torch.device, size: int = 2048) -> None:
        g = torch.Generator().manual_seed(0)
        self.a = torch.randn(size, size, generator=g).to(device, dtype)
        self.b = torch.randn(size, size, generator=g).to(device, dtype)
        self.size = size
        self.dtype = dtype
        self.device = device
        self.flops = 2.0 * size**3

    def __call__(self) -> None:
        torch.mm(self.a, self.b)

    def flops_per_second(self, samples: Samples) -> list[float]:
        return [self.flops / s for s in samples.seconds]

    def describe(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        tf32 = ""
        if self.device.type == "cuda" and self.dtype == torch.float32:
            tf32 = ", TF32 " + ("on" if torch.backends.cuda.matmul.allow_tf32 else "off")
        return f"torch.mm {self.size}^3, {dtype}{tf32}"

    @classmethod
    def saturating(
        cls,
        dtype: torch.dtype,
        device: torch.device,
        sizes: tuple[int, ...] | None = None,
        tries: int = 2,
        synchronize: Callable[[], None] = lambda: None,
    ) -> MatmulPeak:
        """The size (of `sizes`, default `PEAK_SIZES`) whose matmul reaches the most FLOP/s.

        Each size is warmed up once, then timed `tries` times; its best time counts.
        """
        best: tuple[float, MatmulPeak] | None = None
        for size in sizes or PEAK_SIZES.get(device.type, PEAK_SIZES["cpu"]):
            peak = cls(dtype, device, size)
            peak()
            synchronize()
            seconds = float("inf")
            for _ in range(tries):
                start = time.perf_counter()
                peak()
                synchronize()
                seconds = min(seconds, time.perf_counter() - start)
            rate = peak.flops / seconds
            if best is None or rate > best[0]:
                best = (rate, peak)
        assert best is not None
        return best[1]
