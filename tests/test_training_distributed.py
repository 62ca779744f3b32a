"""The device and seed of each torchrun process, chosen without a GPU."""

from __future__ import annotations

import pytest
import torch
from tests.run_helpers import copy_config

import aiayn.pipeline as pipeline
from aiayn.errors import ConfigError
from aiayn.training import Trainer
from aiayn.training.distributed import DistInfo, choose_device
from aiayn.training.rng import rank_seed


def gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Make torch report `count` GPUs (none: CUDA unavailable), whatever this machine has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize("name", ["cuda", "auto"])
def test_each_rank_takes_the_gpu_of_its_local_rank(name: str, monkeypatch) -> None:
    gpus(monkeypatch, 2)
    # Node 2 of a 2x2 run: global ranks 2 and 3, local ranks 0 and 1.
    devices = [choose_device(name, DistInfo(r, 4, r - 2)) for r in (2, 3)]
    assert devices == [torch.device("cuda", 0), torch.device("cuda", 1)]


def test_a_single_process_may_name_its_gpu(monkeypatch) -> None:
    gpus(monkeypatch, 2)
    assert choose_device("cuda:1") == torch.device("cuda", 1)
    assert choose_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match="GPU 2 asked for, but this process sees 2"):
        choose_device("cuda:2")


def test_no_cuda_means_the_cpu_for_auto_and_an_error_for_cuda(monkeypatch) -> None:
    gpus(monkeypatch, 2)
    assert choose_device("cpu", DistInfo(1, 2, 1)) == torch.device("cpu")
    gpus(monkeypatch, 0)
    assert choose_device("auto", DistInfo(1, 2, 1)) == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        choose_device("cuda")


def test_what_cannot_work_under_torchrun_is_refused(monkeypatch) -> None:
    gpus(monkeypatch, 2)
    with pytest.raises(ConfigError, match="one GPU"):
        choose_device("cuda:1", DistInfo(0, 2, 0))
    with pytest.raises(ConfigError, match="more processes per node than GPUs"):
        choose_device("cuda", DistInfo(2, 3, 2))
    with pytest.raises(ConfigError, match="expected auto, cpu, cuda"):
        choose_device("gpu")


def test_rank_seeds_differ_and_rank_0_keeps_the_seed() -> None:
    seeds = [rank_seed(7, r) for r in range(8)]
    assert seeds[0] == 7 and len(set(seeds)) == 8
    assert rank_seed(8, 0) not in seeds  # nearby seeds do not collide with other ranks
    streams = []
    for seed in seeds[:2]:
        torch.manual_seed(seed)
        streams.append(torch.rand(16))
    assert not torch.equal(*streams)  # different dropout masks


def test_train_leaves_the_process_group_even_when_training_fails(tmp_path, monkeypatch) -> None:

    left = []
    monkeypatch.setattr(pipeline, "shutdown", lambda info: left.append(info))
    pipeline.train(copy_config(max_steps=1), tmp_path / "ok")
    assert len(left) == 1

    def broken(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(Trainer, "fit", broken)
    with pytest.raises(RuntimeError, match="boom"):
        pipeline.train(copy_config(max_steps=1), tmp_path / "broken")
    assert len(left) == 2
