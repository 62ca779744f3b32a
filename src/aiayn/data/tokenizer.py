"""The one tokenizer interface every part of aiayn codes against.

A tokenizer turns a sentence into a list of integer ids and back. The ids of the four special
tokens are the same in every vocabulary, so model, batching and search code can use these
constants without asking which tokenizer made the ids:

- ``PAD_ID = 0``: filler that makes sequences of a batch equally long; masked out everywhere.
- ``UNK_ID = 1``: a token the vocabulary does not have.
- ``BOS_ID = 2``: "begin of sentence", the first decoder input.
- ``EOS_ID = 3``: "end of sentence", the last decoder output; search stops on it.

``encode`` never adds BOS or EOS: the collator adds them where the model needs them.

Models imported from Marian (``aiayn import-hf``) number their tokens differently; their
``MarianTokenizer`` sets its own ``pad_id``/``unk_id``/``bos_id``/``eos_id``, so code that
decodes reads the ids from the tokenizer rather than from these constants.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from pathlib import Path

from aiayn.data.errors import DataError

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
SPECIAL_IDS: frozenset[int] = frozenset({PAD_ID, UNK_ID, BOS_ID, EOS_ID})

PAD_PIECE = "<pad>"
UNK_PIECE = "<unk>"
BOS_PIECE = "<s>"
EOS_PIECE = "</s>"
SPECIAL_PIECES: tuple[str, ...] = (PAD_PIECE, UNK_PIECE, BOS_PIECE, EOS_PIECE)
"""The surface strings of the special tokens, in id order."""


class Tokenizer(abc.ABC):
    """Text <-> ids. Implementations: ``SentencePieceTokenizer``, ``SymbolTokenizer``, and
    ``MarianTokenizer`` for imported Marian models, whose special ids are its own."""

    pad_id: int = PAD_ID
    unk_id: int = UNK_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID
    # Ids that search must never emit; none for our own vocabularies.
    suppressed_ids: tuple[int, ...] = ()

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """The number of ids, special ones included: valid ids are ``0 .. vocab_size - 1``."""

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Turn a sentence into ids, without BOS or EOS.

        Args:
            text: The sentence.

        Returns:
            Its token ids.
        """

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """Encode many sentences (implementations may do this faster than one by one).

        Args:
            texts: The sentences.

        Returns:
            One id list per sentence.
        """
        return [self.encode(text) for text in texts]

    @abc.abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Turn ids back into text, leaving out PAD, BOS and EOS.

        It does not stop at EOS: cutting a hypothesis at its end is the caller's job.
        UNK is shown as a visible marker.

        Args:
            ids: Token ids, each in ``0 .. vocab_size - 1``.

        Returns:
            The text.
        """

    @abc.abstractmethod
    def pieces(self, text: str) -> list[str]:
        """Split a sentence into the token strings the model sees (e.g. for attention pictures).

        Args:
            text: The sentence.

        Returns:
            One string per id of ``encode(text)``.
        """

    @abc.abstractmethod
    def id_to_piece(self, token_id: int) -> str:
        """The string of one id (special ids give ``<pad>``, ``<unk>``, ``<s>``, ``</s>``).

        Args:
            token_id: An id in ``0 .. vocab_size - 1``.

        Returns:
            The token's string.
        """

    @abc.abstractmethod
    def save(self, directory: str | Path, name: str) -> Path:
        """Write the tokenizer into ``directory`` (created if needed), for ``load_tokenizer``.

        Args:
            directory: The folder to write into.
            name: The file name without extension (the implementation adds its own).

        Returns:
            The file written.
        """

    def _check_ids(self, ids: Sequence[int]) -> None:
        """Raise a clear error for ids this vocabulary does not have (e.g. a model/vocab mix-up)."""
        size = self.vocab_size
        bad = [i for i in ids if not 0 <= i < size]
        if bad:
            raise DataError(
                f"token id {bad[0]} is outside this vocabulary (0..{size - 1}); were the model "
                "and the tokenizer saved together?"
            )
