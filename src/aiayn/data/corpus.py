"""Which text to train on: a frozen `DataConfig` (the YAML keys of `data:`) and its loader."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiayn.data.cleaning import FilterStats, clean_pairs, split_holdout
from aiayn.data.errors import DataError
from aiayn.data.multi30k import load_multi30k
from aiayn.data.synthetic import TASKS, make_task
from aiayn.data.text_files import Pair, read_parallel, read_tsv
from aiayn.data.wmt14 import WMT14_LANGUAGES, load_wmt14
from aiayn.errors import ConfigError
from aiayn.typed_config import check_types

IMPORTED = "imported"
"""The corpus of a run made by `aiayn import-hf`: a model trained elsewhere, no data of its own."""
PREPARED = "prepared"
"""The corpus of a run trained from a dataset made by `aiayn prepare` (data.prepared_dir)."""
CORPORA = ("task", "multi30k", "wmt14", "files", "tsv", PREPARED, IMPORTED)


@dataclass(frozen=True)
class DataConfig:
    """Where the parallel text comes from and how it is cut into subwords."""

    # "task" (synthetic), "multi30k", "wmt14" (the paper's en-de data), "files" (two aligned
    # files), "tsv", "prepared" (a dataset made by `aiayn prepare`), or "imported" (a run made
    # by `aiayn import-hf`, which has no training data)
    corpus: str = "task"
    task: str = "reverse"  # synthetic task: copy, reverse, sort or add
    task_train_size: int = 20000  # synthetic training examples
    task_valid_size: int = 500  # synthetic validation examples (disjoint from training)
    task_max_len: int = 12  # longest synthetic sequence (symbols; for add: digits per operand)
    src_lang: str = "de"  # Multi30k source language (en, de, fr, cs); WMT14: de or en
    tgt_lang: str = "en"  # Multi30k / WMT14 target language
    data_dir: str | None = None  # folder with the Multi30k (or WMT14) files; else a cache folder
    checksum_file: str | None = None  # WMT14: sha256sum-style pins replacing built-in checks
    train_split: str = "train"  # Multi30k split to train on
    valid_split: str = "val"  # Multi30k split to validate on
    src_file: str | None = None  # corpus "files": training source file (plain or .gz)
    tgt_file: str | None = None  # corpus "files": training target file
    valid_src_file: str | None = None  # corpus "files": validation source (else a held-out slice)
    valid_tgt_file: str | None = None  # corpus "files": validation target
    tsv: str | None = None  # corpus "tsv": one file, source<TAB>target per line
    prepared_dir: str | None = None  # corpus "prepared": the folder `aiayn prepare` wrote
    max_train_pairs: int | None = None  # use only the first N training pairs (quick experiments)
    max_valid_pairs: int | None = None  # use only the first N validation pairs
    valid_holdout: int = 1000  # pairs held out for validation when no validation files are given
    max_len: int = 200  # drop training pairs with a side longer than this (whitespace tokens)
    vocab_size: int | None = None  # subword vocabulary size; None = sized for the corpus
    joint_vocab: bool = True  # one vocabulary for both sides (needed to share embeddings)
    subword: str = "unigram"  # sentencepiece model: "unigram" or "bpe"
    subword_sampling: float = 0.0  # > 0: draw each training pair's segmentation anew every
    #   epoch, with this BPE-dropout probability (bpe) or smoothing alpha (unigram); raw
    #   text corpora only; validation and search keep the best segmentation. 0 = off
    seed: int = 1  # seeds synthetic data and held-out slices

    def __post_init__(self) -> None:
        check_types(self, "data")
        for name in ("task_train_size", "task_valid_size", "task_max_len", "max_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_train_pairs", "max_valid_pairs", "vocab_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(
                    f"data.{name} must be at least 1 or null, got {getattr(self, name)}"
                )
        if self.corpus not in CORPORA:
            raise ConfigError(f"data.corpus must be one of {CORPORA}, got {self.corpus!r}")
        if self.corpus == "task" and self.task not in TASKS:
            raise ConfigError(f"data.task must be one of {TASKS}, got {self.task!r}")
        if self.corpus == "files" and not (self.src_file and self.tgt_file):
            raise ConfigError("data.corpus 'files' needs data.src_file and data.tgt_file")
        if bool(self.valid_src_file) != bool(self.valid_tgt_file):
            raise ConfigError("give both data.valid_src_file and data.valid_tgt_file, or neither")
        if self.corpus == "tsv" and not self.tsv:
            raise ConfigError("data.corpus 'tsv' needs data.tsv")
        if self.corpus == "wmt14" and {self.src_lang, self.tgt_lang} != set(WMT14_LANGUAGES):
            raise ConfigError(
                f"data.corpus 'wmt14' is de-en or en-de, got {self.src_lang}-{self.tgt_lang}"
            )
        if self.corpus == PREPARED and not self.prepared_dir:
            raise ConfigError("data.corpus 'prepared' needs data.prepared_dir")
        if self.subword not in ("unigram", "bpe"):
            raise ConfigError(f"data.subword must be 'unigram' or 'bpe', got {self.subword!r}")
        if not 0.0 <= self.subword_sampling < 1.0:
            raise ConfigError(
                f"data.subword_sampling must be in [0, 1), got {self.subword_sampling}"
            )
        if self.subword_sampling and self.corpus in ("task", PREPARED, IMPORTED):
            raise ConfigError(
                f"data.subword_sampling re-segments raw text every epoch; data.corpus "
                f"{self.corpus!r} has none (use multi30k, wmt14, files or tsv)"
            )

    @property
    def vocab_kind(self) -> str:
        """Synthetic tasks use whole symbols; real text uses sentencepiece subwords."""
        return "symbols" if self.corpus == "task" else "sentencepiece"

    @property
    def name(self) -> str:
        """A short description, for logs."""
        if self.corpus == "task":
            return f"task:{self.task}"
        if self.corpus in ("multi30k", "wmt14"):
            return f"{self.corpus}:{self.src_lang}-{self.tgt_lang}"
        if self.corpus == IMPORTED:
            return IMPORTED
        if self.corpus == PREPARED:
            return f"{PREPARED}:{self.prepared_dir}"
        return f"{self.corpus}:{self.tsv or self.src_file}"


@dataclass
class Corpus:
    """Training and validation pairs, and what cleaning removed."""

    train: list[Pair]
    valid: list[Pair]
    stats: FilterStats
    notes: list[str] = field(default_factory=list)


def load_corpus(config: DataConfig) -> Corpus:
    """Read (or generate) the training and validation pairs that `config` describes.

    Training pairs are cleaned (empty pairs skipped, pairs longer than `max_len` dropped; both
    counted in `stats`); validation pairs only lose empty ones.

    Raises:
        DataError: unreadable or mismatched files, unknown splits or languages, or an imported
            run (which has no data).
    """
    notes: list[str] = []
    if config.corpus == IMPORTED:
        raise DataError(
            "this run was imported (aiayn import-hf): it has no training or validation data"
        )
    if config.corpus == PREPARED:
        raise DataError(
            f"data.corpus 'prepared' ({config.prepared_dir}) is opened with "
            "aiayn.data.prepared.PreparedDataset, not read as text"
        )
    if config.corpus == "task":
        length = {"max_len": config.task_max_len}
        train = make_task(config.task, config.task_train_size, config.seed, **length)
        valid = make_task(
            config.task,
            config.task_valid_size,
            config.seed + 1,
            exclude={s for s, _ in train},
            **length,
        )
    elif config.corpus == "multi30k":
        load = dict(src_lang=config.src_lang, tgt_lang=config.tgt_lang, data_dir=config.data_dir)
        train = load_multi30k(config.train_split, **load)
        valid = load_multi30k(config.valid_split, **load)
    elif config.corpus == "wmt14":
        load = dict(src_lang=config.src_lang, tgt_lang=config.tgt_lang, data_dir=config.data_dir)
        load["checksum_file"] = config.checksum_file
        train = load_wmt14("train", **load)
        valid = load_wmt14("newstest2013", **load)
    else:
        if config.corpus == "tsv":
            assert config.tsv is not None
            pairs = read_tsv(config.tsv)
        else:
            assert config.src_file is not None and config.tgt_file is not None
            pairs = read_parallel(config.src_file, config.tgt_file)
        if config.valid_src_file and config.valid_tgt_file:
            train, valid = pairs, read_parallel(config.valid_src_file, config.valid_tgt_file)
        else:
            if len(pairs) < 2 * config.valid_holdout:
                raise DataError(
                    f"{len(pairs)} pairs are too few to hold out {config.valid_holdout} for "
                    "validation: give validation files or a smaller data.valid_holdout"
                )
            train, valid = split_holdout(pairs, config.valid_holdout, config.seed)
            notes.append(f"held out {len(valid)} training pairs for validation")
    if config.max_train_pairs is not None:
        train = train[: config.max_train_pairs]
    if config.max_valid_pairs is not None:
        valid = valid[: config.max_valid_pairs]
    train, stats = clean_pairs(train, max_len=config.max_len)
    valid, _ = clean_pairs(valid)
    if not train:
        raise DataError(f"no training pairs left in {config.name} after cleaning ({stats})")
    if not valid:
        raise DataError(f"no validation pairs in {config.name}")
    return Corpus(train, valid, stats, notes)
