"""torchrun with 2 CPU processes (gloo) equals 1 process with --update-freq 2 on the same data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aiayn.data import DataConfig, TokenBatchSampler, load_corpus
from aiayn.runs import step_checkpoints
from aiayn.runs.checkpoint import WEIGHTS

COMMON = [
    "train", "--task", "reverse", "--max-steps", "6", "--max-tokens", "600",
    "--precision", "fp32", "--valid-bleu", "0", "--no-progress", "--seed", "3",
    "--set", "data.task_train_size=2000", "--set", "data.task_valid_size=40",
    "--set", "model.dropout=0.0", "--set", "train.warmup=10", "--set", "train.log_every=1",
]  # fmt: skip


def train_losses(run: Path) -> list[float]:
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["kind"] == "train"]


def rank_token_counts() -> list[list[int]]:
    """Target tokens of each rank's first 6 batches, as the runs below see them."""
    corpus = load_corpus(DataConfig(task_train_size=2000, task_valid_size=40))
    lengths = [(len(s.split()), len(t.split()) + 1) for s, t in corpus.train]
    counts = []
    for rank in (0, 1):
        sampler = TokenBatchSampler(lengths, 600, seed=3, num_replicas=2, rank=rank)
        batches = sampler.epoch_batches(0)[:6]
        counts.append([sum(lengths[i][1] for i in batch) for batch in batches])
    return counts


@pytest.mark.slow  # torchrun and training subprocesses
def test_two_processes_match_one_with_accumulation(tmp_path: Path) -> None:
    rank0, rank1 = rank_token_counts()
    assert rank0 != rank1  # the ranks see unequal token counts: the normalisation matters
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, double = tmp_path / "single", tmp_path / "ddp"
    subprocess.run(
        [sys.executable, "-m", "aiayn", *COMMON, "--update-freq", "2", "--out", str(single)],
        check=True,
        env=env,
        capture_output=True,
    )
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*launcher, "-m", "aiayn", *COMMON, "--out", str(double)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    a = load_file(str(step_checkpoints(single / "checkpoints")[-1] / WEIGHTS))
    b = load_file(str(step_checkpoints(double / "checkpoints")[-1] / WEIGHTS))
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-5, rtol=0)
    losses_a, losses_b = train_losses(single), train_losses(double)
    assert len(losses_a) == len(losses_b) == 6
    for x, y in zip(losses_a, losses_b, strict=True):
        assert abs(x - y) < 1e-5, (losses_a, losses_b)
    assert losses_a[0] > losses_a[-1]  # it trained
