"""The same seed gives identical losses on the CPU; another seed does not."""

import json
from pathlib import Path

from aiayn.config import RunConfig
from aiayn.data import DataConfig
from aiayn.pipeline import train
from aiayn.training import TrainConfig


def losses(out: Path, seed: int) -> list[float]:
    config = RunConfig(
        model={"preset": "tiny", "dropout": 0.1},
        data=DataConfig(task="sort", task_train_size=500, task_valid_size=20),
        train=TrainConfig(
            max_steps=8, max_tokens=256, warmup=4, seed=seed, log_every=1, progress=False,
            precision="fp32",
        ),
    )  # fmt: skip
    train(config, out)
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["kind"] == "train"]


def test_same_seed_same_losses(tmp_path: Path) -> None:
    a, b = losses(tmp_path / "a", 7), losses(tmp_path / "b", 7)
    assert len(a) == 8 and a == b
    assert losses(tmp_path / "c", 8) != a
