"""Cleaning a parallel corpus before training, and carving out a validation slice."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiayn.data.errors import DataError
from aiayn.data.text_files import Pair


def len_in_whitespace_tokens(text: str) -> int:
    """Count whitespace-separated words: the default length for filtering raw text.

    Args:
        text: A sentence.

    Returns:
        The number of whitespace-separated words in ``text``.
    """
    return len(text.split())


@dataclass(frozen=True)
class FilterStats:
    """What ``clean_pairs`` kept and dropped.

    Attributes:
        kept: Pairs kept.
        empty: Pairs dropped because one side (or both) was empty after stripping.
        too_long: Pairs dropped because one side was longer than ``max_len``.
    """

    kept: int
    empty: int
    too_long: int

    @property
    def total(self) -> int:
        """The number of pairs looked at."""
        return self.kept + self.empty + self.too_long

    def __str__(self) -> str:
        return (
            f"kept {self.kept} of {self.total} pairs "
            f"(dropped {self.empty} with an empty side, {self.too_long} too long)"
        )


def clean_pairs(
    pairs: Iterable[Pair],
    max_len: int | None = None,
    length_fn: Callable[[str], int] = len_in_whitespace_tokens,
) -> tuple[list[Pair], FilterStats]:
    """Strip surrounding whitespace and drop pairs that would hurt training.

    Whitespace (including a Windows ``\\r``) at either end of a sentence carries no meaning
    and would cost tokens, so it is removed. A pair with an empty side teaches the model
    nothing useful (and an empty source leaves attention nothing to attend to), so it is
    dropped. Over-long pairs are dropped because attention costs grow with the square of
    the length and a few outliers would dominate the memory of their batch.

    Args:
        pairs: (source, target) pairs of raw text.
        max_len: Drop pairs where either side is longer than this; None keeps all lengths.
        length_fn: How to measure a sentence's length (default: whitespace-separated words;
            pass e.g. ``lambda s: len(tokenizer.encode(s))`` to count subwords).

    Returns:
        The kept pairs (stripped, in their original order) and counts of what was dropped.

    Raises:
        DataError: If ``max_len`` is given and is not positive.
    """
    if max_len is not None and max_len < 1:
        raise DataError(f"max_len must be a positive number of tokens or None, got {max_len}")
    kept: list[Pair] = []
    empty = too_long = 0
    for src, tgt in pairs:
        src, tgt = src.strip(), tgt.strip()
        if not src or not tgt:
            empty += 1
        elif max_len is not None and max(length_fn(src), length_fn(tgt)) > max_len:
            too_long += 1
        else:
            kept.append((src, tgt))
    return kept, FilterStats(kept=len(kept), empty=empty, too_long=too_long)


def split_holdout(pairs: list[Pair], n: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Set aside ``n`` randomly chosen pairs, e.g. for validation when no validation files exist.

    The choice depends only on ``seed`` and ``len(pairs)``, so the same corpus and seed
    always give the same split. Both parts keep the corpus order.

    Args:
        pairs: The corpus.
        n: How many pairs to set aside (0 sets aside none).
        seed: Seed of the random choice.

    Returns:
        ``(rest, held_out)``: the pairs not chosen and the ``n`` chosen ones.

    Raises:
        DataError: If ``n`` is negative or leaves no pairs for training.
    """
    if not 0 <= n < len(pairs):
        raise DataError(
            f"cannot hold out {n} of {len(pairs)} pairs: n must be at least 0 and leave at "
            "least one pair for training"
        )
    chosen = set(random.Random(seed).sample(range(len(pairs)), n))
    rest = [p for i, p in enumerate(pairs) if i not in chosen]
    held_out = [p for i, p in enumerate(pairs) if i in chosen]
    return rest, held_out
