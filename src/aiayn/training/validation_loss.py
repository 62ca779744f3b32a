"""The validation loss: label-smoothed loss, NLL and perplexity per target token, over ranks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from aiayn.data import Collator, IdPair, TokenBatchSampler
from aiayn.model import Transformer
from aiayn.training.config import TrainConfig
from aiayn.training.distributed import DistInfo, all_reduce_sum
from aiayn.training.interrupt import StopRequest
from aiayn.training.loss import label_smoothed_nll
from aiayn.training.precision import autocast


@torch.no_grad()
def validation_loss(
    model: Transformer,
    pairs: Sequence[IdPair],
    config: TrainConfig,
    collator: Collator,
    precision: str,
    device: torch.device,
    dist: DistInfo,
    stop: StopRequest,
) -> dict[str, float] | None:
    """Loss, NLL and perplexity per target token of `pairs`, the model in eval mode.

    The validation batches (length-sorted, `config.max_tokens` each) are shared out over the
    ranks, rank r scoring batches r, r + world_size, ...; the sums are added over ranks, so
    every rank returns the same figures, those of one process scoring everything.

    Args:
        model: the model (its train/eval mode is restored afterwards).
        pairs: encoded validation pairs.
        config: supplies max_tokens and label_smoothing.
        collator: builds the batches.
        precision: "fp32" or "bf16".
        device: where to compute.
        dist: this process's place in the run.
        stop: consulted between batches (one process) or once at the end (torchrun, where
            every rank must take part in the same collectives).

    Returns:
        {"loss", "nll", "ppl"}, or None if a stop was asked for meanwhile.
    """
    was_training = model.training
    model.eval()
    try:
        lengths = [(len(s), len(t)) for s, t in pairs]
        batches = TokenBatchSampler(lengths, config.max_tokens, shuffle=False).epoch_batches(0)
        sums = torch.zeros(4, dtype=torch.float64)
        for indices in batches[dist.rank :: dist.world_size]:
            if stop.requested and not dist.enabled:
                return None
            batch = collator([pairs[i] for i in indices]).to(device)
            with autocast(precision, device):
                logits = model(
                    batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask, batch.tgt_mask
                )
            loss, nll = label_smoothed_nll(
                logits, batch.tgt_out[batch.tgt_mask], config.label_smoothing
            )
            sums[:3] += torch.tensor(
                [loss.item(), nll.item(), batch.n_tgt_tokens], dtype=torch.float64
            )
        sums[3] = float(stop.requested)
        loss, nll, tokens, stopped = all_reduce_sum(sums.to(device), dist).tolist()
    finally:
        model.train(was_training)
    if stopped:
        return None
    return {"loss": loss / tokens, "nll": nll / tokens, "ppl": math.exp(nll / tokens)}
