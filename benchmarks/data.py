"""The batches every case runs on: real Multi30k sentences and the thread's fixed shape.

Multi30k-like batches are what our trainer feeds the model: de->en pairs, cleaned, cut into
subwords by a joint 8000-piece SentencePiece vocabulary (trained in memory on a subset, so
nothing is cached on disk), length-bucketed by `TokenBatchSampler` into batches of 128
sentences, and collated into `Batch`es (target shifted right, masks True = real token).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from aiayn.config import RunConfig
from aiayn.data import (
    Batch,
    Collator,
    IdPair,
    TokenBatchSampler,
    build_vocabularies,
    clean_pairs,
    encode_pairs,
    load_corpus,
    load_multi30k,
)
from aiayn.model import ModelConfig

VOCAB_SIZE = 8000
SP_TRAIN_PAIRS = 8000  # enough sentences for all 8000 pieces, trained in under a second
BATCH_SENTENCES = 128


def default_data_dir() -> Path | None:
    """The shared Multi30k copy beside the repository if there is one (the tests read it too),
    else None: `load_multi30k` then uses $AIAYN_DATA_DIR or its cache (downloading if needed)."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"
    return shared if (shared / "train.de.gz").exists() else None


@dataclass(frozen=True)
class Workload:
    """A fixed list of batches and what they hold.

    Attributes:
        name: short label for tables.
        batches: the batches, identical for every model.
        vocab_size: joint vocabulary size the models must be built with.
    """

    name: str
    batches: list[Batch]
    vocab_size: int

    @property
    def real_tgt_tokens(self) -> int:
        """Non-pad target positions (labels the loss counts, EOS included), all batches."""
        return sum(b.n_tgt_tokens for b in self.batches)

    @property
    def padded_tgt_tokens(self) -> int:
        """Target positions including padding."""
        return sum(b.tgt_in.numel() for b in self.batches)

    def lengths(self) -> tuple[list[int], list[int]]:
        """Real source and decoder lengths of every sentence, for `forward_flops`."""
        src = [n for b in self.batches for n in b.src_mask.sum(1).tolist()]
        tgt = [n for b in self.batches for n in b.tgt_mask.sum(1).tolist()]
        return src, tgt

    def padded_lengths(self) -> tuple[list[int], list[int]]:
        """Source and decoder lengths with padding: every sentence as long as its batch."""
        src = [b.src.shape[1] for b in self.batches for _ in range(b.batch_size)]
        tgt = [b.tgt_in.shape[1] for b in self.batches for _ in range(b.batch_size)]
        return src, tgt

    def head(self, n: int) -> Workload:
        """The first `n` batches."""
        return Workload(self.name, self.batches[:n], self.vocab_size)

    def describe(self) -> str:
        sentences = sum(b.batch_size for b in self.batches)
        pad = 1 - self.real_tgt_tokens / self.padded_tgt_tokens
        return (
            f"{self.name}: {len(self.batches)} batches, {sentences} sentences, "
            f"{self.real_tgt_tokens} real target tokens ({pad:.0%} target padding)"
        )


def multi30k_workload(n_batches: int, data_dir: Path | None = None, seed: int = 0) -> Workload:
    """`n_batches` batches of 128 Multi30k de->en sentence pairs, bucketed as in training.

    The batches are drawn at random (seeded) from one epoch of `TokenBatchSampler`, so they
    span the corpus's length distribution the way a training run sees it.
    """
    pairs = load_multi30k("train", "de", "en", data_dir=data_dir or default_data_dir())
    pairs, _ = clean_pairs(pairs, max_len=200)  # the trainer's DataConfig.max_len
    vocabs = build_vocabularies(pairs[:SP_TRAIN_PAIRS], vocab_size=VOCAB_SIZE, joint=True)
    examples = encode_pairs(pairs, vocabs)
    # As the trainer builds its sampler; max_tokens high enough that 128 sentences is the bound.
    sampler = TokenBatchSampler(
        [(len(s), len(t)) for s, t in examples],
        max_tokens=10**9,
        max_sentences=BATCH_SENTENCES,
        seed=seed,
    )
    epoch = [b for b in sampler.epoch_batches(0) if len(b) == BATCH_SENTENCES]
    chosen = random.Random(seed).sample(epoch, n_batches)
    collate = Collator()
    batches = [collate([examples[i] for i in indices]) for indices in chosen]
    return Workload("multi30k", batches, vocabs.src.vocab_size)


def fixed_shape_workload(
    batch: int = 32, src_len: int = 128, tgt_len: int = 64, vocab_size: int = VOCAB_SIZE
) -> Workload:
    """The thread's shape: `batch` sentences of exactly `src_len` / `tgt_len` tokens, no padding."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, vocab_size, (batch, src_len), generator=g)
    tgt = torch.randint(4, vocab_size, (batch, tgt_len), generator=g)
    examples = [(s.tolist(), t[:-1].tolist()) for s, t in zip(src, tgt, strict=True)]
    return Workload(f"B{batch} S{src_len} T{tgt_len}", [Collator()(examples)], vocab_size)


def recipe_examples(
    config: RunConfig, max_pairs: int | None = None
) -> tuple[ModelConfig, list[IdPair]]:
    """A run config's model and its training pairs, encoded as its run would encode them.

    The vocabulary is learnt in memory (one thread, seed 1: the same pieces every call); a
    Multi30k config without a data folder reads the shared copy when there is one.

    Args:
        config: The run config (its model, data and vocabulary settings are used).
        max_pairs: Read only the first this many training pairs (None: the config's).

    Returns:
        The model config for the learnt vocabulary, and the encoded training pairs.
    """
    if max_pairs is not None:
        config = config.replace("data", max_train_pairs=max_pairs)
    if config.data.corpus == "multi30k" and config.data.data_dir is None:
        shared = default_data_dir()
        if shared is not None:
            config = config.replace("data", data_dir=str(shared))
    data = config.data
    corpus = load_corpus(data)
    vocabs = build_vocabularies(
        corpus.train, data.vocab_size, data.joint_vocab, model_type=data.subword, seed=1,
        num_threads=1,
    )  # fmt: skip
    model = config.model_config(vocabs.src.vocab_size, vocabs.tgt.vocab_size)
    return model, encode_pairs(corpus.train, vocabs)


def bucketed_batches(
    examples: list[IdPair], max_tokens: int, n_batches: int, seed: int = 0
) -> list[Batch]:
    """`n_batches` batches drawn at random (seeded) from one epoch of the trainer's sampler
    at `max_tokens`, collated as the trainer collates them."""
    sampler = TokenBatchSampler([(len(s), len(t)) for s, t in examples], max_tokens, seed=1)
    chosen = random.Random(seed).sample(list(sampler.epoch_batches(0)), n_batches)
    return [Collator()([examples[i] for i in b]) for b in chosen]
