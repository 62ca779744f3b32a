"""Source and target vocabularies as one object: build, save into a run folder, load.

A *joint* vocabulary is one tokenizer for both languages. The paper shares it between source
and target for English-German, which lets the model tie the embeddings of encoder, decoder
and output layer and copy names and numbers. Separate vocabularies suit languages with
different scripts, and are also the way to run synthetic tasks whose source and target use
different symbols (e.g. ``add``'s ``+``).

In a run folder the vocabularies live in ``tokenizer/``: ``joint.model`` (or ``src.model`` and
``tgt.model``; ``.symbols.json`` for symbol vocabularies; ``.marian.json`` for a model imported
from Marian) plus ``vocabularies.json``, which says which files are which and whether sources
end with EOS (only imported Marian models were trained so).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiayn.data.errors import DataError
from aiayn.data.marian_tokenizer import SUFFIX as MARIAN_SUFFIX
from aiayn.data.marian_tokenizer import MarianTokenizer
from aiayn.data.sentencepiece_tokenizer import SUFFIX as SP_SUFFIX
from aiayn.data.sentencepiece_tokenizer import SentencePieceTokenizer
from aiayn.data.symbol_tokenizer import SUFFIX as SYMBOLS_SUFFIX
from aiayn.data.symbol_tokenizer import SymbolTokenizer
from aiayn.data.text_files import Pair
from aiayn.data.tokenizer import Tokenizer

KINDS: tuple[str, ...] = ("sentencepiece", "symbols")
TOKENIZER_DIR = "tokenizer"
INDEX_FILE = "vocabularies.json"

IdPair = tuple[list[int], list[int]]
"""A (source ids, target ids) pair, without BOS or EOS."""


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer saved by ``Tokenizer.save``, choosing the class by the file name.

    Args:
        path: A ``.model`` (SentencePiece), ``.symbols.json`` (symbols) or ``.marian.json``
            (an imported Marian vocabulary) file.

    Returns:
        The tokenizer.

    Raises:
        DataError: If the file is missing, unreadable or of an unknown kind.
    """
    path = Path(path)
    if path.name.endswith(SYMBOLS_SUFFIX):
        return SymbolTokenizer.load(path)
    if path.name.endswith(MARIAN_SUFFIX):
        return MarianTokenizer.load(path)
    if path.name.endswith(SP_SUFFIX):
        return SentencePieceTokenizer.load(path)
    raise DataError(
        f"{path}: unknown tokenizer file; expected a name ending in {SP_SUFFIX}, "
        f"{SYMBOLS_SUFFIX} or {MARIAN_SUFFIX}"
    )


def default_vocab_size(n_sentences: int) -> int:
    """A subword vocabulary size that suits a corpus of ``n_sentences`` training sentences.

    Grows with the square root of the corpus: 8000 for Multi30k's joint English-German
    vocabulary (2 x 29000 sentences), 32000 at most (the paper used about 37000 for 4.5
    million WMT sentence pairs), 1000 at least, rounded to a multiple of 500. Too large a
    vocabulary on a small corpus leaves most pieces too rare to learn.

    Args:
        n_sentences: Sentences the vocabulary is learnt from (both sides, for a joint one).

    Returns:
        The vocabulary size to ask for.
    """
    size = 8000 * math.sqrt(max(n_sentences, 0) / 58000)
    return int(min(32000, max(1000, round(size / 500) * 500)))


