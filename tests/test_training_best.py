"""`checkpoints/best` holds the epoch with the best validation metric: BLEU or NLL, as configured.

A validation hook returns scripted BLEU values whose best epoch is not the epoch of the lowest
validation NLL, so the two settings of `train.best_metric` must pick different epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aiayn import ModelConfig, Transformer
from aiayn.data import build_vocabularies, encode_pairs, make_task
from aiayn.runs import RunDir
from aiayn.training import TrainConfig, Trainer
from aiayn.training.metrics import read_metrics

SCRIPTED_BLEU = [20.0, 35.0, 10.0, 30.0]  # best at epoch 2, while the NLL keeps falling


def fit(out: Path, best_metric: str) -> list[dict]:
    """Train four epochs with the scripted BLEU hook; returns the run's validation records."""
    train = make_task("copy", 300, seed=1, max_len=6)
    valid = make_task("copy", 30, seed=2, max_len=6, exclude={s for s, _ in train})
    vocabs = build_vocabularies(train, kind="symbols")
    size = vocabs.src.vocab_size
    model = Transformer(ModelConfig.tiny(size, size))
    config = TrainConfig(
        max_epochs=len(SCRIPTED_BLEU), max_tokens=256, warmup=10, lr_factor=1.0,
        precision="fp32", progress=False, best_metric=best_metric,
    )  # fmt: skip
    scripted = iter(SCRIPTED_BLEU)  # one value per validation, whatever the hook is told

    def bleu_hook(_model: Transformer, _epoch: int, _step: int) -> dict[str, float]:
        return {"bleu": next(scripted)}

    out.mkdir()
    trainer = Trainer(
        model,
        config,
        encode_pairs(train, vocabs),
        encode_pairs(valid, vocabs),
        RunDir(out),
        torch.device("cpu"),
        hooks=[bleu_hook],
    )
    trainer.fit()
    records = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "valid"]
    assert [r["bleu"] for r in records] == SCRIPTED_BLEU  # one validation per epoch
    return records


def best_meta(out: Path) -> dict:
    return json.loads((out / "checkpoints" / "best" / "meta.json").read_text())


def assert_best_holds_the_weights_of(out: Path, step: int) -> None:
    """checkpoints/best has the weights of the checkpoint saved at `step` (not just its meta)."""
    best = load_file(out / "checkpoints" / "best" / "model.safetensors")
    for folder in (out / "checkpoints").iterdir():
        meta_file = folder / "meta.json"
        if folder.name == "best" or not meta_file.exists():
            continue
        same_step = json.loads(meta_file.read_text())["step"] == step
        weights = load_file(folder / "model.safetensors")
        assert all(torch.equal(best[k], weights[k]) for k in best) == same_step, folder.name


@pytest.mark.parametrize("best_metric", ["bleu", "loss"])
def test_best_checkpoint_follows_best_metric(tmp_path: Path, best_metric: str) -> None:
    records = fit(tmp_path / "run", best_metric)
    by_bleu = max(records, key=lambda r: r["bleu"])
    by_nll = min(records, key=lambda r: r["nll"])
    assert by_bleu["epoch"] != by_nll["epoch"]  # the test can tell the two apart
    chosen = by_bleu if best_metric == "bleu" else by_nll
    meta = best_meta(tmp_path / "run")
    assert (meta["epoch"], meta["step"]) == (chosen["epoch"], chosen["step"])
    assert meta["valid"]["bleu"] == chosen["bleu"] and meta["valid"]["nll"] == chosen["nll"]
    assert_best_holds_the_weights_of(tmp_path / "run", chosen["step"])
