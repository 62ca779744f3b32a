"""What ranks other than 0 learn from rank 0 instead of the run directory (two gloo processes),
train.dist_timeout on a hung rank, and the error a rank gets when another is lost."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from aiayn.data import Vocabularies, build_vocabularies
from aiayn.errors import ConfigError
from aiayn.run_sharing import shared_vocabularies, tokenizer_saved
from aiayn.runs import RunDir
from aiayn.training.distributed import (
    DistInfo,
    all_reduce_sum,
    init_distributed,
    on_main,
    process_info,
)
from aiayn.training.lost_rank import LostRankError, LostRankWatch, is_lost_rank
from aiayn.training.state_broadcast import broadcast_state

GLOO_RESET = (
    "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [10.0.0.2]:4242: "
    "Connection reset by peer. This is typically caused by a remote worker hanging or bugs in "
    "the application. Check the logs of the remote worker before reporting an error."
)


def state() -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        "optimizer": {"state": {0: {"exp_avg": torch.randn(3, 4, generator=generator)}}},
        "odd": [torch.tensor([1.5, -2.0], dtype=torch.bfloat16), torch.tensor([True, False])],
        "scalar": torch.tensor(7),
        "empty": torch.empty(0, 5),
        "plain": ("python", 3, None, 2.5),
    }


def two_ranks(rank: int, folder: str, ids: list[int], port: int) -> None:
    """Rank `rank` of two, as torchrun would start it; rank 1's run directory does not exist.

    `ids`: how rank 0's saved vocabulary encodes "drei kleine hunde".
    """
    place = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"}
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), **place)
    info = init_distributed(torch.device("cpu"), process_info(), timeout=2.0)
    try:
        got = broadcast_state(state() if rank == 0 else None, info)
        expected = state()
        assert got["plain"] == expected["plain"] and got["odd"][0].dtype == torch.bfloat16
        for path in (("optimizer", "state", 0, "exp_avg"), ("odd", 0), ("odd", 1), ("scalar",)):
            a, b = got, expected
            for key in path:
                a, b = a[key], b[key]
            assert torch.equal(a, b), path
        assert got["empty"].shape == (0, 5)

        # A user error met by rank 0 alone is raised on both ranks (none waits for it).
        def read() -> None:
            raise ConfigError("rank 0 found a bad config")

        try:
            on_main(read, info)
        except ConfigError as error:
            assert "rank 0 found a bad config" in str(error)
        else:
            raise AssertionError(f"on_main did not raise on rank {rank}")

        run = RunDir(Path(folder) / ("run" if rank == 0 else "not-on-this-node"))
        assert tokenizer_saved(run, info)
        vocabs = shared_vocabularies(run, info)
        assert vocabs.src.encode("drei kleine hunde") == ids

        # Rank 1 hangs (sleeps past the collective): rank 0 gives up after train.dist_timeout.
        if rank == 0:
            start = time.perf_counter()
            try:
                with LostRankWatch(info, Path("run")):
                    all_reduce_sum(torch.ones(1), info)
            except LostRankError as error:
                assert "train.dist_timeout (2 s)" in str(error)
            else:
                raise AssertionError("a collective without rank 1 returned")
            assert 1.5 < time.perf_counter() - start < 30  # its 2 s, not the join's 600 s
            (Path(folder) / "rank0-done").touch()
        else:
            while not (Path(folder) / "rank0-done").exists():
                time.sleep(0.05)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two processes that import torch: about 10 s
def test_rank_1_gets_the_state_errors_and_vocabulary_of_rank_0(tmp_path: Path) -> None:
    pairs = [("eins zwei", "one two"), ("drei kleine hunde", "three small dogs")]
    vocabs = build_vocabularies(pairs, kind="symbols")
    vocabs.save(tmp_path / "run")
    ids = Vocabularies.load(tmp_path / "run").src.encode("drei kleine hunde")
    assert len(set(ids)) == 3  # three known words: a wrong vocabulary would differ
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(two_ranks, args=(str(tmp_path), ids, port), nprocs=2, join=True)
    assert not (tmp_path / "not-on-this-node").exists()


def test_a_lost_peer_becomes_one_clear_error() -> None:
    watch = LostRankWatch(DistInfo(1, 4, 0, timeout=60.0), Path("runs/big"))
    watch.step = 1200
    with pytest.raises(LostRankError) as caught, watch:
        raise RuntimeError(GLOO_RESET)
    text = str(caught.value)
    assert text.startswith("rank 1 of 4 lost contact with another rank after update 1200 (")
    assert "(Read error [10.0.0.2]:4242: Connection reset by peer)" in text
    assert "pair.cc" not in text and "typically" not in text
    assert "train.dist_timeout (60 s)" in text and "aiayn train --out runs/big --resume" in text
    assert isinstance(caught.value.__cause__, RuntimeError)
    # Other failures pass through unchanged, and nothing is changed for a single process.
    assert not is_lost_rank(RuntimeError("CUDA out of memory")) and is_lost_rank(
        RuntimeError("[gloo] Timed out waiting 60000ms for recv operation to complete")
    )
    with pytest.raises(ValueError, match="other"), watch:
        raise ValueError("other")
    with (
        pytest.raises(RuntimeError, match="Connection reset"),
        LostRankWatch(DistInfo(), Path("r")),
    ):
        raise RuntimeError(GLOO_RESET)
