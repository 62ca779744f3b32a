"""Two "nodes" on this machine: two torchrun launchers of one process each, joined on 127.0.0.1.

Each node has its own run directory, as nodes without a shared filesystem would: only global
rank 0 writes, and no other rank reads anything, so the other node's directory is never made.
A 2-node run equals the 1-node 2-process run; a rank killed mid-run stops the other with a
clear error within seconds, and --resume on both nodes continues the run to its end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.test_training_ddp import COMMON, LAUNCHER, train_records, worker_pids

from aiayn.runs import step_checkpoints
from aiayn.runs.checkpoint import WEIGHTS

pytestmark = pytest.mark.slow  # four launchers of one process, and two of two

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(rendezvous: str, dirs: list[Path], args: list[str]) -> list[subprocess.Popen]:
    """Node 0 and node 1, each running `aiayn train ARGS --out` its own directory.

    Args:
        rendezvous: "c10d" (an endpoint; torchrun ignores --node-rank and numbers the nodes
            itself) or "static" (a master address; --node-rank 0 holds global rank 0).
    """
    port = free_port()
    if rendezvous == "c10d":
        join = ["--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}"]
        join.append(f"--rdzv-id={uuid.uuid4().hex}")
    else:
        join = ["--master-addr=127.0.0.1", f"--master-port={port}"]
    return [
        subprocess.Popen(
            [*TORCHRUN, f"--node-rank={n}", *join, "-m", "aiayn", *args, "--out", str(out)],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, out in enumerate(dirs)
    ]


def finish(nodes: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str]]:
    """Each node's exit status and stderr (killing any left after `timeout` seconds)."""
    results = []
    for node in nodes:
        try:
            _, err = node.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            node.kill()
            _, err = node.communicate()
        results.append((node.returncode, err))
    return results


def test_two_nodes_equal_one_node_of_two_processes(tmp_path: Path) -> None:
    reference = tmp_path / "one-node"
    done = subprocess.run(
        [*LAUNCHER, "-m", "aiayn", *COMMON, "--out", str(reference)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    dirs = [tmp_path / "node0", tmp_path / "node1"]
    for code, err in finish(start_nodes("c10d", dirs, COMMON)):
        assert code == 0, err[-3000:]
    # Rank 0 landed on one node (c10d chooses which); the other node's directory was not made.
    (run,) = [d for d in dirs if d.exists()]
    a = load_file(str(step_checkpoints(reference / "checkpoints")[-1] / WEIGHTS))
    b = load_file(str(step_checkpoints(run / "checkpoints")[-1] / WEIGHTS))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    losses = [[r["loss"] for r in train_records(d)] for d in (reference, run)]
    assert len(losses[0]) == 6 and losses[0] == losses[1]
    assert train_records(reference, "valid") == train_records(run, "valid")


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_killed_rank_stops_the_other_and_resume_continues(tmp_path: Path) -> None:
    dirs = [tmp_path / "node0", tmp_path / "node1"]  # static: node 0 holds global rank 0
    args = [*COMMON, "--save-every", "2", "--set", "train.dist_timeout=30"]
    args[args.index("--max-steps") + 1] = "400"
    nodes = start_nodes("static", dirs, args)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not step_checkpoints(dirs[0] / "checkpoints"):
            time.sleep(0.05)
        (rank1,) = worker_pids(nodes[1].pid).values()
        os.kill(rank1, signal.SIGKILL)
        killed = time.time()
        code, err = finish(nodes[:1], timeout=120)[0]
        assert time.time() - killed < 120
    finally:
        for node in nodes:
            node.kill()
    finish(nodes)
    assert code != 0
    assert "rank 0 of 2 lost contact with another rank after update" in err, err[-3000:]
    assert "train.dist_timeout (30 s)" in err and f"--out {dirs[0]} --resume" in err
    assert "Traceback" not in err.split("lost contact")[0][-2000:]  # one line, not a trace
    assert not dirs[1].exists()
    reached = int(step_checkpoints(dirs[0] / "checkpoints")[-1].name.split("-")[1])
    assert 2 <= reached < 400

    more = str(reached + 3)
    resumed = start_nodes("static", dirs, ["train", "--resume", "--max-steps", more])
    for code, err in finish(resumed):
        assert code == 0, err[-3000:]
    assert step_checkpoints(dirs[0] / "checkpoints")[-1].name == f"step-{int(more):08d}"
    steps = [r["step"] for r in train_records(dirs[0])]
    assert steps == list(range(1, int(more) + 1))
    assert not dirs[1].exists()  # rank 1 resumed without reading or writing a file of the run
