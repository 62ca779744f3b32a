"""Training-step candidates: ours as the trainer runs it, and the frozen nn.Transformer baseline.

One call of a candidate is one training step (forward, label-smoothed loss, backward, Adam) on
each batch of a workload, in order.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aiayn.data import Batch
from aiayn.model import ModelConfig, Transformer
from aiayn.training import label_smoothed_nll
from benchmarks import baselines

LABEL_SMOOTHING = 0.1
CPU = torch.device("cpu")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast for "bf16", nothing for "fp32"."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def adam(model: torch.nn.Module, fused: bool) -> torch.optim.Optimizer:
    """Adam with the paper's betas and epsilon, as the trainer's make_optimizer (fixed lr)."""
    kwargs = dict(lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    if fused:
        return torch.optim.Adam(model.parameters(), fused=True, **kwargs)
    return torch.optim.Adam(model.parameters(), **kwargs)


@dataclass(frozen=True)
class OursOptions:
    """How our step runs; the defaults are what the trainer does."""

    output_mask: bool = True  # generator + loss only at real target positions
    fused_adam: bool = True  # torch.optim.Adam(fused=True)
    precision: str = "fp32"  # or "bf16" (autocast)
    compile: bool = False  # torch.compile the model
    nn_dropout: bool = False  # lever: torch's nn.Dropout (bernoulli_ mask) instead of ours
    torch_loss: bool = False  # lever: F.cross_entropy(label_smoothing=...) for the same loss


def ours_step(
    config: ModelConfig,
    batches: list[Batch],
    options: OursOptions = OursOptions(),
    device: torch.device = CPU,
) -> Callable[[], None]:
    """Our Transformer, one training step per batch, as `aiayn.training.Trainer` runs it."""
    model = Transformer(config).to(device).train()
    if options.nn_dropout:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.__class__ = nn.Dropout
    forward = torch.compile(model) if options.compile else model
    optimizer = adam(model, options.fused_adam)
    batches = [b.to(device) for b in batches]

    def step(batch: Batch) -> None:
        output_mask = batch.tgt_mask if options.output_mask else None
        with autocast(options.precision, device):
            logits = forward(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask, output_mask)
        if output_mask is None:  # the lever's "off": generator at every position, pad included
            logits = logits[batch.tgt_mask]
        target = batch.tgt_out[batch.tgt_mask]
        if options.torch_loss:
            loss = F.cross_entropy(
                logits.float(), target, label_smoothing=LABEL_SMOOTHING, reduction="sum"
            )
        else:
            loss, _ = label_smoothed_nll(logits, target, LABEL_SMOOTHING)
        (loss / batch.n_tgt_tokens).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def run() -> None:
        for batch in batches:
            step(batch)

    return run


def baseline_step(
    config: ModelConfig,
    batches: list[Batch],
    precision: str = "fp32",
    device: torch.device = CPU,
) -> Callable[[], None]:
    """`nn.Transformer` trained as its users write it (see baselines.py)."""
    model = baselines.TorchTransformer(config).to(device).train()
    optimizer = baselines.make_optimizer(model)
    criterion = baselines.make_criterion(config, LABEL_SMOOTHING)
    batches = [b.to(device) for b in batches]

    def run() -> None:
        with warnings.catch_warnings():
            # nn.Transformer warns about mixing a bool padding mask with a float causal mask.
            warnings.simplefilter("ignore", UserWarning)
            for batch in batches:
                baselines.train_step(model, optimizer, criterion, batch, precision)

    return run
