"""Files of a run: loading one never runs code from it, and written files respect the umask."""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
from pathlib import Path

import pytest
import torch

from aiayn import ModelConfig, Transformer
from aiayn.config import RunConfig
from aiayn.data import download_file
from aiayn.pipeline import train
from aiayn.runs import CheckpointError, atomic_write_text, load_trainer_state, save_checkpoint
from aiayn.runs.atomic import write_folder


class _CreatesAFile:
    """Unpickling this calls `Path.touch` on a path: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _checkpoint(tmp_path: Path) -> Path:
    model = Transformer(ModelConfig.tiny(30, 30))
    return save_checkpoint(tmp_path / "step-00000001", model, model.config, {"step": 1}, {})


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_a_crafted_trainer_state_runs_nothing(tmp_path: Path, protocol: int) -> None:
    checkpoint = _checkpoint(tmp_path)
    proof = tmp_path / "code-ran"
    state = {"step": 1, "optimizer": _CreatesAFile(proof)}
    torch.save(state, checkpoint / "trainer.pt", pickle_protocol=protocol)
    with pytest.raises(CheckpointError) as caught:
        load_trainer_state(checkpoint)
    assert not proof.exists(), "loading trainer.pt ran code from it"
    message = str(caught.value)
    assert "\n" not in message and "trainer.pt" in message
    assert "weights_only=False" not in message  # never advise the unsafe way out
    # A plain pickle (not even a torch file) is refused the same way.
    (checkpoint / "trainer.pt").write_bytes(pickle.dumps(_CreatesAFile(proof)))
    with pytest.raises(CheckpointError):
        load_trainer_state(checkpoint)
    assert not proof.exists()


def test_the_trainer_state_of_a_real_run_loads_safely(tmp_path: Path) -> None:
    """Everything the trainer saves (optimizer, schedule, sampler, RNG states) is plain data."""
    config = RunConfig().replace("data", task="copy", task_train_size=200, task_valid_size=20)
    config = config.replace("train", max_steps=2, progress=False, precision="fp32")
    train(config, tmp_path / "run")
    checkpoint = sorted((tmp_path / "run" / "checkpoints").glob("step-*"))[-1]
    state = load_trainer_state(checkpoint)
    assert state["step"] == 2 and state["optimizer"]["state"]


def _modes(root: Path) -> tuple[set[int], set[int]]:
    files, folders = set(), set()
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        (folders if path.is_dir() else files).add(mode)
    return files, folders


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a" / "file.txt", "x")
        write_folder(tmp_path / "folder", lambda tmp: (tmp / "inner.txt").write_text("y"))
        source = tmp_path / "source.bin"
        source.write_bytes(b"payload")
        digest = hashlib.sha256(b"payload").hexdigest()
        download_file(source.resolve().as_uri(), tmp_path / "dl" / "got.bin", digest)
        config = RunConfig().replace("data", task="copy", task_train_size=200, task_valid_size=20)
        config = config.replace(
            "train", max_steps=2, progress=False, precision="fp32", average_last=1
        )
        train(config, tmp_path / "run")
    finally:
        os.umask(previous)
    files, folders = _modes(tmp_path)
    assert files == {0o666 & ~umask}, sorted(map(oct, files))
    assert folders == {0o777 & ~umask}, sorted(map(oct, folders))
