"""The paper's learning-rate schedule (section 5.3): linear warmup, then inverse square root."""

from __future__ import annotations

import torch


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


class NoamSchedule:
    """Sets the optimizer's learning rate before each update; its state is the update count."""

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
