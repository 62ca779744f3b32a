"""Subword regularisation: the training pairs segmented anew, at random, for every epoch.

A word has many segmentations into a vocabulary's pieces; training on one drawn at random each
epoch (BPE-dropout for BPE models, Provilkov et al. 2020; sampling from the unigram model, Kudo
2018) shows the model rare words spelt out in smaller pieces and makes it less brittle on small
corpora. Validation, search and every other reader keep the single best segmentation.

An epoch's segmentation depends only on (seed, epoch), so a resumed run sees the same pieces
as an uninterrupted one. The next epoch is drawn in a background thread while this one trains
(SentencePiece releases the GIL); on Multi30k a draw takes a few seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from aiayn.data.errors import DataError
from aiayn.data.sentencepiece_tokenizer import SentencePieceTokenizer
from aiayn.data.text_files import Pair
from aiayn.data.vocab import IdPair, Vocabularies


@runtime_checkable
class PerEpochPairs(Protocol):
    """Training pairs that differ from epoch to epoch (the trainer asks at each epoch start)."""

    def __len__(self) -> int: ...

    def for_epoch(self, epoch: int) -> Sequence[IdPair]:
        """The encoded pairs of `epoch` (from 0), in the same order every epoch."""
        ...


class SampledSegmentations:
    """Text pairs whose subword segmentation is drawn again for every epoch.

    Args:
        pairs: (source, target) text pairs.
        vocabs: SentencePiece vocabularies (a symbol vocabulary has one segmentation only).
        alpha: BPE-dropout probability, or unigram smoothing, in (0, 1).
        seed: Seeds every epoch's draw.
        best: The pairs' best segmentations, if already encoded (else encoded here).
        longest: A drawn pair longer than this (source, or target + BOS/EOS: what learned
            positions must hold) keeps its best segmentation; None = no limit.

    Raises:
        DataError: A vocabulary is not a SentencePiece model, or alpha is outside (0, 1).
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        vocabs: Vocabularies,
        alpha: float,
        seed: int,
        *,
        best: Sequence[IdPair] | None = None,
        longest: int | None = None,
    ) -> None:
        for side, tokenizer in (("source", vocabs.src), ("target", vocabs.tgt)):
            if not isinstance(tokenizer, SentencePieceTokenizer):
                raise DataError(
                    f"subword sampling needs SentencePiece vocabularies; the {side} one is a "
                    f"{type(tokenizer).__name__}"
                )
        if not 0.0 < alpha < 1.0:
            raise DataError(f"subword sampling alpha must be in (0, 1), got {alpha}")
        self._src = [s for s, _ in pairs]
        self._tgt = [t for _, t in pairs]
        self._vocabs = vocabs
        self.alpha = alpha
        self.seed = seed
        self.longest = longest
        self._best = best
        self._ahead: tuple[int, Future[list[IdPair]]] | None = None

    def __len__(self) -> int:
        return len(self._src)

    def for_epoch(self, epoch: int) -> list[IdPair]:
        """The pairs of `epoch`, drawn for it (and the next epoch's draw started meanwhile).

        Args:
            epoch: The epoch, from 0.

        Returns:
            One (source ids, target ids) pair per text pair, in order, without BOS or EOS.
        """
        ahead, self._ahead = self._ahead, None
        pairs = ahead[1].result() if ahead is not None and ahead[0] == epoch else None
        if pairs is None:
            pairs = self._draw(epoch)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiayn-subwords")
        self._ahead = (epoch + 1, pool.submit(self._draw, epoch + 1))
        pool.shutdown(wait=False)
        return pairs

    def _draw(self, epoch: int) -> list[IdPair]:
        src = self._vocabs.src.encode_batch_sampled(
            self._src, self.alpha, _seed(self.seed, epoch, "src")
        )
        tgt = self._vocabs.tgt.encode_batch_sampled(
            self._tgt, self.alpha, _seed(self.seed, epoch, "tgt")
        )
        if self.longest is None:
            return list(zip(src, tgt, strict=True))
        best = self.best()
        return [
            pair if max(len(pair[0]), len(pair[1]) + 1) <= self.longest else best[i]
            for i, pair in enumerate(zip(src, tgt, strict=True))
        ]

    def best(self) -> Sequence[IdPair]:
        """The single best segmentation of every pair (what the other readers use)."""
        if self._best is None:
            src = self._vocabs.src.encode_batch(self._src)
            self._best = list(zip(src, self._vocabs.tgt.encode_batch(self._tgt), strict=True))
        return self._best


def _seed(seed: int, epoch: int, side: str) -> int:
    """A 31-bit seed for one side of one epoch, the same in every process."""
    digest = hashlib.sha256(f"aiayn-subwords:{seed}:{epoch}:{side}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
