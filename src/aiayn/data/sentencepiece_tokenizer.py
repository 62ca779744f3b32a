"""Subword vocabularies learnt with SentencePiece (unigram language model or BPE).

The paper used byte-pair encoding with a shared source/target vocabulary of about 37000
tokens for WMT English-German; on a corpus as small as Multi30k a vocabulary of a few
thousand works better (see ``default_vocab_size``).

Settings that matter, and why:

- ``normalization_rule_name="identity"``: the default NFKC normalisation rewrites characters
  (e.g. a no-break space into a space), so decoding would not give back the input.
- ``remove_extra_whitespaces=False``: by default SentencePiece collapses runs of spaces and
  drops leading and trailing spaces; Multi30k has sentences with double spaces and leading
  spaces, and they must come back exactly as they were.
- ``add_dummy_prefix=True``: a space is assumed before the first word, so "Ein" at the start
  of a sentence and " Ein" inside one become the same token ``▁Ein``; decoding removes it.
- ``byte_fallback=True``: a character absent from the vocabulary is spelt as its UTF-8
  bytes (``<0xC5>`` ...) instead of becoming UNK, so any text round-trips; this costs 256 ids.
- ``hard_vocab_limit=False``: a small corpus may yield fewer pieces than asked for.

With these settings ``decode(encode(text)) == text`` for every text tested, including every
Multi30k sentence, except for text that contains the piece separator ``▁`` (U+2581) itself,
which comes back as a space.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from aiayn.data.errors import DataError
from aiayn.data.tokenizer import (
    BOS_ID,
    BOS_PIECE,
    EOS_ID,
    EOS_PIECE,
    PAD_ID,
    PAD_PIECE,
    UNK_ID,
    UNK_PIECE,
    Tokenizer,
)

MODEL_TYPES: tuple[str, ...] = ("unigram", "bpe")
_SAMPLING = threading.Lock()
SUFFIX = ".model"


class SentencePieceTokenizer(Tokenizer):
    """A trained SentencePiece model behind the ``Tokenizer`` interface.

    Build one with ``SentencePieceTokenizer.train`` or load one with ``SentencePieceTokenizer.load``
    (or ``load_tokenizer``).

    Args:
        model_proto: The serialised SentencePiece model (the bytes of a ``.model`` file).

    Raises:
        DataError: If the bytes are not a SentencePiece model or its special ids differ from
            aiayn's fixed ones.
    """

    def __init__(self, model_proto: bytes) -> None:
        self._proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(self._proto)
        except (RuntimeError, OSError) as e:
            raise DataError(f"not a SentencePiece model ({e})") from None
        found = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if found != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise DataError(
                f"SentencePiece model has special ids pad, unk, bos, eos = {found}; aiayn needs "
                f"{(PAD_ID, UNK_ID, BOS_ID, EOS_ID)} (train it with SentencePieceTokenizer.train)"
            )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        byte_fallback: bool = True,
        seed: int = 0,
        num_threads: int = 2,
    ) -> SentencePieceTokenizer:
        """Learn a subword vocabulary from sentences held in memory.

        Args:
            texts: Training sentences, one per item (no file is written).
            vocab_size: The wanted number of ids, special and byte ids included; a small corpus
                may give fewer. Must exceed 4 + the number of distinct characters (+ 256 with
                ``byte_fallback``).
            model_type: ``"unigram"`` (SentencePiece's default) or ``"bpe"`` (as in the paper).
            character_coverage: Share of characters to keep as their own pieces; 1.0 keeps all,
                which is right for Latin-script languages.
            byte_fallback: Spell unknown characters as UTF-8 bytes rather than UNK.
            seed: Seed of SentencePiece's random generator (its sampling of sentences).
            num_threads: Training threads.

        Returns:
            The trained tokenizer.

        Raises:
            DataError: For an unknown ``model_type``, no training text, or a vocabulary size
                too small for the corpus's characters.
        """
        if model_type not in MODEL_TYPES:
            raise DataError(
                f"unknown model_type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}"
            )
        sentences = [t for t in texts if t]
        if not sentences:
            raise DataError("cannot train a SentencePiece vocabulary on no (non-empty) text")
        return cls._train(
            f"{len(sentences)} sentences",
            {"sentence_iterator": iter(sentences)},
            vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            byte_fallback=byte_fallback,
            seed=seed,
            num_threads=num_threads,
        )

    @classmethod
    def train_files(
        cls,
        paths: Sequence[str | Path],
        vocab_size: int,
        *,
        sample: int,
        model_type: str = "unigram",
        seed: int = 0,
        num_threads: int = 2,
    ) -> SentencePieceTokenizer:
        """Learn a subword vocabulary from text files, on a bounded random sample of lines.

        SentencePiece reads the files itself and keeps ``sample`` lines drawn at random
        (reservoir sampling: its ``input_sentence_size`` with ``shuffle_input_sentence``), so
        memory and time stay bounded however large the corpus (``aiayn prepare``).

        Args:
            paths: Files of one sentence per line (no empty lines).
            vocab_size: As for ``train``.
            sample: Lines to learn from at most; 0 takes every line.
            model_type: As for ``train``.
            seed: Seed of SentencePiece's random generator (its sample).
            num_threads: Training threads.

        Returns:
            The trained tokenizer.

        Raises:
            DataError: As for ``train``.
        """
        if model_type not in MODEL_TYPES:
            raise DataError(
                f"unknown model_type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}"
            )
        files = ",".join(str(p) for p in paths)
        input_args = {"input": files, "input_sentence_size": sample, "shuffle_input_sentence": True}
        return cls._train(
            files, input_args, vocab_size, model_type=model_type, seed=seed, num_threads=num_threads
        )

    @classmethod
    def _train(
        cls,
        what: str,
        input_args: dict[str, object],
        vocab_size: int,
        *,
        model_type: str,
        character_coverage: float = 1.0,
        byte_fallback: bool = True,
        seed: int,
        num_threads: int,
    ) -> SentencePieceTokenizer:
        """Train with aiayn's settings (see the module docstring) on the given input."""
        model = io.BytesIO()
        # The seed is process-wide state in SentencePiece; set it right before training.
        spm.set_random_generator_seed(seed)
        try:
            spm.SentencePieceTrainer.train(
                **input_args,
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                normalization_rule_name="identity",
                remove_extra_whitespaces=False,
                add_dummy_prefix=True,
                byte_fallback=byte_fallback,
                hard_vocab_limit=False,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                pad_piece=PAD_PIECE,
                unk_piece=UNK_PIECE,
                bos_piece=BOS_PIECE,
                eos_piece=EOS_PIECE,
                num_threads=num_threads,
                minloglevel=2,  # keep SentencePiece's progress log off stderr
            )
        except RuntimeError as e:
            raise DataError(
                f"SentencePiece training failed with vocab_size={vocab_size} on {what}: {e}"
            ) from None
        return cls(model.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> SentencePieceTokenizer:
        """Load a tokenizer saved by ``save``.

        Args:
            path: The ``.model`` file.

        Returns:
            The tokenizer.

        Raises:
            DataError: If the file is missing or not an aiayn SentencePiece model.
        """
        path = Path(path)
        try:
            proto = path.read_bytes()
        except OSError as e:
            raise DataError(f"{path}: cannot read tokenizer model ({e.strerror})") from None
        try:
            return cls(proto)
        except DataError as e:
            raise DataError(f"{path}: {e}") from None

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def model_proto(self) -> bytes:
        """The serialised model: the exact bytes ``save`` writes."""
        return self._proto

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text)

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return self._sp.encode(list(texts))

    def encode_batch_sampled(
        self, texts: Sequence[str], alpha: float, seed: int
    ) -> list[list[int]]:
        """One segmentation per text drawn at random instead of the best one.

        For a BPE model `alpha` is the probability of skipping each merge (BPE-dropout,
        Provilkov et al. 2020); for a unigram model it smooths the distribution that
        segmentations are drawn from (subword regularisation, Kudo 2018). The same texts,
        alpha and seed give the same ids: SentencePiece's generator is seeded, and the texts
        are encoded on one thread (several threads draw in a varying order).

        Args:
            texts: The texts.
            alpha: Dropout probability (BPE) or smoothing (unigram), in (0, 1).
            seed: Seeds the draw.

        Returns:
            Ids of each text, without BOS or EOS; each decodes to its text.
        """
        with _SAMPLING:  # the seed is process-wide: one sampled encode at a time
            spm.set_random_generator_seed(seed)
            return self._sp.encode(
                list(texts), enable_sampling=True, alpha=alpha, nbest_size=-1, num_threads=1
            )

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        self._check_ids(ids)
        # PAD, BOS and EOS are control symbols: SentencePiece already decodes them to "".
        # UNK comes out as " ⁇ ".
        return self._sp.decode(ids)

    def pieces(self, text: str) -> list[str]:
        return self._sp.encode(text, out_type=str)

    def id_to_piece(self, token_id: int) -> str:
        self._check_ids([token_id])
        return self._sp.id_to_piece(token_id)

    def save(self, directory: str | Path, name: str) -> Path:
        path = Path(directory) / f"{name}{SUFFIX}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self._proto)
        return path

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer(vocab_size={self.vocab_size})"
