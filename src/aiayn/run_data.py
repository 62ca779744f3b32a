"""The data of a run: raw text read and encoded now, or a prepared dataset opened (`pipeline`).

Raw text (`data.corpus` task, multi30k, files, tsv): read, cleaned, a vocabulary learnt into the
run folder (on the main process, unless the run has one), every pair encoded into Python lists.

A prepared dataset (`data.corpus: prepared`, from `aiayn prepare`): its files are checked
against its manifest (SHA-256), its vocabulary is copied into the run folder, and its splits
are memory-mapped: nothing proportional to the corpus is read into this process. The run
records the dataset's checksum and vocabulary's (run.json `prepared`); opening a dataset that
does not match what the run recorded, or whose vocabulary is not the run's, is refused (e.g.
`--resume` with another `--prepared`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiayn.data import (
    Corpus,
    FilterStats,
    IdPair,
    Vocabularies,
    build_vocabularies,
    encode_pairs,
    load_corpus,
)
from aiayn.data.corpus import PREPARED, DataConfig
from aiayn.data.prepared import PreparedDataset, vocab_sha256
from aiayn.run_sharing import shared_vocabularies
from aiayn.runs import RunDir
from aiayn.training.distributed import DistInfo, on_main


@dataclass
class RunData:
    """What training needs from the data.

    Attributes:
        corpus: Validation text (for BLEU and examples) and cleaning counts; the training text
            too when read raw (empty for a prepared dataset).
        vocabs: The run's vocabularies (loaded from the run folder).
        train: Encoded training pairs (a list, or a memory-mapped split).
        valid: Encoded validation pairs.
        longest: The longest source, or target plus BOS/EOS, of both.
        info: What run.json records about the data.
    """

    corpus: Corpus
    vocabs: Vocabularies
    train: Sequence[IdPair]
    valid: Sequence[IdPair]
    longest: int
    info: dict[str, Any] = field(default_factory=dict)


def _longest(pairs: Sequence[IdPair]) -> int:
    return max((max(len(s), len(t) + 1) for s, t in pairs), default=0)


def load_run_data(config: DataConfig, run: RunDir, dist: DistInfo, has_vocab: bool) -> RunData:
    """Read or open the data, and give the run its vocabulary if it has none yet.

    Args:
        config: The run's data section.
        run: The run folder.
        dist: This process's place (only the main one writes the vocabulary).
        has_vocab: The run already has its vocabulary (resumed): keep it.

    Returns:
        The data.

    Raises:
        DataError: Unreadable data; a prepared dataset that is damaged or is not the one the
            run was trained from.
    """
    if config.corpus == PREPARED:
        return _open_prepared(config, run, dist, has_vocab)
    corpus = load_corpus(config)
    if dist.is_main and not has_vocab:
        vocabs = build_vocabularies(
            corpus.train,
            vocab_size=config.vocab_size,
            joint=config.joint_vocab,
            kind=config.vocab_kind,
            model_type=config.subword,
            seed=config.seed,
        )
        run.path.mkdir(parents=True, exist_ok=True)
        vocabs.save(run.path)
    vocabs = shared_vocabularies(run, dist)
    train = encode_pairs(corpus.train, vocabs)
    valid = encode_pairs(corpus.valid, vocabs)
    info = {
        "train_pairs": len(corpus.train),
        "valid_pairs": len(corpus.valid),
        "filtered": str(corpus.stats),
    }
    return RunData(corpus, vocabs, train, valid, max(_longest(train), _longest(valid)), info)


def _open_prepared(config: DataConfig, run: RunDir, dist: DistInfo, has_vocab: bool) -> RunData:
    assert config.prepared_dir is not None
    dataset = PreparedDataset.open(
        config.prepared_dir, verify="changed" if dist.is_main else "size"
    )

    def check_and_give_vocabulary() -> None:
        # The run directory is rank 0's alone (aiayn.run_sharing); an error raised here is
        # raised on every rank.
        recorded = run.info().get("prepared") if has_vocab and run.info_file.exists() else None
        dataset.check_record(recorded, vocab_sha256(run.path) if has_vocab else None)
        if not has_vocab:
            run.path.mkdir(parents=True, exist_ok=True)
            dataset.vocabularies().save(run.path)

    on_main(check_and_give_vocabulary, dist)
    vocabs = shared_vocabularies(run, dist)
    splits = dataset.manifest["splits"]
    longest = max(
        max(s["longest_src"], s["longest_tgt"] + 1) for s in (splits["train"], splits["valid"])
    )
    stats = FilterStats(kept=len(dataset.train), empty=0, too_long=0)
    corpus = Corpus(train=[], valid=dataset.valid_text, stats=stats)
    info = {
        "train_pairs": len(dataset.train),
        "valid_pairs": len(dataset.valid),
        "filtered": dataset.manifest["filtered"],
        "prepared": dataset.record(),
    }
    return RunData(corpus, vocabs, dataset.train, dataset.valid, longest, info)
