"""`Ct2Translator`: raw text in, raw text out, through an exported ct2 folder.

    translator = Ct2Translator("exports/en-de-ct2", threads=2)
    translator.translate(["A dog runs.", "Two children play."], beam_size=1)

It reads the folder that `aiayn export --format ct2` wrote: CTranslate2 runs the model, our
tokenizer (the folder's tokenizer/) turns text into the pieces the model takes and back. It
decodes with the limits our `Translator` uses, so that greedy outputs are equal token for token:

- An output may hold `len(source) + max_len_offset - 1` tokens before its EOS (the run's
  `decode.max_len_offset`), and never more than `max_positions - 1`: the exported position
  table has `max_positions` rows and CTranslate2 raises an error for a position past it.
  CTranslate2 takes one length limit per call, so each output is cut back to its own limit
  afterwards (which, for greedy search, is the output a per-sentence limit would give).
- A source longer than `max_positions` tokens is truncated with a warning (our Translator does
  the same for learned positions; for sinusoids it allows 4 x max_positions).
- `min_decoding_length=0`: CTranslate2's Python default of 1 forbids an empty output, which
  our search allows.
- A blank line translates to an empty line without calling the model, as ours does.

Beam search differs in its length penalty: CTranslate2 ranks finished hypotheses by
log P / |Y|^length_penalty with |Y| not counting the EOS, ours by log P / ((5 + |Y|) / 6)^alpha
with |Y| counting it. With 0 both rank by log P alone.
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
from aiayn.errors import ConfigError
from aiayn.export.common import EXPORT_INFO, ExportError, require
from aiayn.typed_config import from_mapping

log = logging.getLogger(__name__)


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
        threads: threads per translation (CTranslate2's intra_threads; 0 = its default).

    Raises:
        ExportError: ctranslate2 is not installed (naming the `ct2` extra), or `folder` is not
            a ct2 export.
        DataError: its tokenizer files are missing or damaged.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        device: str = "cpu",
        compute_type: str = "default",
        threads: int = 0,
    ) -> None:
        ctranslate2 = require("ctranslate2", "ct2")
        self.folder = Path(folder)
        info = read_export_info(self.folder)
        try:
            self.decode = from_mapping(DecodeConfig, info.get("decode"), "decode")
        except ConfigError as error:
            raise ExportError(f"{self.folder / EXPORT_INFO}: {error}") from None
        self.max_positions = int(info["model_config"]["max_positions"])
        self.vocabs = Vocabularies.load(self.folder)
        self._src_pieces = vocabulary_pieces(self.vocabs.src)
        self._tgt_ids = {p: i for i, p in enumerate(vocabulary_pieces(self.vocabs.tgt))}
        self.translator = ctranslate2.Translator(
            str(self.folder),
            device=device,
            compute_type=compute_type,
            inter_threads=1,
            intra_threads=threads,
        )

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
            length_penalty: CTranslate2's (log P / |Y|^length_penalty, module docstring);
                default: the run's `decode.alpha`, though the two penalties differ.

        Returns:
            One id list per input, in input order.
        """
        beam = self.decode.beam_size if beam_size is None else beam_size
        penalty = self.decode.alpha if length_penalty is None else length_penalty
        outputs: list[list[int]] = [[] for _ in texts]
        rows = [i for i, text in enumerate(texts) if text.strip()]
        if not rows:
            return outputs
        sources = [self._encode(texts[i]) for i in rows]
        # Tokens each output may hold before its EOS (module docstring).
        limits = [min(len(s) + self.decode.max_len_offset, self.max_positions) - 1 for s in sources]
        results = self.translator.translate_batch(
            sources,
            beam_size=beam,
            length_penalty=penalty,
            max_batch_size=max(1, self.decode.max_tokens // beam),
            batch_type="tokens",
            max_input_length=0,  # sources are already cut to the position table
            max_decoding_length=max(1, max(limits)),
            min_decoding_length=0,
        )
        for row, result, limit in zip(rows, results, limits, strict=True):
            pieces = result.hypotheses[0][:limit]
            outputs[row] = [self._tgt_ids[p] for p in pieces]
        return outputs

    def translate(
        self,
        texts: Sequence[str],
        *,
        beam_size: int | None = None,
        length_penalty: float | None = None,
    ) -> list[str]:
        """Translate sentences; see `translate_ids` for the arguments."""
        ids = self.translate_ids(texts, beam_size=beam_size, length_penalty=length_penalty)
        return [self.vocabs.tgt.decode(out) for out in ids]
