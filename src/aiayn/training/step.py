"""One update of training: what `Trainer.fit` runs for every group of batches.

For each batch: forward under autocast, label-smoothed loss over the real target tokens only
(the generator never sees padding), backward. Then the gradients are divided by the update's
target tokens (over every rank), clipped if asked, and the schedule and optimizer take a step.

The benchmark suite times this same object (benchmarks/training.py), so its training figures are
those of the trainer's own update, not of a copy of it.

The losses stay on the device: reading them (`float(...)`) waits for the device to finish, so
the trainer reads them only when it logs (`progress.LossWindow.flush`), not once per batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from aiayn.data import Batch
from aiayn.training.distributed import DistInfo, all_reduce_sum
from aiayn.training.loss import label_smoothed_nll
from aiayn.training.precision import autocast
from aiayn.training.schedule import NoamSchedule
from aiayn.training.token_dropout import drop_tokens


@dataclass(frozen=True)
class UpdateResult:
    """What one update reports, summed over every rank.

    Attributes:
        loss: summed label-smoothed loss over the update's target tokens (float64 scalar; on
            the device in a single process, so reading it is the only wait for the device).
        nll: summed negative log-likelihood over the same tokens (likewise).
        tokens: real target tokens of the update.
        stop: whether any rank was asked to stop (all then stop after this same update).
    """

    loss: Tensor
    nll: Tensor
    tokens: float
    stop: bool


class TrainStep:
    """The update function: forward/backward over a group of batches, then one optimizer step.

    Args:
        model: the model whose gradients are scaled and clipped (the bare one, not DDP).
        optimizer: its optimizer (`optim.make_optimizer`).
        schedule: sets the learning rate before each optimizer step (`NoamSchedule` or its
            cosine subclass).
        label_smoothing: epsilon of the loss.
        token_dropout: probability of replacing each input token by <unk> (token_dropout.py);
            0 = off.
        clip_norm: gradient-norm clipping; 0 = off.
        precision: a resolved precision, "fp32" or "bf16" (autocast).
        device: where batches are moved and computed.
        dist: this process's place in a torchrun run.
        forward: what computes the logits: the model itself, its DDP wrapper or a compiled one;
            default `model`.
        ddp: the DDP wrapper, if any: gradients are all-reduced only on an update's last batch.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: NoamSchedule,
        *,
        label_smoothing: float,
        clip_norm: float,
        precision: str,
        device: torch.device,
        dist: DistInfo | None = None,
        forward: nn.Module | None = None,
        ddp: DistributedDataParallel | None = None,
        token_dropout: float = 0.0,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.label_smoothing = label_smoothing
        self.token_dropout = token_dropout
        self.clip_norm = clip_norm
        self.precision = precision
        self.device = device
        self.dist = dist or DistInfo()
        self.forward = forward if forward is not None else model
        self.ddp = ddp

    def loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Summed smoothed loss and NLL of one batch (already on the device), real targets only."""
        with autocast(self.precision, self.device):
            logits = self.forward(
                batch.src,
                batch.tgt_in,
                batch.src_mask,
                batch.tgt_mask,
                output_mask=batch.tgt_mask,  # the generator only sees real targets
            )
        return label_smoothed_nll(logits, batch.tgt_out[batch.tgt_mask], self.label_smoothing)

    def __call__(
        self, batches: Sequence[Batch], stop_requested: Callable[[], bool] = lambda: False
    ) -> UpdateResult:
        """Forward/backward over the batches of one update, then one optimizer step.

        Args:
            batches: the update's batches (`update_freq` of them, or fewer at an epoch's end).
            stop_requested: asked after the last backward: whether this rank should stop.

        Returns:
            The update's summed losses and tokens over every rank, and whether to stop.
        """
        self.model.train()
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss, NLL
        tokens = 0
        for i, batch in enumerate(batches):
            batch = drop_tokens(batch.to(self.device, non_blocking=True), self.token_dropout)
            last = i == len(batches) - 1
            # Gradients are averaged over ranks once per update, not per batch.
            sync = (
                self.ddp.no_sync()
                if self.ddp is not None and not last
                else contextlib.nullcontext()
            )
            with sync:
                loss, nll = self.loss(batch)
                loss.backward()
            sums += torch.stack([loss.detach(), nll]).double()
            tokens += batch.n_tgt_tokens
        stop = stop_requested()
        if self.dist.enabled:
            # Every rank needs the update's tokens (to scale) and everyone's stop flag: one
            # collective, and one wait for the device, per update.
            flags = torch.tensor([tokens, float(stop)], dtype=torch.float64, device=self.device)
            total = all_reduce_sum(torch.cat([sums, flags]), self.dist).cpu()
            sums, n_tokens, stop = total[:2], total[2].item(), total[3].item() > 0
        else:
            n_tokens = float(tokens)
        # The gradient of the summed loss, divided by the target tokens of the whole update over
        # every rank: equal to one process on the same global batch. DDP already averaged over
        # ranks (divided by world_size), so multiply that back.
        scale = self.dist.world_size / max(n_tokens, 1.0)
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        torch._foreach_mul_(grads, scale)
        if self.clip_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.schedule.step()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return UpdateResult(sums[0], sums[1], n_tokens, stop)
