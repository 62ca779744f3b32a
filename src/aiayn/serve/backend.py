"""What `aiayn serve` drives: a translation engine behind one small interface.

Two engines fit it: our `Translator` (`--backend ours`, a run directory) and `Ct2Translator`
(`--backend ct2`, a folder from `aiayn export --format ct2`). The batcher and the app use only
what `Backend` names, so neither knows which engine it serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aiayn.data import Vocabularies
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.translator import Translation
from aiayn.model import AttentionWeights, ModelConfig


class Backend(Protocol):
    """A translation engine the server can drive.

    Attributes:
        vocabs: the source and target tokenizers (the batcher counts source tokens with them).
        decode: the default search (beam, alpha) for what a request leaves out, and the batch
            budget (`max_tokens`), which the app sets to the server's `max_batch_tokens`.
        attention_unavailable: why `attention` cannot answer (the server's 501 message), or
            None where it can.
    """

    vocabs: Vocabularies
    decode: DecodeConfig
    attention_unavailable: str | None

    @property
    def model_config(self) -> ModelConfig:
        """The model's layers and heads (GET /v1/info)."""
        ...

    def translate_full(
        self,
        texts: Sequence[str],
        *,
        beam_size: int | None = None,
        alpha: float | None = None,
        n_best: int = 1,
    ) -> list[Translation]:
        """One `Translation` per input, in input order, with `n_best` scored hypotheses."""
        ...

    def attention(
        self, text: str, translation: str | None = None
    ) -> tuple[AttentionWeights, list[str], list[str]]:
        """Every attention weight of the sentence and its translation (the given one, else the
        backend's own), its source and target subwords (called only where
        `attention_unavailable` is None)."""
        ...
