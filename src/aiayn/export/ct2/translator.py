"""`Ct2Translator`: raw text in, raw text out, through an exported ct2 folder.

    translator = Ct2Translator("exports/en-de-ct2", threads=2)
    translator.translate(["A dog runs.", "Two children play."], beam_size=1)
    translator.translate_full(["A dog runs."], beam_size=4, n_best=2)  # hypotheses and scores

It reads the folder that `aiayn export --format ct2` wrote: CTranslate2 runs the model, our
tokenizer (the folder's tokenizer/) turns text into the pieces the model takes and back. It
decodes with the limits our `Translator` uses, so that greedy outputs are equal token for token:

- An output may hold `len(source) + max_len_offset - 1` tokens before its EOS (the run's
  `decode.max_len_offset`), and never more than `max_positions - 1`: the exported position
  table has `max_positions` rows and CTranslate2 raises an error for a position past it.
  CTranslate2 takes one length limit per call, and beam search's outcome depends on it (the
  beams alive at the limit end there), so beam search makes one call per limit; greedy search
  decodes a batch with the longest limit and again, with their own, the sentences whose output
  reached it. Either way a sentence's hypotheses and scores are those of its own limit, the
  same whatever else is in its batch.
- A source longer than `max_positions` tokens is truncated with a warning (our Translator does
  the same for learned positions; for sinusoids it allows 4 x max_positions).
- `min_decoding_length=0`: CTranslate2's Python default of 1 forbids an empty output, which
  our search allows.
- A blank line translates to an empty line without calling the model, as ours does.

Beam search differs in its length penalty: CTranslate2 ranks hypotheses by
log P / L^length_penalty, ours by log P / ((5 + L) / 6)^alpha, where L counts the output's
tokens and its EOS in both (measured: CTranslate2's scores are log P, EOS included, over
(tokens + 1)^length_penalty). `translate_full`'s `alpha` is passed as CTranslate2's
length_penalty: the same number favours length differently. With 0 both rank by log P alone.

There are no attention maps: CTranslate2 returns at most one alignment head (the
cross-attention of one decoder layer, `return_attention`), not every layer's and head's
weights, so `attention` raises `ExportError` and `aiayn serve --backend ct2` answers
/v1/attention with 501.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiayn.data import Vocabularies
from aiayn.data.tokenizer import Tokenizer
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.hypothesis import Hypothesis
from aiayn.decoding.translator import Translation
from aiayn.errors import ConfigError
from aiayn.export.common import EXPORT_INFO, ExportError, require
from aiayn.model import AttentionWeights, ModelConfig, ModelConfigError
from aiayn.typed_config import from_mapping

log = logging.getLogger(__name__)

ATTENTION_UNAVAILABLE = (
    "attention maps are not available with CTranslate2: it returns at most one alignment head "
    "(the cross-attention of one decoder layer), not every layer's and head's weights; serve "
    "the run with --backend ours to see them"
)


def vocabulary_pieces(tokenizer: Tokenizer) -> list[str]:
    """The tokenizer's token strings in id order: the vocabulary CTranslate2 reads."""
    return [tokenizer.id_to_piece(i) for i in range(tokenizer.vocab_size)]


def read_export_info(folder: Path) -> dict[str, Any]:
    """export.json of a ct2 export folder.

    Raises:
        ExportError: no readable export.json, or one of another format.
    """
    path = folder / EXPORT_INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ExportError(
            f"{path}: cannot read ({error.strerror}); is {folder} an export?"
        ) from None
    except ValueError as error:
        raise ExportError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(info, dict) or info.get("format") != "ct2":
        found = info.get("format") if isinstance(info, dict) else None
        raise ExportError(f"{path}: format is {found!r}, not 'ct2'")
    return info


