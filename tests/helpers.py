"""Small builders shared by the model tests."""

from __future__ import annotations

import torch
from torch import Tensor

from aiayn import ModelConfig, Transformer

PAD, BOS, EOS = 0, 2, 3


def tiny_model(**overrides: object) -> Transformer:
    """A small random model in eval mode (dropout off)."""
    config = ModelConfig.tiny(40, 50, **overrides)
    return Transformer(config).eval()


def padded_batch(
    lengths: list[int], vocab: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Random ids >= 4 right-padded to the longest length, and the True = real mask."""
    b, t = len(lengths), max(lengths)
    ids = torch.randint(4, vocab, (b, t), generator=generator)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    return ids.masked_fill(~mask, PAD), mask
