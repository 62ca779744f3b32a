"""Learning-rate schedules: the paper's (section 5.3) and a cosine decay over a known length.

Both warm up linearly to the same peak, factor * d_model^-0.5 * warmup^-0.5. After it the
paper's lr falls as step^-0.5 and never reaches a floor; the cosine one falls to
`floor * peak` at the last planned update, so the final weights are those of a small learning
rate (what averaging checkpoints approximates) when the length of training is known in advance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the config names DECAYS, so it is imported from here, not the reverse
    from aiayn.training.config import TrainConfig

DECAYS = ("inverse_sqrt", "cosine")


def noam_lr(step: int, d_model: int, warmup: int, factor: float = 1.0) -> float:
    """lr = factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), steps counted from 1.

    Args:
        step: the update about to be taken, 1 for the first.
        d_model: model width.
        warmup: warmup updates (4000 in the paper).
        factor: overall multiplier (1.0 in the paper).

    Returns:
        The learning rate for that update.
    """
    if step < 1:
        raise ValueError(f"noam_lr counts steps from 1, got {step}")
    return factor * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


def cosine_lr(
    step: int, d_model: int, warmup: int, total: int, factor: float = 1.0, floor: float = 0.0
) -> float:
    """The paper's warmup, then half a cosine from its peak down to `floor * peak` at `total`.

    Args:
        step: the update about to be taken, 1 for the first.
        d_model: model width.
        warmup: warmup updates; the peak is the paper's lr at `step == warmup`.
        total: the last planned update; later updates stay at the floor.
        factor: overall multiplier, as in `noam_lr`.
        floor: the final learning rate as a fraction of the peak, in [0, 1).

    Returns:
        The learning rate for that update.
    """
    if step <= warmup:
        return noam_lr(step, d_model, warmup, factor)
    peak = noam_lr(warmup, d_model, warmup, factor)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


class NoamSchedule:
    """Sets the optimizer's learning rate before each update; its state is the update count.

    Args:
        optimizer: whose parameter groups get the rate.
        d_model: model width (the paper scales the rate by d_model^-0.5).
        warmup: warmup updates.
        factor: overall multiplier.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, d_model: int, warmup: int, factor: float = 1.0
    ) -> None:
        self.optimizer = optimizer
        self.d_model = d_model
        self.warmup = warmup
        self.factor = factor
        self.step_count = 0  # updates taken so far

    def lr(self, step: int) -> float:
        """The learning rate of update `step` (from 1)."""
        return noam_lr(step, self.d_model, self.warmup, self.factor)

    def step(self) -> float:
        """Advance to the next update and set its learning rate on every parameter group."""
        self.step_count += 1
        lr = self.lr(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, int]:
        """The update count, for checkpoints."""
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore the update count."""
        self.step_count = int(state["step_count"])


class CosineSchedule(NoamSchedule):
    """The paper's warmup, then a cosine decay to `floor * peak` over `total` updates.

    Args:
        optimizer: whose parameter groups get the rate.
        d_model: model width.
        warmup: warmup updates.
        total: the planned number of updates, or a function giving it, asked at the first
            update (the trainer's epoch length is known only once the sampler has cut its
            batches, which it does in the background while the model is built).
        factor: overall multiplier.
        floor: the final learning rate as a fraction of the peak.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        d_model: int,
        warmup: int,
        total: int | Callable[[], int],
        factor: float = 1.0,
        floor: float = 0.0,
    ) -> None:
        super().__init__(optimizer, d_model, warmup, factor)
        self._total = total
        self.floor = floor

    @property
    def total(self) -> int:
        """The planned number of updates."""
        if callable(self._total):
            self._total = int(self._total())
        return self._total

    def lr(self, step: int) -> float:
        """The learning rate of update `step` (from 1)."""
        return cosine_lr(step, self.d_model, self.warmup, self.total, self.factor, self.floor)


def make_schedule(
    optimizer: torch.optim.Optimizer,
    d_model: int,
    config: TrainConfig,
    planned_updates: Callable[[], int],
) -> NoamSchedule:
    """The schedule `config.lr_decay` names.

    Args:
        optimizer: whose parameter groups get the rate.
        d_model: model width.
        config: the training config (warmup, lr_factor, lr_decay, lr_floor).
        planned_updates: gives the run's planned number of updates (asked only by the cosine
            decay, at its first update).

    Returns:
        The schedule, with no updates taken.
    """
    if config.lr_decay == "cosine":
        return CosineSchedule(
            optimizer, d_model, config.warmup, planned_updates, config.lr_factor, config.lr_floor
        )
    return NoamSchedule(optimizer, d_model, config.warmup, config.lr_factor)
