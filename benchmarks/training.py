"""Training-step candidates: the trainer's own update, and nn.Transformer driven two ways.

One call of a candidate is one update (forward, label-smoothed loss, backward, optimizer and
schedule step) on each batch of a workload, in order.

- `ours_step`: our Transformer through `aiayn.training.TrainStep`, the object `Trainer.fit`
  calls for every update, built with the trainer's defaults (`TrainConfig()`).
- `baseline_same_step` (like for like, the headline): `nn.Transformer` through that same
  `TrainStep`: the same optimizer (same fused/foreach flags), schedule, clipping, loss over the
  same real target positions (the generator too), the same autocast device and dtype, and its
  attention dropout set to ours. What differs is the encoder-decoder stack alone.
- `baseline_as_users_write_it`: `nn.Transformer` trained as its users write it
  (baselines.py, frozen): the generator and loss over every position, plain Adam, attention
  dropout = dropout. Ours against it is the "as a user runs each" ratio.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aiayn.data import Batch
from aiayn.model import ModelConfig, Transformer
from aiayn.training import NoamSchedule, TrainConfig, TrainStep, label_smoothed_nll
from aiayn.training.optim import make_optimizer
from aiayn.training.precision import autocast
from benchmarks import baselines

CPU = torch.device("cpu")
TRAIN = TrainConfig()  # the trainer's defaults: label smoothing, clipping, schedule, Adam


@dataclass(frozen=True)
class OursOptions:
    """How our step runs; the defaults are what the trainer does."""

    output_mask: bool = True  # generator + loss only at real target positions
    fused_adam: bool = True  # the trainer's make_optimizer (fused where the backend has it)
    precision: str = "fp32"  # or "bf16" (autocast)
    compile: bool = False  # torch.compile the model
    nn_dropout: bool = False  # lever: torch's nn.Dropout (bernoulli_ mask) instead of ours
    torch_loss: bool = False  # lever: F.cross_entropy(label_smoothing=...) for the same loss


class _GeneratorOverPadding(TrainStep):
    """Lever: the generator at every target position, then the real ones picked for the loss."""

    def loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        with autocast(self.precision, self.device):
            logits = self.forward(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)
        target = batch.tgt_out[batch.tgt_mask]
        return label_smoothed_nll(logits[batch.tgt_mask], target, self.label_smoothing)


class _TorchLoss(TrainStep):
    """Lever: `F.cross_entropy(label_smoothing=...)` for the same loss."""

    def loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        with autocast(self.precision, self.device):
            logits = self.forward(
                batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask, batch.tgt_mask
            )
        target = batch.tgt_out[batch.tgt_mask]
        loss = F.cross_entropy(
            logits.float(), target, label_smoothing=self.label_smoothing, reduction="sum"
        )
        return loss, loss.detach()  # (the NLL is not timed separately here)


def train_step(
    model: nn.Module,
    device: torch.device,
    precision: str,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    forward: nn.Module | None = None,
    kind: type[TrainStep] = TrainStep,
) -> TrainStep:
    """A `TrainStep` as `Trainer` builds it (single process), with the trainer's defaults."""
    optimizer = optimizer or make_optimizer(model, TRAIN, device)
    d_model = model.config.d_model  # type: ignore[union-attr]
    schedule = NoamSchedule(optimizer, d_model, TRAIN.warmup, TRAIN.lr_factor)
    return kind(
        model,
        optimizer,
        schedule,
        label_smoothing=TRAIN.label_smoothing,
        clip_norm=TRAIN.clip_norm,
        precision=precision,
        device=device,
        forward=forward,
    )


class StepRunner:
    """A candidate: one update per batch of a workload, through `step` (a `TrainStep`)."""

    def __init__(self, step: TrainStep, batches: list[Batch]) -> None:
        self.step = step
        self.batches = batches

    def __call__(self) -> None:
        with warnings.catch_warnings():
            # nn.Transformer warns about mixing a bool padding mask with a float causal mask.
            warnings.simplefilter("ignore", UserWarning)
            for batch in self.batches:
                self.step([batch])


def ours_step(
    config: ModelConfig,
    batches: list[Batch],
    options: OursOptions = OursOptions(),
    device: torch.device = CPU,
) -> StepRunner:
    """Our Transformer, one trainer update per batch (options flip one lever each)."""
    model = Transformer(config).to(device).train()
    if options.nn_dropout:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.__class__ = nn.Dropout
    forward = torch.compile(model) if options.compile else None
    optimizer = None
    if not options.fused_adam:  # lever: torch's default Adam (for-loop on the CPU)
        optimizer = torch.optim.Adam(
            model.parameters(), lr=0.0, betas=(TRAIN.adam_beta1, TRAIN.adam_beta2),
            eps=TRAIN.adam_eps,
        )  # fmt: skip
    kind: type[TrainStep] = TrainStep
    if not options.output_mask:
        kind = _GeneratorOverPadding
    elif options.torch_loss:
        kind = _TorchLoss
    step = train_step(
        model, device, options.precision, optimizer=optimizer, forward=forward, kind=kind
    )
    return StepRunner(step, [b.to(device) for b in batches])


def baseline_same_step(
    config: ModelConfig, batches: list[Batch], precision: str = "fp32", device: torch.device = CPU
) -> StepRunner:
    """`nn.Transformer` through the trainer's own `TrainStep` (like for like)."""
    model = baselines.TorchTransformer(config, attention_dropout=config.attention_dropout)
    step = train_step(model.to(device).train(), device, precision)
    return StepRunner(step, [b.to(device) for b in batches])


class BaselineAsUsersWriteIt:
    """`nn.Transformer` trained as its users write it (see baselines.py)."""

    def __init__(
        self, config: ModelConfig, batches: list[Batch], precision: str, device: torch.device
    ) -> None:
        self.model = baselines.TorchTransformer(config).to(device).train()
        self.optimizer = baselines.make_optimizer(self.model)
        self.criterion = baselines.make_criterion(config, TRAIN.label_smoothing)
        self.batches = [b.to(device) for b in batches]
        self.precision = precision

    def __call__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # as in StepRunner
            for batch in self.batches:
                baselines.train_step(
                    self.model, self.optimizer, self.criterion, batch, self.precision
                )


def baseline_as_users_write_it(
    config: ModelConfig, batches: list[Batch], precision: str = "fp32", device: torch.device = CPU
) -> BaselineAsUsersWriteIt:
    """`nn.Transformer` trained as its users write it (baselines.py)."""
    return BaselineAsUsersWriteIt(config, batches, precision, device)
