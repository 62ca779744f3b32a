"""What the server answers: translations and attention weights as JSON-ready values."""

from __future__ import annotations

from typing import Any

from aiayn.data import Tokenizer
from aiayn.decoding.translator import Translation
from aiayn.model import AttentionWeights
from aiayn.serve.batcher import Timings

# Attention weights are shown as colours: four decimals are more than a picture can tell apart,
# and keep a 4-layer x 4-head answer small.
WEIGHT_DECIMALS = 4


def translation_json(translation: Translation, tgt: Tokenizer, greedy: bool) -> dict[str, Any]:
    """One sentence's answer: `{"text", "tokens", "score", "n_best": [{"text", "score"}]}`.

    `tokens` are the best hypothesis's target subwords. Scores are the beam search's
    length-normalised log-probabilities; greedy search keeps none, so they are null there.
    """
    hyps = translation.hypotheses
    n_best = [
        {"text": tgt.decode(h.tokens), "score": None if greedy else round(h.score, 6)} for h in hyps
    ]
    return {
        "text": translation.text,
        "tokens": [tgt.id_to_piece(i) for i in hyps[0].tokens],
        "score": n_best[0]["score"],
        "n_best": n_best,
    }


def translate_json(
    translations: list[Translation], tgt: Tokenizer, greedy: bool, timings: Timings
) -> dict[str, Any]:
    """The /v1/translate answer: one entry per input sentence, in input order, and timings."""
    return {
        "translations": [translation_json(t, tgt, greedy) for t in translations],
        "timings": timings_json(timings),
    }


def attention_json(
    weights: AttentionWeights,
    src_pieces: list[str],
    tgt_pieces: list[str],
    timings: Timings,
) -> dict[str, Any]:
    """The /v1/attention answer.

    `source` are the source subwords, `target` the decoder inputs (BOS, then the subwords of
    the given translation, else of the translation with the run's default search): row i of
    `cross` and `decoder_self` is the decoder at input i, predicting target token i + 1. Each
    weight list is [layer][head][query][key].
    """

    def nested(layers: list[Any]) -> list[Any]:
        return [layer[0].float().round(decimals=WEIGHT_DECIMALS).tolist() for layer in layers]

    return {
        "source": src_pieces,
        "target": tgt_pieces,
        "encoder": nested(weights.encoder),
        "decoder_self": nested(weights.decoder_self),
        "cross": nested(weights.cross),
        "timings": timings_json(timings),
    }


def timings_json(timings: Timings) -> dict[str, float]:
    """`{"queue_ms", "decode_ms"}`, to a hundredth of a millisecond."""
    return {"queue_ms": round(timings.queue_ms, 2), "decode_ms": round(timings.decode_ms, 2)}
