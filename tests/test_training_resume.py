"""An interrupted run resumes exactly: SIGKILL mid-epoch, --resume, same final state."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aiayn.runs import load_trainer_state, step_checkpoints
from aiayn.runs.checkpoint import WEIGHTS

TRAIN = [
    sys.executable, "-m", "aiayn", "train",
    "--task", "copy", "--max-steps", "60", "--save-every", "4", "--keep-last", "20",
    "--max-tokens", "512", "--precision", "fp32", "--valid-bleu", "0", "--no-progress",
    "--set", "data.task_train_size=3000", "--set", "data.task_valid_size=50",
    "--set", "model.dropout=0.1", "--set", "train.warmup=50",
    "--set", "train.token_dropout=0.1",  # its draws must resume exactly too
]  # fmt: skip


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def final_state(run: Path) -> tuple[dict, dict]:
    last = step_checkpoints(run / "checkpoints")[-1]
    assert last.name == "step-00000060"
    return load_file(str(last / WEIGHTS)), load_trainer_state(last)["optimizer"]


@pytest.mark.slow  # training subprocesses
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    subprocess.run([*TRAIN, "--out", str(straight)], check=True, env=env(), capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*TRAIN, "--out", str(killed)], env=env(), stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(step_checkpoints(killed / "checkpoints")) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = step_checkpoints(killed / "checkpoints")
    assert saved and saved[-1].name != "step-00000060", "the run was not interrupted mid-way"
    # The run is 60 updates of ~100 batches per epoch: the kill fell mid-epoch.
    assert load_trainer_state(saved[-1])["consumed"] > 0

    subprocess.run(
        [*TRAIN, "--out", str(killed), "--resume"], check=True, env=env(), capture_output=True
    )
    weights_a, optim_a = final_state(straight)
    weights_b, optim_b = final_state(killed)
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name
    for key, state in optim_a["state"].items():
        for field, value in state.items():
            assert torch.equal(value, optim_b["state"][key][field]), (key, field)


@pytest.mark.slow  # training subprocesses
def test_ctrl_c_saves_the_last_update_and_resume_finishes(tmp_path: Path) -> None:
    run = tmp_path / "interrupted"
    proc = subprocess.Popen([*TRAIN, "--out", str(run)], env=env(), stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not step_checkpoints(run / "checkpoints"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    saved = step_checkpoints(run / "checkpoints")
    state = load_trainer_state(saved[-1])
    assert state["step"] == int(saved[-1].name.split("-")[1])
    subprocess.run(
        [*TRAIN, "--out", str(run), "--resume"], check=True, env=env(), capture_output=True
    )
    assert step_checkpoints(run / "checkpoints")[-1].name == "step-00000060"
