"""Validation during training: the loss over the ranks, the hooks' metrics, the best so far.

The trainer knows nothing of search or scoring. Validation beyond the loss (e.g. BLEU) comes in
as hooks, callables `hook(model, epoch, step) -> {"bleu": 31.2}` run on the main process after
each validation (as minGPT's trainer takes callbacks); the CLI plugs BLEU in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from aiayn.data import Collator, IdPair
from aiayn.model import Transformer
from aiayn.training.config import TrainConfig
from aiayn.training.distributed import DistInfo, all_reduce_sum
from aiayn.training.interrupt import StopRequest
from aiayn.training.validation_loss import validation_loss

ValidationHook = Callable[[Transformer, int, int], dict[str, float]]


def stop_agreed(stop: StopRequest, device: torch.device, dist: DistInfo) -> bool:
    """Whether any rank was asked to stop (the same answer on every rank; collective)."""
    flag = torch.tensor([float(stop.requested)], dtype=torch.float64)
    return all_reduce_sum(flag.to(device), dist).item() > 0


class Validator:
    """Validates the model being trained and remembers the best result so far.

    Args:
        model: the model (not its DDP wrapper: validation makes no gradients to share).
        pairs: encoded validation pairs.
        config: supplies max_tokens, label_smoothing and best_metric.
        collator: builds the batches (the one training uses).
        precision: "fp32" or "bf16".
        device: where to compute.
        dist: this process's place in the run.
        hooks: extra validation metrics, run on the main process (see module docstring).
    """

    def __init__(
        self,
        model: Transformer,
        pairs: Sequence[IdPair],
        config: TrainConfig,
        collator: Collator,
        precision: str,
        device: torch.device,
        dist: DistInfo,
        hooks: Sequence[ValidationHook] = (),
    ) -> None:
        self.model = model
        self.pairs = pairs
        self.config = config
        self.collator = collator
        self.precision = precision
        self.device = device
        self.dist = dist
        self.hooks = list(hooks)
        self.best: float | None = None  # the best value so far: NLL, or minus BLEU

    @torch.no_grad()
    def __call__(self, stop: StopRequest, epoch: int, step: int) -> dict[str, float] | None:
        """Validation loss, NLL and perplexity per target token, plus the hooks' metrics.

        Each rank scores its share of the validation batches (see validation_loss.py); the
        hooks (BLEU) run on the main process, with the model in eval mode.

        Args:
            stop: the run's stop request, consulted between the parts of the validation.
            epoch: epochs completed, passed to the hooks.
            step: updates taken, passed to the hooks.

        Returns:
            The metrics, or None if a stop was asked for meanwhile (the validation is then
            repeated when the run resumes).
        """
        args = (self.config, self.collator, self.precision, self.device, self.dist, stop)
        metrics = validation_loss(self.model, self.pairs, *args)
        if metrics is None:
            return None
        if self.dist.is_main and self.hooks:
            self.model.eval()
            for hook in self.hooks:
                if stop.requested:
                    break
                metrics.update(hook(self.model, epoch, step))
            self.model.train()
        return None if stop_agreed(stop, self.device, self.dist) else metrics

    def is_better(self, metrics: dict[str, float]) -> bool:
        """Whether these metrics beat the best so far (NLL lower, BLEU higher); if so, the
        best becomes theirs."""
        if self.config.best_metric == "bleu":
            if "bleu" not in metrics:  # no BLEU this time: nothing to compare with
                return False
            value = -metrics["bleu"]
        else:
            value = metrics["nll"]
        if self.best is None or value < self.best:
            self.best = value
            return True
        return False
