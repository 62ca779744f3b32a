"""Attention kernel crossover on this machine: SDPA vs the explicit kernel, in the model.

    python -m benchmarks.kernels [--rounds 5]

Two tables: milliseconds per cached greedy step of the `small` model (one query per row, the
case "auto" may send to the explicit kernel) by batch and source length, and milliseconds per
attention call forward + backward at training shapes. Interleaved rounds, minimum per kernel
(the least disturbed run: these are tiny operations). `AUTO_EXPLICIT_MAX_KEYS` in
src/aiayn/model/fast.py is set from them.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor

from aiayn.model import ModelConfig, Transformer, explicit_attention, sdpa_attention
from aiayn.model.masks import key_mask
from benchmarks.inference import greedy_loop

KERNELS = ("sdpa", "explicit")
DECODE_SHAPES = ((1, 8, 8), (1, 24, 30), (8, 24, 30), (64, 16, 16), (64, 24, 30), (256, 24, 30))
TRAIN_SHAPES = ((128, 13), (128, 21), (128, 32), (128, 47), (32, 128))


def decode_table(rounds: int) -> list[str]:
    torch.manual_seed(0)
    model = Transformer(ModelConfig.small(8000, 8000)).eval()
    lines = ["cached greedy step, small: ms per step (batch, source, steps)"]
    for batch, src_len, steps in DECODE_SHAPES:
        src = torch.randint(4, 8000, (batch, src_len))
        best = dict.fromkeys(KERNELS, float("inf"))
        for _ in range(rounds):
            for kernel in KERNELS:
                with model.use_kernel(kernel):
                    start = time.perf_counter()
                    greedy_loop(model, src, steps)
                    best[kernel] = min(best[kernel], (time.perf_counter() - start) / steps)
        lines.append(
            f"  B{batch:<4} S{src_len:<4} {steps:>3} steps: sdpa {best['sdpa'] * 1e3:6.2f}  "
            f"explicit {best['explicit'] * 1e3:6.2f}  explicit/sdpa speed "
            f"{best['sdpa'] / best['explicit']:.2f}"
        )
    return lines


def attention_step(kernel: str, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> None:
    """One attention call, forward and backward."""
    if kernel == "sdpa":
        out = sdpa_attention(q, k, v, mask)
    else:
        out, _ = explicit_attention(q, k, v, mask)
    out.sum().backward()


def train_table(rounds: int) -> list[str]:
    lines = ["self-attention forward + backward, 4 heads of 64: ms per call (batch, length)"]
    g = torch.Generator().manual_seed(0)
    for batch, length in TRAIN_SHAPES:
        q, k, v = (
            torch.randn(batch, 4, length, 64, generator=g, requires_grad=True) for _ in range(3)
        )
        real = torch.full((batch,), length)
        real[::2] -= 3  # some padding
        mask = key_mask(torch.arange(length)[None, :] < real[:, None])

        best = dict.fromkeys(KERNELS, float("inf"))
        for _ in range(rounds * 2):
            for kernel in KERNELS:
                start = time.perf_counter()
                attention_step(kernel, q, k, v, mask)
                best[kernel] = min(best[kernel], time.perf_counter() - start)
        lines.append(
            f"  B{batch:<4} T{length:<4}: sdpa {best['sdpa'] * 1e3:6.2f}  explicit "
            f"{best['explicit'] * 1e3:6.2f}  explicit/sdpa speed "
            f"{best['sdpa'] / best['explicit']:.2f}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for line in decode_table(args.rounds) + train_table(args.rounds):
        print(line, flush=True)


if __name__ == "__main__":
    main()
