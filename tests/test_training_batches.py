"""The token budget counts every token once: batches fill `max_tokens` and never exceed it."""

from __future__ import annotations

from pathlib import Path

import torch

from aiayn import ModelConfig, Transformer
from aiayn.data import (
    Collator,
    DataConfig,
    TokenBatchSampler,
    build_vocabularies,
    encode_pairs,
    load_corpus,
)
from aiayn.runs import RunDir
from aiayn.training import TrainConfig, Trainer


def test_batches_use_the_whole_token_budget_and_no_more(tmp_path: Path) -> None:
    corpus = load_corpus(DataConfig(task="copy", task_train_size=1500, task_valid_size=20))
    vocabs = build_vocabularies(corpus.train, kind="symbols")
    train = encode_pairs(corpus.train, vocabs)
    model = Transformer(ModelConfig.tiny(vocabs.src.vocab_size, vocabs.tgt.vocab_size))
    max_tokens = 300
    config = TrainConfig(max_tokens=max_tokens, max_steps=1, progress=False, precision="fp32")
    trainer = Trainer(
        model,
        config,
        train,
        encode_pairs(corpus.valid, vocabs),
        RunDir(tmp_path),
        torch.device("cpu"),
    )
    batches = trainer.sampler.epoch_batches(0)
    # The sampler adds the BOS/EOS position itself: the trainer gives it the bare lengths.
    expected = TokenBatchSampler(
        [(len(s), len(t)) for s, t in train], max_tokens, seed=config.seed
    ).epoch_batches(0)
    assert batches == expected
    collate = Collator()
    fill = []
    for indices in batches:
        batch = collate([train[i] for i in indices])
        padded = max(batch.src.numel(), batch.tgt_in.numel())  # what max_tokens bounds
        assert padded <= max_tokens
        fill.append(padded / max_tokens)
    # Counting a token twice would leave every batch at most (L + 1) / (L + 2) full.
    longest = max(max(len(s), len(t) + 1) for s, t in train)
    assert sorted(fill)[len(fill) // 2] > (longest + 1) / (longest + 2)
