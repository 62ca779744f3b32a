"""A finished translation candidate, and the length penalty that ranks candidates."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hypothesis:
    """One complete output of beam search.

    Attributes:
        tokens: the output ids, without BOS and without the final EOS.
        score: `log_prob / length_penalty(len(tokens) + 1, alpha)`; hypotheses are ranked by it.
        log_prob: log P(tokens, EOS | source), the sum of the model's per-step log-probs.
    """

    tokens: list[int]
    score: float
    log_prob: float


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's length penalty lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al., 2016, eq. 14).

    Log-probabilities only fall as a hypothesis grows, so raw log P favours short outputs.
    Dividing by lp, which grows with length, offsets that; alpha = 0 turns it off (lp = 1), and
    larger alpha favours longer outputs more.

    Args:
        length: |Y|, the number of output tokens counting the EOS.
        alpha: strength, >= 0.

    Returns:
        The penalty, >= 1 for alpha >= 0.
    """
    return ((5.0 + length) / 6.0) ** alpha
