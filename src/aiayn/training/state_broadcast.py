"""Rank 0's trainer state (nested dicts and lists of tensors and plain values) on every rank.

On --resume only rank 0 reads the checkpoint (the run directory need not be visible from the
other nodes, see docs/distributed.md); the others receive it. The plain values travel as one
small pickled skeleton, each tensor on its own as raw bytes: the optimizer's moments, twice the
model's size, are never pickled whole, so no rank holds more than one extra copy of a tensor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from aiayn.training.distributed import DistInfo, broadcast_object, broadcast_tensors_


@dataclass(frozen=True)
class _Slot:
    """Where a tensor was in the skeleton: what the receiving ranks allocate."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    nbytes: int


def _strip(value: Any, tensors: list[torch.Tensor]) -> Any:
    """`value` with each tensor replaced by a `_Slot`, the tensors appended in visiting order."""
    if isinstance(value, torch.Tensor):
        tensors.append(value)
        return _Slot(tuple(value.shape), value.dtype, value.nelement() * value.element_size())
    if isinstance(value, dict):
        return {key: _strip(item, tensors) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_strip(item, tensors) for item in value)
    return value


def _fill(skeleton: Any, received: Iterator[torch.Tensor]) -> Any:
    """The skeleton with each `_Slot` replaced by the next received tensor (visiting order)."""
    if isinstance(skeleton, _Slot):
        return next(received).view(skeleton.dtype).reshape(skeleton.shape)
    if isinstance(skeleton, dict):
        return {key: _fill(item, received) for key, item in skeleton.items()}
    if isinstance(skeleton, list | tuple):
        return type(skeleton)(_fill(item, received) for item in skeleton)
    return skeleton


def _slots(skeleton: Any) -> list[_Slot]:
    """The skeleton's slots in visiting order."""
    if isinstance(skeleton, _Slot):
        return [skeleton]
    if isinstance(skeleton, dict):
        return [slot for item in skeleton.values() for slot in _slots(item)]
    if isinstance(skeleton, list | tuple):
        return [slot for item in skeleton for slot in _slots(item)]
    return []


def broadcast_state(value: Any, info: DistInfo) -> Any:
    """Rank 0's `value` on every rank; tensors arrive on the CPU.

    Args:
        value: on rank 0, nested dicts, lists and tuples of tensors and plain values (what
            `torch.load(weights_only=True)` returns); ignored elsewhere.
        info: this process's place.

    Returns:
        Rank 0's value (on rank 0, `value` itself).
    """
    if not info.enabled:
        return value
    tensors: list[torch.Tensor] = []
    skeleton = broadcast_object(_strip(value, tensors) if info.is_main else None, info)
    if info.is_main:
        # Raw bytes: the same on every dtype, bfloat16 and bool included.
        buffers = [t.detach().cpu().contiguous().reshape(-1).view(torch.uint8) for t in tensors]
    else:
        buffers = [torch.empty(slot.nbytes, dtype=torch.uint8) for slot in _slots(skeleton)]
    broadcast_tensors_(buffers, info)
    return value if info.is_main else _fill(skeleton, iter(buffers))
