"""Process-group set-up for torchrun (gloo on CPU, nccl on CUDA) and the few collectives we use.

Under torchrun every process reads its place from the environment: RANK (its global rank over
all nodes: data shard, seed, and rank 0 alone writes the run directory), WORLD_SIZE and
LOCAL_RANK (its rank on its own node: which GPU it takes, `choose_device`). It joins the group
before it knows the run's config (`join`: on --resume, ranks other than 0 learn the config from
rank 0), then makes the group training uses, whose collectives give up after
`train.dist_timeout` seconds (`init_distributed`), and leaves both when training ends
(`shutdown`). See docs/distributed.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from aiayn.errors import AiaynError, ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank, 0 .. world_size - 1.
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        group: the process group of training's collectives (None: the default group).
        timeout: seconds a collective of `group` waits for the other ranks (None: torch's).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    group: Any = field(default=None, compare=False, repr=False)
    timeout: float | None = None

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when running under torchrun with more than one process."""
        return self.world_size > 1


def process_info() -> DistInfo:
    """This process's place as torchrun describes it in the environment (one process without)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def choose_device(
    name: str,
    info: DistInfo = DistInfo(),  # frozen: safe as a default
) -> torch.device:
    """The device a process computes on.

    "auto" is this process's GPU when CUDA is available, else the CPU. "cuda" is the GPU of the
    local rank (GPU 0 for a single process). "cuda:N" names one GPU, which only makes sense for
    a single process: under torchrun every rank would share it, so it is refused there.

    Args:
        name: "auto", "cpu", "cuda" or "cuda:N" (from `train.device` or `--device`).
        info: this process's place in the run.

    Returns:
        The device.

    Raises:
        ConfigError: an unknown name, CUDA asked for but absent, more processes on this node
            than GPUs, or "cuda:N" under torchrun.
    """
    cuda_available = torch.cuda.is_available()
    if name == "auto":
        name = "cuda" if cuda_available else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise ConfigError(f"device {name!r}: expected auto, cpu, cuda or cuda:N")
    if not cuda_available:
        raise ConfigError(f"device {name!r}: CUDA is not available on this machine")
    cuda_devices = torch.cuda.device_count()
    if device.index is not None:
        if info.enabled:
            raise ConfigError(
                f"device {name!r} under torchrun would put all {info.world_size} processes on "
                "one GPU; use 'cuda' (each process takes the GPU of its local rank) and "
                "CUDA_VISIBLE_DEVICES to choose the GPUs"
            )
        index = device.index
    else:
        index = info.local_rank
    if index >= cuda_devices:
        raise ConfigError(
            f"device {name!r}: GPU {index} asked for, but this process sees {cuda_devices}"
            + (" (more processes per node than GPUs?)" if info.enabled else "")
        )
    return torch.device("cuda", index)


# How long joining may wait for the other ranks, and what the few collectives before the
# run's config is known (its train.dist_timeout) wait: rank 0 reading the saved config.
JOIN_TIMEOUT = 600.0


def join(info: DistInfo) -> None:
    """Join the default process group torchrun describes (a no-op for one process or if joined).

    It needs nothing from the run's config, so that ranks other than 0 can learn the config of
    a resumed run from rank 0 (see aiayn.run_sharing). CPU tensors travel over gloo, CUDA
    tensors over nccl where CUDA is available; object collectives and barriers use gloo.
    """
    if not info.enabled or dist.is_initialized():
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=JOIN_TIMEOUT))


def init_distributed(device: torch.device, info: DistInfo, timeout: float) -> DistInfo:
    """Join the process group (if not yet) and make the group training's collectives use.

    Args:
        device: this process's device (from `choose_device`); a GPU becomes the current one.
        info: this process's place (from `process_info`).
        timeout: seconds a collective waits for the other ranks before it fails
            (`train.dist_timeout`): how long a hung rank can keep the others waiting.

    Returns:
        `info` with the training group and its timeout (itself for a single process).
    """
    if not info.enabled:
        return info
    join(info)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    group = dist.new_group(timeout=timedelta(seconds=timeout))
    return replace(info, group=group, timeout=timeout)


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over all processes (in place; returned for convenience)."""
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM, group=info.group)
    return values


def broadcast_object(value: object, info: DistInfo) -> object:
    """Rank 0's `value` on every rank (pickled: small plain values only)."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, group=info.group)
    return box[0]


def on_main(read: Callable[[], T], info: DistInfo) -> T | None:
    """`read()` on the main process alone; a user error it raises is raised on every rank.

    For what only rank 0 may read (the run directory): were the error raised on rank 0 alone,
    the others would wait for it in their next collective.

    Args:
        read: what the main process does (e.g. read the run directory).
        info: this process's place.

    Returns:
        What `read` returned on the main process; None on the others.

    Raises:
        AiaynError: the one `read` raised on the main process, on every rank.
    """
    result, error = None, None
    if info.is_main:
        try:
            result = read()
        except AiaynError as raised:
            error = raised
    error = broadcast_object(error, info)
    if error is not None:
        raise error
    return result


def broadcast_tensors_(tensors: list[torch.Tensor], info: DistInfo) -> None:
    """Overwrite each tensor, in place, with rank 0's (same shapes and dtypes on every rank)."""
    if info.enabled:
        for tensor in tensors:
            dist.broadcast(tensor, src=0, group=info.group)


def gather_objects(value: object, info: DistInfo) -> list[object]:
    """Every rank's `value`, in rank order, on every rank."""
    if not info.enabled:
        return [value]
    out: list[object] = [None] * info.world_size
    dist.all_gather_object(out, value, group=info.group)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every process."""
    if info.enabled:
        dist.barrier(group=info.group)


def shutdown(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
