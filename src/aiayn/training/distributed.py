"""Process-group set-up for torchrun (gloo on CPU, nccl on CUDA) and the few collectives we use.

Under torchrun every process reads its place from the environment (RANK, WORLD_SIZE,
LOCAL_RANK), takes the GPU of its local rank (`choose_device`), joins the group, and leaves it
when training ends (`shutdown`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from aiayn.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank, 0 .. world_size - 1.
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

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
    *,
    cuda_available: bool | None = None,
    cuda_devices: int | None = None,
) -> torch.device:
    """The device a process computes on.

    "auto" is this process's GPU when CUDA is available, else the CPU. "cuda" is the GPU of the
    local rank (GPU 0 for a single process). "cuda:N" names one GPU, which only makes sense for
    a single process: under torchrun every rank would share it, so it is refused there.

    Args:
        name: "auto", "cpu", "cuda" or "cuda:N" (from `train.device` or `--device`).
        info: this process's place in the run.
        cuda_available: whether CUDA is usable (default: ask torch); for tests.
        cuda_devices: how many GPUs this process sees (default: ask torch); for tests.

    Returns:
        The device.

    Raises:
        ConfigError: an unknown name, CUDA asked for but absent, more processes on this node
            than GPUs, or "cuda:N" under torchrun.
    """
    if cuda_available is None:
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
    if cuda_devices is None:
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


def init_distributed(device: torch.device, info: DistInfo) -> None:
    """Join the process group that torchrun describes (a no-op for a single process).

    Args:
        device: this process's device (from `choose_device`); CUDA uses nccl on that GPU, which
            becomes the current one, the CPU uses gloo.
        info: this process's place (from `process_info`).
    """
    if not info.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl", device_id=device)
    else:
        dist.init_process_group(backend="gloo")


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over all processes (in place; returned for convenience)."""
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_object(value: object, info: DistInfo) -> object:
    """Rank 0's `value` on every rank."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value: object, info: DistInfo) -> list[object]:
    """Every rank's `value`, in rank order, on every rank."""
    if not info.enabled:
        return [value]
    out: list[object] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every process."""
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
