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

from aiayn.data import (
    Batch,
    Collator,
    TokenBatchSampler,
    build_vocabularies,
    clean_pairs,
    encode_pairs,
    load_multi30k,
)

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
