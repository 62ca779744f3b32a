"""Decoding helpers shared by the decoding grid (decoding.py) and the kernel crossover
(kernels.py): random sources, a step model that never ends a sentence early, and a tight cached
greedy loop.

Fixed-length decoding: EOS is never chosen (its log-prob is -inf) for the first `steps` steps,
so no sentence stops early and every candidate does the same number of steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aiayn.model import Transformer

BOS_ID, EOS_ID = 2, 3  # aiayn.data's special ids
STEPS = 30
BATCH = 64
SRC_LEN = 24


def source_batch(vocab_size: int, batch: int = BATCH, src_len: int = SRC_LEN) -> Tensor:
    """Random source ids without padding (ids >= 4 skip the special ones)."""
    g = torch.Generator().manual_seed(1)
    return torch.randint(4, vocab_size, (batch, src_len), generator=g)


@torch.no_grad()
def greedy_loop(model: Transformer, src: Tensor, steps: int = STEPS) -> Tensor:
    """Our tight cached greedy loop: encode once, one (B, 1) decode per step, argmax.

    Returns:
        The generated ids (B, steps).
    """
    memory = model.encode(src)
    cache = model.init_cache(memory, capacity=steps)
    tokens = torch.full((src.shape[0], 1), BOS_ID, dtype=torch.long, device=src.device)
    out = []
    for _ in range(steps):
        logits, cache = model.decode(tokens, memory, cache)  # (B, 1, V)
        logits = logits[:, -1]
        logits[:, EOS_ID] = float("-inf")
        tokens = logits.argmax(dim=-1, keepdim=True)
        out.append(tokens)
    return torch.cat(out, dim=1)


class NoEosStepper:
    """A step model whose EOS log-prob is -inf for the first `steps` steps.

    Library searches then write exactly `steps` tokens per sentence (max_len = steps + 1); beam
    search's forced EOS at max_len still sees the model's own EOS log-prob.
    """

    def __init__(self, inner: object, steps: int) -> None:
        self.inner = inner
        self.steps = steps
        self.calls = 0

    def step(
        self, tokens: Tensor, cache: object, *, normalize: bool = True
    ) -> tuple[Tensor, object]:
        log_probs, cache = self.inner.step(tokens, cache, normalize=normalize)  # type: ignore[attr-defined]
        self.calls += 1
        if self.calls <= self.steps:
            log_probs[:, EOS_ID] = float("-inf")
        return log_probs, cache