@dataclass(frozen=True)
class Vocabularies:
    """The tokenizers of a translation direction.

    Attributes:
        src: Tokenizer of the source language.
        tgt: Tokenizer of the target language.
        joint: True when ``src`` and ``tgt`` are one and the same shared vocabulary.
        source_eos: sources end with ``src.eos_id`` (Marian models were trained so; ours
            never are).
    """

    src: Tokenizer
    tgt: Tokenizer
    joint: bool
    source_eos: bool = False

    def __post_init__(self) -> None:
        if self.joint and self.src is not self.tgt:
            raise DataError("a joint vocabulary needs the same tokenizer object for src and tgt")

    @property
    def kind(self) -> str:
        """``"sentencepiece"``, ``"symbols"`` or ``"marian"``."""
        if isinstance(self.src, MarianTokenizer):
            return "marian"
        return "symbols" if isinstance(self.src, SymbolTokenizer) else "sentencepiece"

    def save(self, run_dir: str | Path) -> Path:
        """Write the vocabularies into ``run_dir/tokenizer/``.

        Args:
            run_dir: The run folder (created if needed).

        Returns:
            The ``tokenizer`` folder.
        """
        folder = Path(run_dir) / TOKENIZER_DIR
        if self.joint:
            src_file = tgt_file = self.src.save(folder, "joint").name
        else:
            src_file = self.src.save(folder, "src").name
            tgt_file = self.tgt.save(folder, "tgt").name
        index = {
            "kind": self.kind,
            "joint": self.joint,
            "src": src_file,
            "tgt": tgt_file,
            "source_eos": self.source_eos,
        }
        (folder / INDEX_FILE).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, run_dir: str | Path) -> Vocabularies:
        """Load vocabularies saved by ``save``.

        Args:
            run_dir: The run folder (the one holding ``tokenizer/``).

        Returns:
            The vocabularies.

        Raises:
            DataError: If ``tokenizer/vocabularies.json`` or a file it names is missing or bad.
        """
        folder = Path(run_dir) / TOKENIZER_DIR
        index_path = folder / INDEX_FILE
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            joint, src_file, tgt_file = bool(index["joint"]), index["src"], index["tgt"]
            source_eos = index.get("source_eos", False)  # absent in runs made before it existed
        except OSError as e:
            raise DataError(f"{index_path}: cannot read ({e.strerror})") from None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{index_path}: not a vocabulary index ({e!r})") from None
        if not isinstance(source_eos, bool):
            raise DataError(f"{index_path}: source_eos must be true or false, got {source_eos!r}")
        src = load_tokenizer(folder / src_file)
        tgt = src if joint else load_tokenizer(folder / tgt_file)
        return cls(src=src, tgt=tgt, joint=joint, source_eos=source_eos)


def build_vocabularies(
    pairs: Sequence[Pair],
    vocab_size: int | None = None,
    joint: bool = True,
    kind: str = "sentencepiece",
    model_type: str = "unigram",
    *,
    seed: int = 0,
    character_coverage: float = 1.0,
    num_threads: int = 2,
) -> Vocabularies:
    """Learn source and target vocabularies from training pairs.

    Args:
        pairs: Training (source, target) pairs (clean them first; see ``clean_pairs``).
        vocab_size: Ids per vocabulary (SentencePiece only; ignored for symbols). None picks
            ``default_vocab_size`` of the sentences each vocabulary learns from.
        joint: One shared vocabulary for both sides, or one per side.
        kind: ``"sentencepiece"`` for subwords or ``"symbols"`` for whitespace symbols.
        model_type: SentencePiece model, ``"unigram"`` or ``"bpe"``.
        seed: Seed of SentencePiece training.
        character_coverage: SentencePiece's share of characters that get their own piece.
        num_threads: SentencePiece training threads.

    Returns:
        The vocabularies.

    Raises:
        DataError: For an unknown kind, no pairs, or a SentencePiece training failure.
    """
    if kind not in KINDS:
        raise DataError(f"unknown vocabulary kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not pairs:
        raise DataError("cannot build vocabularies from no sentence pairs")
    src_texts = [src for src, _ in pairs]
    tgt_texts = [tgt for _, tgt in pairs]

    def train(texts: list[str]) -> Tokenizer:
        if kind == "symbols":
            return SymbolTokenizer.train(texts)
        return SentencePieceTokenizer.train(
            texts,
            vocab_size if vocab_size is not None else default_vocab_size(len(texts)),
            model_type=model_type,
            character_coverage=character_coverage,
            seed=seed,
            num_threads=num_threads,
        )

    if joint:
        shared = train(src_texts + tgt_texts)
        return Vocabularies(src=shared, tgt=shared, joint=True)
    return Vocabularies(src=train(src_texts), tgt=train(tgt_texts), joint=False)


def encode_pairs(pairs: Sequence[Pair], vocabs: Vocabularies) -> list[IdPair]:
    """Turn text pairs into id pairs, without BOS or EOS (the collator adds those).

    Args:
        pairs: (source, target) text pairs.
        vocabs: The vocabularies to encode with.

    Returns:
        One (source ids, target ids) pair per input pair, in order.
    """
    src = vocabs.src.encode_batch(src for src, _ in pairs)
    tgt = vocabs.tgt.encode_batch(tgt for _, tgt in pairs)
    return list(zip(src, tgt, strict=True))
