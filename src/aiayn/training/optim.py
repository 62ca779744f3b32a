"""The optimizer of the paper (Adam, betas 0.9/0.98, eps 1e-9), fused where possible."""

from __future__ import annotations

import torch
from torch import nn

from aiayn.training.config import TrainConfig


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """Adam(W) with the paper's betas and epsilon; fused kernels where the backend has them."""
    kind = torch.optim.AdamW if config.weight_decay > 0 else torch.optim.Adam
    kwargs = dict(
        lr=0.0,  # the schedule sets it before every update
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_eps,
        weight_decay=config.weight_decay,
    )
    try:
        return kind(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return kind(model.parameters(), foreach=device.type == "cuda", **kwargs)