class Ct2Translator:
    """Translates text with an exported CTranslate2 model and its tokenizer.

    Args:
        folder: a folder written by `aiayn export --format ct2`.
        device: "cpu" or "cuda".
        compute_type: CTranslate2's compute type: "default" keeps the weights' type (float32,
            or int8 for an int8 export), "float32" computes in float32 whatever the weights.
        threads: threads per batch (CTranslate2's intra_threads; 0 = its default).
        workers: batches decoded at once (CTranslate2's inter_threads: replicas of the model,
            each with `threads` threads), as `decode.workers` does for ours; the token budget
            `decode.max_tokens` is split between them. Give each `threads` = cores // workers.

    Raises:
        ExportError: ctranslate2 is not installed (naming the `ct2` extra), `folder` is not
            a ct2 export, or CTranslate2 cannot load its model.
        DataError: its tokenizer files are missing or damaged.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        device: str = "cpu",
        compute_type: str = "default",
        threads: int = 0,
        workers: int = 1,
    ) -> None:
        ctranslate2 = require("ctranslate2", "ct2")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.folder = Path(folder)
        info = read_export_info(self.folder)
        try:
            self.decode = from_mapping(DecodeConfig, info.get("decode"), "decode")
        except ConfigError as error:
            raise ExportError(f"{self.folder / EXPORT_INFO}: {error}") from None
        try:
            self._model_config = ModelConfig.from_dict(info["model_config"])
        except (KeyError, TypeError, ModelConfigError) as error:
            raise ExportError(f"{self.folder / EXPORT_INFO}: model_config: {error}") from None
        self.max_positions = self._model_config.max_positions
        self.vocabs = Vocabularies.load(self.folder)
        self._src_pieces = vocabulary_pieces(self.vocabs.src)
        self._tgt_ids = {p: i for i, p in enumerate(vocabulary_pieces(self.vocabs.tgt))}
        try:
            self.translator = ctranslate2.Translator(
                str(self.folder),
                device=device,
                compute_type=compute_type,
                inter_threads=workers,
                intra_threads=threads,
            )
        except (RuntimeError, ValueError) as error:  # a missing or damaged model.bin, a device
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ExportError(f"{self.folder}: CTranslate2 cannot load it ({first_line})") from None

    def _encode(self, text: str) -> list[str]:
        ids = self.vocabs.src.encode(text)
        if len(ids) > self.max_positions:
            log.warning(
                "source of %d tokens truncated to the exported model's %d (max_positions)",
                len(ids),
                self.max_positions,
            )
            ids = ids[: self.max_positions]
        return [self._src_pieces[i] for i in ids]

    @property
    def model_config(self) -> ModelConfig:
        """The exported model's config (from export.json): its layers and heads."""
        return self._model_config

    def translate_full(
        self,
        texts: Sequence[str],
        *,
        beam_size: int | None = None,
        alpha: float | None = None,
        n_best: int = 1,
    ) -> list[Translation]:
        """Translate and keep the n best hypotheses with CTranslate2's scores.

        Args:
            texts: source sentences; a blank one gives an empty translation.
            beam_size: beams; 1 = greedy; default: the run's `decode.beam_size`.
            alpha: passed as CTranslate2's length_penalty (log P / L^alpha, L = tokens + EOS;
                module docstring); default: the run's `decode.alpha`, though the two
                penalties differ.
            n_best: hypotheses to keep per sentence (<= beam_size).

        Returns:
            One `Translation` per input, in input order. Each hypothesis's `score` is
            CTranslate2's (hypotheses come best first), its `log_prob` the log-probability of
            its tokens and EOS (without an EOS when the output stopped at its length limit).
        """
        beam = self.decode.beam_size if beam_size is None else beam_size
        penalty = self.decode.alpha if alpha is None else alpha
        results = [Translation("", [Hypothesis([], 0.0, 0.0)]) for _ in texts]
        rows = [i for i, text in enumerate(texts) if text.strip()]
        if not rows:
            return results
        sources = [self._encode(texts[i]) for i in rows]
        # Tokens each output may hold before its EOS (module docstring).
        limits = [min(len(s) + self.decode.max_len_offset, self.max_positions) - 1 for s in sources]
        found: list[Any] = [None] * len(sources)
        redo = range(len(sources))
        if beam == 1:
            # Greedy steps do not depend on the limit: decode all with the longest, then again
            # those that reached their own (whether an EOS follows there is the limit's call).
            longest = max(limits)
            found = [r.result() for r in self._search(sources, longest, beam, penalty, n_best)]
            redo = [
                k for k, result in enumerate(found)
                if limits[k] < longest and len(result.hypotheses[0]) >= limits[k]
            ]  # fmt: skip
        # Beam search's outcome depends on the limit (the beams alive there end there): one
        # call per limit, so that a sentence's answer never depends on its batch. All calls
        # are submitted before any answer is read, so that several workers share them.
        calls = []
        for limit in sorted({limits[k] for k in redo}):
            group = [k for k in redo if limits[k] == limit]
            calls.append(
                (group, self._search([sources[k] for k in group], limit, beam, penalty, n_best))
            )
        for group, again in calls:
            for k, result in zip(group, again, strict=True):
                found[k] = result.result()
        for row, result, limit in zip(rows, found, limits, strict=True):
            hypotheses = [
                self._hypothesis(pieces, score, limit, penalty)
                for pieces, score in zip(result.hypotheses, result.scores, strict=True)
            ]
            results[row] = Translation(self.vocabs.tgt.decode(hypotheses[0].tokens), hypotheses)
        return results

    def _search(
        self, sources: list[list[str]], limit: int, beam: int, penalty: float, n_best: int
    ) -> list[Any]:
        """Submit one `translate_batch` call: CTranslate2's asynchronous results (with
        scores), in input order. Its batches go to whichever worker is free."""
        return self.translator.translate_batch(
            sources,
            beam_size=beam,
            num_hypotheses=n_best,
            length_penalty=penalty,
            return_scores=True,
            max_batch_size=max(1, self.decode.max_tokens // (beam * self.workers)),
            batch_type="tokens",
            asynchronous=True,
            max_input_length=0,  # sources are already cut to the position table
            max_decoding_length=max(1, limit),
            min_decoding_length=0,
        )

    def _hypothesis(
        self, pieces: list[str], score: float, limit: int, penalty: float
    ) -> Hypothesis:
        """Our `Hypothesis` of one CTranslate2 hypothesis and its score."""
        tokens = [self._tgt_ids[p] for p in pieces]
        # CTranslate2's score is log P / steps^penalty; a step per token, and one for the EOS
        # unless the output stopped at its limit (it had none then).
        steps = len(tokens) + (1 if len(tokens) < max(1, limit) else 0)
        log_prob = score * steps**penalty if steps else 0.0
        return Hypothesis(tokens, score, log_prob)

    def translate_ids(
        self,
        texts: Sequence[str],
        *,
        beam_size: int | None = None,
        length_penalty: float | None = None,
    ) -> list[list[int]]:
        """Translate sentences into target ids (without BOS and EOS).

        Args:
            texts: source sentences; a blank one gives an empty output.
            beam_size: beams; 1 = greedy; default: the run's `decode.beam_size`.
            length_penalty: CTranslate2's (log P / L^length_penalty, module docstring);
                default: the run's `decode.alpha`, though the two penalties differ.

        Returns:
            One id list per input, in input order.
        """
        found = self.translate_full(texts, beam_size=beam_size, alpha=length_penalty)
        return [t.hypotheses[0].tokens for t in found]

    def translate(
        self,
        texts: Sequence[str],
        *,
        beam_size: int | None = None,
        length_penalty: float | None = None,
    ) -> list[str]:
        """Translate sentences; see `translate_ids` for the arguments."""
        found = self.translate_full(texts, beam_size=beam_size, alpha=length_penalty)
        return [t.text for t in found]

    # Why `attention` cannot answer (the server says so instead of calling it).
    attention_unavailable: str | None = ATTENTION_UNAVAILABLE

    def attention(
        self, text: str, translation: str | None = None
    ) -> tuple[AttentionWeights, list[str], list[str]]:
        """Every attention weight of a translation: not available with CTranslate2.

        Raises:
            ExportError: always (module docstring: CTranslate2 returns one alignment head).
        """
        raise ExportError(ATTENTION_UNAVAILABLE)
