"""Small builders shared by the tests, and the deliberately broken parts some tests need."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from aiayn import ModelConfig, Transformer
from aiayn.data import Batch, Collator

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


class UnshiftedCollator(Collator):
    """A broken `Collator` without the right shift: `tgt_in` = `tgt_out` = y + EOS, so the
    decoder reads the very token it must predict. A model trained on it "learns" by copying,
    which shows that the shift is what makes training honest."""

    def __call__(self, examples: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Batch:
        batch = super().__call__(examples)
        return dataclasses.replace(batch, tgt_in=batch.tgt_out.clone())
