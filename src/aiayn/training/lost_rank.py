"""A rank lost in the middle of a torchrun run: a clear error on the ranks left, not a hang.

When a rank dies (killed, out of memory, its node gone) the others learn it in their next
collective: gloo reports the closed connection at once, a rank that hangs instead is given up
after `train.dist_timeout` seconds (nccl reports both as DistBackendError). torch's message
names a socket and a C++ source line; `LostRankWatch` turns it into one that says what happened
and what to do: every rank stops, and the run continues from its newest checkpoint with
--resume on every node.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch.distributed as dist

from aiayn.errors import AiaynError
from aiayn.training.distributed import DistInfo

# Words of gloo's and nccl's errors when a peer is gone or silent (gloo's are plain
# RuntimeErrors; torch's own distributed errors derive from DistError).
_PEER_WORDS = ("gloo", "nccl", "connection reset", "connection closed", "timed out", "broken pipe")


class LostRankError(AiaynError, RuntimeError):
    """Another rank of a torchrun run died or stopped answering; this rank stopped too."""


def is_lost_rank(error: BaseException) -> bool:
    """Whether `error` is a collective failing because another rank is gone or silent."""
    if isinstance(error, AiaynError) or not isinstance(error, RuntimeError):
        return False
    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return any(word in text for word in _PEER_WORDS)


def _detail(error: BaseException) -> str:
    """torch's message, first line, without the C++ source location and gloo's sign-off."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", text)
    return text.split(". This is typically caused", 1)[0][:300]


class LostRankWatch:
    """Context manager: a lost rank inside it raises `LostRankError` with what to do.

    Args:
        info: this process's place; once training's group is made, set the `info` attribute
            to the one `init_distributed` returned (it knows `train.dist_timeout`).
        out: the run directory (named in the message: where --resume continues).
    """

    def __init__(self, info: DistInfo, out: Path) -> None:
        self.info = info
        self.out = out
        self.step: int | None = None  # updates completed, once training has begun

    def message(self, error: BaseException) -> str:
        """What the user reads: which rank stopped, where, why, and how to continue."""
        when = "while starting" if self.step is None else f"after update {self.step}"
        timeout = self.info.timeout
        waited = f"{timeout:g} s" if timeout is not None else "its limit"
        return (
            f"rank {self.info.rank} of {self.info.world_size} lost contact with another rank "
            f"{when} ({_detail(error)}): a rank died (torchrun's summary on its node names it "
            f"and its exit code) or did not answer within train.dist_timeout ({waited}). All "
            "ranks stop. To continue from the newest checkpoint, start torchrun again on every "
            f"node with `aiayn train --out {self.out} --resume`"
        )

    def __enter__(self) -> LostRankWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        error = exc_info[1]  # (type, error, traceback), or Nones
        if isinstance(error, BaseException) and self.info.enabled and is_lost_rank(error):
            raise LostRankError(self.message(error)) from error
