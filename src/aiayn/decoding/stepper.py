"""Adapter from the `Transformer` to the search protocol (`StepModel` + `Cache`).

The Transformer's incremental API is `decode(tokens, memory, cache) -> (logits, cache)`. Search
only knows `step(tokens, cache) -> (log_probs, cache)`, `cache.reorder(indices)` and
`cache.expand_beams(k)`. The model's `DecoderCache` already is such a cache: it holds everything
a cached step reads (self-attention keys/values, the cross-attention keys/values computed once
from the encoder output, and the source mask), so the encoder `Memory` itself is not carried,
and beam search does not copy it each step. This module only turns logits into
log-probabilities, without the ids a vocabulary forbids (an imported Marian model's pad, see
`Tokenizer.suppressed_ids`).

Typical use::

    model.eval()
    stepper, cache = start(model, src, src_mask)
    outputs = beam_search(stepper, cache, bos_id=..., eos_id=..., max_len=...)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from aiayn.model import DecoderCache, Transformer


class ModelStepper:
    """A `Transformer` seen as a `StepModel`: one target token per row per call.

    Args:
        model: the trained model; put it in eval mode first (dropout would randomise search).
        suppressed_ids: ids never to emit: their logits are -inf before the softmax, so the
            other tokens' probabilities are renormalised without them.
    """

    def __init__(self, model: Transformer, suppressed_ids: Sequence[int] = ()) -> None:
        self.model = model
        self.suppressed_ids = list(suppressed_ids)

    def step(
        self, tokens: Tensor, cache: DecoderCache, *, normalize: bool = True
    ) -> tuple[Tensor, DecoderCache]:
        """Decode one position and return next-token log-probabilities.

        Args:
            tokens: the newest token of every row.
            cache: from `start` or the previous step.
            normalize: False returns the logits (see `protocol.StepModel.step`).

        Returns:
            Log-probabilities of the next token (logits if not `normalize`), and the
            extended cache.

        Shape:
            tokens: (R, 1) -> log_probs: (R, V)
        """
        tokens = tokens.to(cache.src_mask.device)
        logits, next_cache = self.model.decode(tokens, None, cache)  # (R, 1, V)
        if next_cache is None:  # decode returns None only when called without a cache
            raise RuntimeError("Transformer.decode returned no cache for a cached step")
        logits = logits[:, -1].float()  # (R, V)
        if self.suppressed_ids:
            logits[:, self.suppressed_ids] = float("-inf")
        if not normalize:
            return logits, next_cache
        # float32: beam sums many log-probs, which half precision would round badly.
        log_probs = torch.log_softmax(logits, dim=-1)  # (R, V)
        return log_probs, next_cache


@torch.no_grad()
def start(
    model: Transformer,
    src: Tensor,
    src_mask: Tensor | None = None,
    *,
    capacity: int | None = None,
    suppressed_ids: Sequence[int] = (),
) -> tuple[ModelStepper, DecoderCache]:
    """Encode a batch and prepare decoding: the two arguments every search function takes.

    Args:
        model: the trained model, in eval mode.
        src: source ids.
        src_mask: True = real source token; derived from the model's pad id when None.
        capacity: target positions to preallocate in the decoder cache (e.g. the largest
            max_len); the cache grows by doubling when None or too small.
        suppressed_ids: ids never to emit (the target vocabulary's `suppressed_ids`).

    Returns:
        The step function and a cache with one row per source sentence.

    Shape:
        src: (B, S), src_mask: (B, S)
    """
    memory = model.encode(src, src_mask)
    cache = model.init_cache(memory) if capacity is None else model.init_cache(memory, capacity)
    return ModelStepper(model, suppressed_ids), cache
