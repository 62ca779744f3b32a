"""The one interface between search algorithms and a model: a step function and a cache.

Search (greedy, beam) never sees a `Transformer`. It sees a `StepModel` that turns the last
token of every row into log-probabilities for the next one, and an opaque `Cache` of whatever the
model remembers about each row (for the Transformer: encoder output, self- and cross-attention
keys/values). The only thing search does to a cache is pick rows: expand a sentence's row to k
rows for k beams, follow the beams that survive a step, and drop sentences that are done.
Keeping the interface this small lets tests drive the search with a scripted fake model
(tests/test_search.py), as fairseq's `search` and OpenNMT's `DecodeStrategy` do.

Tokens and indices are created by the search on the CPU for the first step and on the device of
the returned log-probs afterwards; implementations move them where they need them (`.to` is free
when they are already there).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class Cache(Protocol):
    """Per-row state a `StepModel` carries between steps; rows are (sentence x beam)."""

    @property
    def batch_size(self) -> int:
        """How many rows the cache holds."""
        ...

    def reorder(self, indices: Tensor) -> Cache:
        """Select, repeat or drop rows: row i of the result is row `indices[i]` of this cache.

        After `expand_beams(k)`, search keeps the rows in blocks of k per sentence: each block
        of k consecutive indices comes from one sentence, and the sentences keep their order
        (finished ones are dropped), so a cache may keep per-sentence state once per sentence.

        Args:
            indices: LongTensor of old row numbers, (B_new,).

        Returns:
            A cache with B_new rows. This one may be consumed: use the returned cache.
        """
        ...

    def expand_beams(self, k: int) -> Cache:
        """Each row becomes k consecutive rows, the beams of its sentence (beam search, once,
        after its first step).

        Returns:
            A cache with k times the rows; equal to `reorder` with each row number repeated k
            times, except that what depends on the sentence alone need not be copied.
        """
        ...


class StepModel(Protocol):
    """A model advanced one target token at a time."""

    def step(self, tokens: Tensor, cache: Cache, *, normalize: bool = True) -> tuple[Tensor, Cache]:
        """Feed each row's latest token; get each row's next-token distribution.

        Args:
            tokens: the newest token of every row (BOS at the first step).
            cache: the state of every row before `tokens`.
            normalize: False allows scores that are log-probabilities up to a constant per
                row (e.g. the logits, whose log_softmax they are), for a search that only
                ranks the tokens of a row (greedy's argmax) and so can skip normalising over
                the vocabulary. Log-probabilities themselves are always allowed.

        Returns:
            Log-probabilities of the next token (or scores, see `normalize`), and the cache
            extended by `tokens`.

        Shape:
            tokens: (B, 1) long -> log_probs: (B, V) float
        """
        ...


def max_len_per_sentence(max_len: Tensor | int, batch_size: int) -> Tensor:
    """Validate a maximum output length and give one per sentence.

    Args:
        max_len: one limit for all sentences, or one per sentence. It counts the EOS, so a
            sentence gets at most `max_len - 1` real tokens.
        batch_size: the number of sentences.

    Returns:
        LongTensor (B,) on the CPU.

    Raises:
        ValueError: if a limit is below 1 or the shape is not (B,).
    """
    if isinstance(max_len, int):
        lengths = torch.full((batch_size,), max_len, dtype=torch.long)
    else:
        lengths = torch.as_tensor(max_len).detach().to(device="cpu", dtype=torch.long)
        if lengths.shape != (batch_size,):
            raise ValueError(
                f"max_len must be an int or have shape ({batch_size},) (one per sentence), "
                f"got shape {tuple(lengths.shape)}"
            )
    if batch_size and int(lengths.min()) < 1:
        raise ValueError(f"max_len counts the EOS, so it must be >= 1, got {lengths.tolist()}")
    return lengths
