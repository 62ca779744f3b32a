"""Subword sampling: a segmentation drawn per epoch, reproducible, lossless, resumed exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aiayn.cli import main
from aiayn.data import DataConfig, build_vocabularies, load_multi30k
from aiayn.data.errors import DataError
from aiayn.data.resampling import PerEpochPairs, SampledSegmentations
from aiayn.errors import ConfigError
from aiayn.runs import step_checkpoints
from aiayn.runs.checkpoint import META, WEIGHTS


@pytest.fixture(scope="module")
def pairs(multi30k: Path) -> list[tuple[str, str]]:
    return load_multi30k("train", "en", "de", data_dir=multi30k, download=False)[:600]


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def vocabs(pairs, request):
    return build_vocabularies(pairs, vocab_size=800, model_type=request.param, seed=1)


def test_each_epoch_draws_its_own_segmentation_and_the_same_one_again(pairs, vocabs) -> None:
    sampled = SampledSegmentations(pairs, vocabs, 0.1, seed=7)
    assert isinstance(sampled, PerEpochPairs) and len(sampled) == len(pairs)
    epochs = [sampled.for_epoch(e) for e in range(3)]
    fresh = SampledSegmentations(pairs, vocabs, 0.1, seed=7)
    assert fresh.for_epoch(2) == epochs[2]  # a resumed process draws what the first one did
    assert epochs[0] != epochs[1] != epochs[2]
    assert SampledSegmentations(pairs, vocabs, 0.1, seed=8).for_epoch(2) != epochs[2]
    best = sampled.best()
    assert epochs[0] != best
    for epoch in epochs:  # other pieces, the same text
        for (src_ids, tgt_ids), (src, tgt) in zip(epoch, pairs, strict=True):
            assert vocabs.src.decode(src_ids) == src and vocabs.tgt.decode(tgt_ids) == tgt
    pieces = sum(len(s) + len(t) for s, t in epochs[0])
    assert pieces > sum(len(s) + len(t) for s, t in best)  # smaller pieces on average


def test_a_draw_too_long_for_the_positions_keeps_the_best_segmentation(pairs, vocabs) -> None:
    best = SampledSegmentations(pairs, vocabs, 0.5, seed=1).best()
    limit = max(max(len(s), len(t) + 1) for s, t in best)
    drawn = SampledSegmentations(pairs, vocabs, 0.5, seed=1, longest=limit).for_epoch(0)
    assert max(max(len(s), len(t) + 1) for s, t in drawn) <= limit
    kept = [d == b for d, b in zip(drawn, best, strict=True)]
    assert 0 < sum(kept) < len(kept)  # some fell back, most were drawn


def test_bad_settings_are_refused(pairs, vocabs) -> None:
    with pytest.raises(DataError, match="alpha"):
        SampledSegmentations(pairs, vocabs, 1.0, seed=1)
    symbols = build_vocabularies([("a b", "b a")], kind="symbols")
    with pytest.raises(DataError, match="SentencePiece"):
        SampledSegmentations([("a b", "b a")], symbols, 0.1, seed=1)
    with pytest.raises(ConfigError, match=r"data\.subword_sampling"):
        DataConfig(corpus="task", subword_sampling=0.1)
    with pytest.raises(ConfigError, match=r"data\.subword_sampling"):
        DataConfig(corpus="multi30k", subword_sampling=-0.1)


@pytest.mark.slow  # three short trainings
def test_a_run_resumed_mid_epoch_equals_an_uninterrupted_one(
    multi30k: Path, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resumed epoch is drawn again after the resume, identically (same batches, same
    weights), and it is the first epoch the resumed process draws."""
    base = [
        "train", "--corpus", "multi30k", "--src", "en", "--tgt", "de", "--data-dir",
        str(multi30k), "--preset", "tiny", "--max-tokens", "512", "--precision", "fp32",
        "--valid-bleu", "0", "--no-progress", "--max-epochs", "0", "--warmup", "20",
        "--set", "data.max_train_pairs=150", "--set", "data.max_valid_pairs=20",
        "--set", "data.vocab_size=400", "--set", "data.subword=bpe",
        "--set", "data.subword_sampling=0.1", "--set", "train.average_last=0",
    ]  # fmt: skip
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*base, "--max-steps", "40", "--out", str(whole)]) == 0
    assert main([*base, "--max-steps", "23", "--out", str(parts)]) == 0
    stopped = json.loads((step_checkpoints(parts / "checkpoints")[-1] / META).read_text())
    assert stopped["step"] == 23 and stopped["epoch"] > 0
    drawn: list[int] = []
    for_epoch = SampledSegmentations.for_epoch

    def recorded(self: SampledSegmentations, epoch: int) -> list:
        drawn.append(epoch)
        return for_epoch(self, epoch)

    monkeypatch.setattr(SampledSegmentations, "for_epoch", recorded)
    assert main(["train", "--out", str(parts), "--resume", "--max-steps", "40"]) == 0
    assert drawn[0] == stopped["epoch"] and drawn == sorted(drawn), drawn
    last = [step_checkpoints(run / "checkpoints")[-1] for run in (whole, parts)]
    assert last[0].name == last[1].name == "step-00000040"
    a, b = (load_file(str(path / WEIGHTS)) for path in last)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # and the draws mattered: the same run without sampling ends elsewhere
    plain = tmp_path / "plain"
    no_sampling = [*base[:-4], "--set", "train.average_last=0"]
    assert main([*no_sampling, "--max-steps", "40", "--out", str(plain)]) == 0
    c = load_file(str(step_checkpoints(plain / "checkpoints")[-1] / WEIGHTS))
    assert any(not torch.equal(a[k], c[k]) for k in a)
