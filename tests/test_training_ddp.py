"""torchrun with 2 CPU processes (gloo): equal to 1 process with --update-freq 2 on the same data,
sharded validation with the same figures, per-rank random states, and a Ctrl-C that reaches only
one rank still stops both after the same update.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aiayn.data import DataConfig, TokenBatchSampler, load_corpus
from aiayn.runs import load_trainer_state, step_checkpoints
from aiayn.runs.checkpoint import WEIGHTS

COMMON = [
    "train", "--task", "reverse", "--max-steps", "6", "--max-tokens", "600",
    "--precision", "fp32", "--valid-bleu", "0", "--no-progress", "--seed", "3",
    "--set", "data.task_train_size=2000", "--set", "data.task_valid_size=40",
    "--set", "model.dropout=0.0", "--set", "train.warmup=10", "--set", "train.log_every=1",
]  # fmt: skip


def train_records(run: Path, kind: str = "train") -> list[dict]:
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == kind]


pytestmark = pytest.mark.slow  # two torchrun launches of two processes each

LAUNCHER = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def rank_token_counts() -> list[list[int]]:
    """Target tokens of each rank's first 6 batches, as the runs below see them."""
    corpus = load_corpus(DataConfig(task_train_size=2000, task_valid_size=40))
    # As the trainer sees them: lengths without BOS/EOS (the sampler adds one to the target).
    lengths = [(len(s.split()), len(t.split())) for s, t in corpus.train]
    counts = []
    for rank in (0, 1):
        sampler = TokenBatchSampler(lengths, 600, seed=3, num_replicas=2, rank=rank)
        batches = sampler.epoch_batches(0)[:6]
        # Target tokens the loss counts: the target and its EOS.
        counts.append([sum(lengths[i][1] + 1 for i in batch) for batch in batches])
    return counts


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
    done = subprocess.run(
        [*LAUNCHER, "-m", "aiayn", *COMMON, "--out", str(double)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    a = load_file(str(step_checkpoints(single / "checkpoints")[-1] / WEIGHTS))
    b = load_file(str(step_checkpoints(double / "checkpoints")[-1] / WEIGHTS))
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-5, rtol=0)
    # Each update saw exactly the target tokens of both ranks' batches (each token counted once).
    expected_tokens = [a + b for a, b in zip(rank0, rank1, strict=True)]
    for records in (train_records(single), train_records(double)):
        assert [r["tokens"] for r in records] == expected_tokens
    losses_a = [r["loss"] for r in train_records(single)]
    losses_b = [r["loss"] for r in train_records(double)]
    assert len(losses_a) == len(losses_b) == 6
    for x, y in zip(losses_a, losses_b, strict=True):
        assert abs(x - y) < 1e-5, (losses_a, losses_b)
    assert losses_a[0] > losses_a[-1]  # it trained
    # Each rank validated half of the batches; the sums over ranks give the same figures.
    (valid_a,) = train_records(single, "valid")
    (valid_b,) = train_records(double, "valid")
    for key in ("loss", "nll", "ppl"):
        assert abs(valid_a[key] - valid_b[key]) < 1e-5, (valid_a, valid_b)
    # Every rank's own random state is saved, and they differ (per-rank dropout seeds).
    state = load_trainer_state(step_checkpoints(double / "checkpoints")[-1])
    assert len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])


def worker_pids(launcher_pid: int) -> dict[int, int]:
    """RANK -> pid of the launcher's worker processes (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher_pid:
            for item in environ:
                if item.startswith(b"RANK="):
                    found[int(item[5:])] = int(entry.name)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_ctrl_c_on_one_rank_stops_both_after_the_same_update(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [*LAUNCHER, "-m", "aiayn", *COMMON, "--out", str(run)]
    command[command.index("--max-steps") + 1] = "400"
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            metrics = run / "metrics.jsonl"
            if metrics.exists() and metrics.read_text().count('"train"') >= 3:
                break
            time.sleep(0.05)
        pids = worker_pids(proc.pid)
        assert set(pids) == {0, 1}, pids
        os.kill(pids[1], signal.SIGINT)  # only rank 1 is told
        proc.wait(timeout=120)  # no rank is left waiting for the other
    finally:
        proc.kill()
    (checkpoint,) = step_checkpoints(run / "checkpoints")
    state = load_trainer_state(checkpoint)
    assert "interrupt" in json.loads((checkpoint / "meta.json").read_text())["kinds"]
    assert 3 <= state["step"] < 400 and len(state["rng"]) == 2
    assert [r["step"] for r in train_records(run)] == list(range(1, state["step"] + 1))
    more = str(state["step"] + 4)
    done = subprocess.run(
        [*LAUNCHER, "-m", "aiayn", "train", "--out", str(run), "--resume", "--max-steps", more],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert step_checkpoints(run / "checkpoints")[-1].name == f"step-{int(more):08d}"
