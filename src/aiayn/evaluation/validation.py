"""Validation metrics that need decoding (BLEU, exact match), packaged as trainer hooks.

The trainer calls `hook(model, epoch, step)` after each validation; these hooks translate a
fixed slice of the validation set greedily and score it. Greedy keeps the cost down (beam search
is for the final evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiayn.data import Pair, Vocabularies
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.translator import Translator
from aiayn.evaluation.bleu import sacrebleu_scores
from aiayn.model import Transformer


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Percentage of hypotheses identical to their reference (after stripping spaces)."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"need one reference per hypothesis: got {len(hypotheses)} and {len(references)}"
        )
    same = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references, strict=True))
    return 100.0 * same / max(len(references), 1)


def make_bleu_hook(
    vocabs: Vocabularies, pairs: Sequence[Pair], max_sentences: int
) -> Callable[[Transformer, int, int], dict[str, float]]:
    """A trainer hook reporting BLEU, chrF and exact match on the first `max_sentences` pairs.

    Args:
        vocabs: the run's vocabularies.
        pairs: validation (source, reference) pairs.
        max_sentences: how many to translate each time (a fixed slice, so epochs compare).
    """
    chosen = list(pairs[:max_sentences])
    sources = [s for s, _ in chosen]
    references = [r for _, r in chosen]

    def hook(model: Transformer, epoch: int, step: int) -> dict[str, float]:
        was_training = model.training
        translator = Translator(model, vocabs, DecodeConfig(beam_size=1))
        hypotheses = translator.translate(sources)
        model.train(was_training)
        scores = sacrebleu_scores(hypotheses, references)
        return {
            "bleu": scores.bleu,
            "chrf": scores.chrf,
            "exact_match": exact_match(hypotheses, references),
        }

    return hook
