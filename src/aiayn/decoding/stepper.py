"""Adapter from the `Transformer` to the search protocol (`StepModel` + `Cache`).

The Transformer's incremental API is `decode(tokens, memory, cache) -> (logits, cache)`. Search
only knows `step(tokens, cache) -> (log_probs, cache)` and `cache.reorder(indices)`, so this
module bundles the per-row state the decoder needs (the encoder `Memory` and the `DecoderCache`)
into one `StepperCache` that reorders both together, and turns logits into log-probabilities.

Typical use::

    model.eval()
    stepper, cache = start(model, src, src_mask)
    outputs = beam_search(stepper, cache, bos_id=..., eos_id=..., max_len=...)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from aiayn.model import DecoderCache, Memory, Transformer


@dataclass(frozen=True)
class StepperCache:
    """Everything the decoder keeps per row (sentence x beam) between steps.

    With a cache, `Transformer.decode` reads the cross-attention keys/values and the source mask
    from the `DecoderCache`; the `Memory` is kept in step anyway because `decode` takes it, and a
    memory whose rows disagree with the cache would be a trap for any future use of it.

    Attributes:
        memory: encoder output and source mask, (R, S, D) and (R, S).
        decoder: self-/cross-attention keys and values of every decoder layer.
    """

    memory: Memory
    decoder: DecoderCache

    @property
    def batch_size(self) -> int:
        """Rows (sentences x beams)."""
        return self.decoder.batch_size

    def reorder(self, indices: Tensor) -> StepperCache:
        """Rows `indices` of the memory and of the decoder cache.

        Args:
            indices: LongTensor (R_new,) of old row numbers, on any device.
        """
        indices = indices.to(self.memory.states.device)
        return StepperCache(self.memory.reorder(indices), self.decoder.reorder(indices))


class ModelStepper:
    """A `Transformer` seen as a `StepModel`: one target token per row per call.

    Args:
        model: the trained model; put it in eval mode first (dropout would randomise search).
    """

    def __init__(self, model: Transformer) -> None:
        self.model = model

    def step(self, tokens: Tensor, cache: StepperCache) -> tuple[Tensor, StepperCache]:
        """Decode one position and return next-token log-probabilities.

        Args:
            tokens: the newest token of every row.
            cache: from `start` or the previous step.

        Returns:
            Log-probabilities of the next token, and the extended cache.

        Shape:
            tokens: (R, 1) -> log_probs: (R, V)
        """
        tokens = tokens.to(cache.memory.states.device)
        logits, decoder = self.model.decode(tokens, cache.memory, cache.decoder)  # (R, 1, V)
        if decoder is None:  # decode returns None only when called without a cache
            raise RuntimeError("Transformer.decode returned no cache for a cached step")
        # float32: beam sums many log-probs, which half precision would round badly.
        log_probs = torch.log_softmax(logits[:, -1].float(), dim=-1)  # (R, V)
        return log_probs, StepperCache(cache.memory, decoder)


@torch.no_grad()
def start(
    model: Transformer,
    src: Tensor,
    src_mask: Tensor | None = None,
    *,
    capacity: int | None = None,
) -> tuple[ModelStepper, StepperCache]:
    """Encode a batch and prepare decoding: the two arguments every search function takes.

    Args:
        model: the trained model, in eval mode.
        src: source ids.
        src_mask: True = real source token; derived from the model's pad id when None.
        capacity: target positions to preallocate in the decoder cache (e.g. the largest
            max_len); the cache grows by doubling when None or too small.

    Returns:
        The step function and a cache with one row per source sentence.

    Shape:
        src: (B, S), src_mask: (B, S)
    """
    memory = model.encode(src, src_mask)
    decoder = model.init_cache(memory) if capacity is None else model.init_cache(memory, capacity)
    return ModelStepper(model), StepperCache(memory, decoder)
