"""A vocabulary of whole whitespace-separated symbols, for the synthetic tasks.

Synthetic tasks (copy, reverse, sort, add) are already sequences of symbols, and splitting
them into subwords would only blur what the model has to learn: one symbol is one token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from aiayn.data.errors import DataError
from aiayn.data.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_PIECES,
    UNK_ID,
    Tokenizer,
)

SUFFIX = ".symbols.json"
_FORMAT = "aiayn-symbols-v1"


class SymbolTokenizer(Tokenizer):
    """One id per whitespace-separated symbol; ids 0..3 are the special tokens.

    Args:
        symbols: The vocabulary without special tokens, in id order (the first gets id 4).

    Raises:
        DataError: If a symbol is empty, contains whitespace, repeats, or is a special token.
    """

    def __init__(self, symbols: Sequence[str]) -> None:
        symbols = list(symbols)
        for symbol in symbols:
            if not symbol or symbol.split() != [symbol]:
                raise DataError(f"symbol {symbol!r} is empty or contains whitespace")
            if symbol in SPECIAL_PIECES:
                raise DataError(f"symbol {symbol!r} is reserved for a special token")
        if len(set(symbols)) != len(symbols):
            raise DataError("symbols repeat; each must appear once")
        self._pieces = [*SPECIAL_PIECES, *symbols]
        self._ids = {piece: i for i, piece in enumerate(self._pieces)}

    @classmethod
    def train(cls, texts: Iterable[str]) -> SymbolTokenizer:
        """Collect every symbol of the training texts, in sorted order for stable ids.

        Args:
            texts: Sentences of whitespace-separated symbols.

        Returns:
            The tokenizer.
        """
        found = {symbol for text in texts for symbol in text.split()}
        return cls(sorted(found - set(SPECIAL_PIECES)))

    @classmethod
    def load(cls, path: str | Path) -> SymbolTokenizer:
        """Load a tokenizer saved by ``save``.

        Args:
            path: The ``.symbols.json`` file.

        Returns:
            The tokenizer.

        Raises:
            DataError: If the file is missing or is not a saved symbol vocabulary.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise DataError(f"{path}: cannot read symbol vocabulary ({e.strerror})") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise DataError(f"{path}: not a symbol vocabulary (expected format {_FORMAT!r})")
        try:
            return cls(data["symbols"])
        except DataError as e:
            raise DataError(f"{path}: {e}") from None

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    @property
    def symbols(self) -> list[str]:
        """The vocabulary without special tokens, in id order."""
        return self._pieces[len(SPECIAL_PIECES) :]

    def encode(self, text: str) -> list[int]:
        return [self._ids.get(symbol, UNK_ID) for symbol in text.split()]

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        self._check_ids(ids)
        return " ".join(self._pieces[i] for i in ids if i not in (PAD_ID, BOS_ID, EOS_ID))

    def pieces(self, text: str) -> list[str]:
        return [self._pieces[i] for i in self.encode(text)]

    def id_to_piece(self, token_id: int) -> str:
        self._check_ids([token_id])
        return self._pieces[token_id]

    def save(self, directory: str | Path, name: str) -> Path:
        path = Path(directory) / f"{name}{SUFFIX}"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": _FORMAT, "symbols": self.symbols}
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return f"SymbolTokenizer(vocab_size={self.vocab_size})"
