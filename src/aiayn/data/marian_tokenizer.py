"""Marian (OPUS-MT) vocabularies behind the ``Tokenizer`` interface, for `aiayn import-hf` runs.

A Marian model directory cuts text with SentencePiece (``source.spm``, ``target.spm``) but numbers
the pieces with its own ``vocab.json`` (piece -> id), not with SentencePiece's ids, and its special
ids are not aiayn's 0-3: in OPUS-MT, ``</s>`` (EOS) is 0, ``<unk>`` 1 and ``<pad>`` the last id,
which is also the token the decoder starts from. `MarianTokenizer` gives the ids and text of
Hugging Face's ``MarianTokenizer`` (transformers 5.x):

- encode: the side's SentencePiece model cuts the text and vocab.json numbers the pieces (a piece
  it lacks is ``<unk>``). A leading target-language token ``>>xx<<`` (multilingual models: the
  user writes it at the start of the sentence, e.g. ``>>fra<< Hello``) is one id; one the
  vocabulary lacks is an error naming it rather than a silent ``<unk>``. Special pieces written
  in the text (``</s>``, ``<unk>``, ``<pad>``) are their own ids, as in MarianTokenizer. No EOS
  is added here (the ``Tokenizer`` contract): Marian models were trained with ``</s>`` after
  every source, so ``Translator`` appends it for vocabularies saved with ``source_eos``.
- decode: PAD, EOS and the decoder start are left out; the other pieces are joined by a
  SentencePiece model and ``▁`` becomes a space, as MarianTokenizer does. With one vocab.json for
  both sides MarianTokenizer joins target pieces with ``source.spm`` (``target.spm`` only with
  separate vocabularies); `MarianTokenizer` takes that choice as ``decode_spm``. ``<unk>`` stays
  visible as ``<unk>`` (MarianTokenizer drops it with ``skip_special_tokens``).

A run keeps one file per side, ``src.marian.json`` / ``tgt.marian.json``: the piece -> id table,
both SentencePiece models (base64), the special pieces, the decoder start id, and the ids search
must never emit (OPUS-MT's generation config forbids its pad token with ``bad_words_ids``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

from aiayn.data.errors import DataError
from aiayn.data.tokenizer import EOS_PIECE, PAD_PIECE, UNK_PIECE, Tokenizer

SUFFIX = ".marian.json"
WORD_BOUNDARY = "▁"  # SentencePiece's word-start mark, a space once decoded


def language_code(text: str) -> tuple[str | None, str]:
    """Split a leading target-language token ``>>xx<<`` off `text`, as MarianTokenizer does.

    Returns:
        The token (None if `text` does not start with one) and the rest of the text.
    """
    end = text.find("<<")
    if text.startswith(">>") and end != -1:
        return text[: end + 2], text[end + 2 :]
    return None, text


def load_spm(proto: bytes, what: str) -> spm.SentencePieceProcessor:
    """A SentencePiece model from its serialised bytes.

    Raises:
        DataError: the bytes are not a SentencePiece model (naming `what`).
    """
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(proto)
    except (RuntimeError, OSError) as e:
        raise DataError(f"{what}: not a SentencePiece model ({e})") from None
    return processor


class MarianTokenizer(Tokenizer):
    """One side of a Marian model's vocabulary: SentencePiece pieces numbered by vocab.json.

    Args:
        vocab: piece -> id, the ids exactly 0 .. len(vocab) - 1 (vocab.json).
        spm_proto: the SentencePiece model that cuts this side's text (source.spm or target.spm).
        decode_spm_proto: the SentencePiece model that joins pieces back into text; default
            `spm_proto`.
        pad_piece: the padding piece (``pad_id``).
        unk_piece: the unknown piece (``unk_id``).
        eos_piece: the end-of-sentence piece (``eos_id``).
        decoder_start_id: the first decoder input (``bos_id``); default the pad id, as in Marian.
        suppressed_ids: ids search must never emit.

    Raises:
        DataError: ids that are not 0 .. n-1, a special piece vocab.json lacks, an id out of
            range, or bytes that are not a SentencePiece model.
    """

    def __init__(
        self,
        vocab: Mapping[str, int],
        spm_proto: bytes,
        decode_spm_proto: bytes | None = None,
        *,
        pad_piece: str = PAD_PIECE,
        unk_piece: str = UNK_PIECE,
        eos_piece: str = EOS_PIECE,
        decoder_start_id: int | None = None,
        suppressed_ids: Sequence[int] = (),
    ) -> None:
        ids = sorted(vocab.values())
        if not all(type(i) is int for i in ids) or ids != list(range(len(ids))):
            raise DataError("vocabulary ids must be the integers 0 .. n-1, each once")
        self._vocab = dict(vocab)
        self._pieces = sorted(self._vocab, key=self._vocab.__getitem__)  # id -> piece
        for piece in (pad_piece, unk_piece, eos_piece):
            if piece not in self._vocab:
                raise DataError(f"the vocabulary has no special piece {piece!r}")
        self.special_pieces = (pad_piece, unk_piece, eos_piece)
        self.pad_id = self._vocab[pad_piece]
        self.unk_id = self._vocab[unk_piece]
        self.eos_id = self._vocab[eos_piece]
        self.bos_id = self.pad_id if decoder_start_id is None else decoder_start_id
        self.suppressed_ids = tuple(suppressed_ids)
        self._check_ids([self.bos_id, *self.suppressed_ids])
        self._spm_proto = bytes(spm_proto)
        self._decode_spm_proto = bytes(spm_proto if decode_spm_proto is None else decode_spm_proto)
        self._sp = load_spm(self._spm_proto, "spm")
        self._decode_sp = load_spm(self._decode_spm_proto, "decode_spm")
        # Special pieces written in the text are cut out first, longest first, as
        # MarianTokenizer's added-token split does.
        alternatives = sorted(self.special_pieces, key=len, reverse=True)
        self._special_split = re.compile("(" + "|".join(map(re.escape, alternatives)) + ")")

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    @property
    def language_codes(self) -> list[str]:
        """The target-language tokens (``>>xx<<``) of a multilingual model; empty otherwise."""
        return [p for p in self._pieces if p.startswith(">>") and p.endswith("<<")]

    def encode(self, text: str) -> list[int]:
        return [self._vocab.get(piece, self.unk_id) for piece in self.pieces(text)]

    def pieces(self, text: str) -> list[str]:
        out: list[str] = []
        for chunk in self._special_split.split(text):
            if chunk in self.special_pieces:
                out.append(chunk)
                continue
            code, rest = language_code(chunk)
            if code is not None:
                if code not in self._vocab:
                    known = ", ".join(self.language_codes[:8]) or "none"
                    raise DataError(
                        f"{code} is not a target-language token of this model (it has: {known})"
                    )
                out.append(code)
            out.extend(self._sp.encode(rest, out_type=str))
        return out

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        self._check_ids(ids)
        text, run = "", []
        for i in ids:
            if i in (self.pad_id, self.eos_id, self.bos_id):
                continue
            if i == self.unk_id:  # MarianTokenizer writes special pieces between decoded runs
                text += self._decode_sp.decode_pieces(run) + self._pieces[i] + " "
                run = []
            else:
                run.append(self._pieces[i])
        text += self._decode_sp.decode_pieces(run)
        return text.replace(WORD_BOUNDARY, " ").strip()

    def id_to_piece(self, token_id: int) -> str:
        self._check_ids([token_id])
        return self._pieces[token_id]

    def to_dict(self) -> dict[str, Any]:
        """Everything that defines this tokenizer, as JSON values (what `save` writes)."""
        pad, unk, eos = self.special_pieces
        return {
            "vocab": self._vocab,
            "spm": base64.b64encode(self._spm_proto).decode("ascii"),
            "decode_spm": base64.b64encode(self._decode_spm_proto).decode("ascii"),
            "pad_piece": pad,
            "unk_piece": unk,
            "eos_piece": eos,
            "decoder_start_id": self.bos_id,
            "suppressed_ids": list(self.suppressed_ids),
        }

    def save(self, directory: str | Path, name: str) -> Path:
        path = Path(directory) / f"{name}{SUFFIX}"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        path.write_text(text + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> MarianTokenizer:
        """Load a tokenizer saved by ``save``.

        Raises:
            DataError: the file is missing, unreadable or not a Marian tokenizer file.
        """
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise DataError(f"{path}: cannot read tokenizer ({e.strerror})") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a JSON tokenizer file ({e})") from None
        try:
            return cls(
                values["vocab"],
                base64.b64decode(values["spm"], validate=True),
                base64.b64decode(values["decode_spm"], validate=True),
                pad_piece=values["pad_piece"],
                unk_piece=values["unk_piece"],
                eos_piece=values["eos_piece"],
                decoder_start_id=values["decoder_start_id"],
                suppressed_ids=values["suppressed_ids"],
            )
        except (KeyError, TypeError, AttributeError, binascii.Error) as e:
            raise DataError(f"{path}: not a Marian tokenizer file ({e!r})") from None
        except DataError as e:
            raise DataError(f"{path}: {e}") from None

    def __repr__(self) -> str:
        return (
            f"MarianTokenizer(vocab_size={self.vocab_size}, pad={self.pad_id}, eos={self.eos_id})"
        )
