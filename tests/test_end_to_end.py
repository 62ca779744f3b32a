"""A tiny model learns a synthetic task end to end; without the right shift it cannot."""

from pathlib import Path

import pytest
from tests.helpers import UnshiftedCollator

import aiayn.training.trainer
from aiayn.cli import main
from aiayn.config import RunConfig
from aiayn.data import DataConfig
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.translator import Translator
from aiayn.evaluation.validation import exact_match
from aiayn.pipeline import PreparedRun, prepare
from aiayn.training import TrainConfig

# Measured: 100% exact match for seeds 1-3 (the last 4 checkpoints, 50 updates apart, averaged).
CONFIG = RunConfig(
    model={"preset": "tiny", "d_model": 64, "d_ff": 128},
    data=DataConfig(task="copy", task_train_size=4000, task_valid_size=200, task_max_len=8),
    train=TrainConfig(
        max_steps=500, max_epochs=0, max_tokens=1024, warmup=100, lr_factor=0.2,
        save_every=50, keep_last=4, average_last=4, precision="fp32", progress=False,
    ),
    decode=DecodeConfig(beam_size=1),
)  # fmt: skip


def train_and_score(out: Path) -> tuple[PreparedRun, float]:
    prepared = prepare(CONFIG, out)
    prepared.trainer.fit()
    translator = Translator.from_run(out)  # the averaged checkpoint
    sources = [s for s, _ in prepared.corpus.valid]
    hyps = translator.translate(sources)
    return prepared, exact_match(hyps, [t for _, t in prepared.corpus.valid])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[PreparedRun, float]:
    return train_and_score(tmp_path_factory.mktemp("e2e") / "copy")


@pytest.mark.slow  # `trained` trains a model
def test_tiny_model_learns_the_copy_task(trained: tuple[PreparedRun, float]) -> None:
    _, score = trained
    assert score >= 95.0, score


@pytest.mark.slow  # trains a model
def test_without_the_shift_it_does_not_learn(tmp_path: Path, monkeypatch) -> None:
    # The trainer builds its batches (training and validation) with this broken collator.
    monkeypatch.setattr(aiayn.training.trainer, "Collator", UnshiftedCollator)
    prepared, score = train_and_score(tmp_path / "unshifted")
    assert isinstance(prepared.trainer.collator, UnshiftedCollator)
    assert score < 50.0, score


@pytest.mark.slow  # `trained` trains a model
def test_aiayn_translate_reproduces_the_held_out_targets(
    trained: tuple[PreparedRun, float], tmp_path: Path
) -> None:
    prepared, _ = trained
    src = tmp_path / "held_out.src"
    src.write_text("".join(s + "\n" for s, _ in prepared.corpus.valid))
    out = tmp_path / "held_out.hyp"
    run = str(prepared.run.path)
    assert main(["translate", "--run", run, "--input", str(src), "--output", str(out)]) == 0
    hyps = out.read_text().splitlines()
    assert exact_match(hyps, [t for _, t in prepared.corpus.valid]) >= 95.0
