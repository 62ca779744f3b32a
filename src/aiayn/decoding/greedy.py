"""Greedy search: at every step, take the single most likely next token."""

from __future__ import annotations

import torch
from torch import Tensor

from aiayn.decoding.protocol import Cache, StepModel, max_len_per_sentence


# Search never backpropagates: inference mode also skips autograd's per-operator bookkeeping
# (version counters, views), which a cached step of small matmuls feels. Tensors it makes stay
# inside; the caller's cache may be a normal tensor.
@torch.inference_mode()
def greedy_search(
    model: StepModel,
    cache: Cache,
    *,
    bos_id: int,
    eos_id: int,
    max_len: Tensor | int,
) -> list[list[int]]:
    """Translate a batch greedily (argmax at each step).

    A sentence stops when it emits EOS or has `max_len - 1` real tokens (the EOS it would then
    be forced to emit counts towards `max_len`, as in `beam_search`, and costs no model call).
    Finished sentences are dropped from the batch with `cache.reorder`, so each step only runs
    the model on sentences still being written.

    Args:
        model: the step function (see `protocol.StepModel`).
        cache: one row per source sentence.
        bos_id: the token that starts every output.
        eos_id: the token that ends an output.
        max_len: maximum output length counting the EOS, for all sentences or per sentence.

    Returns:
        Per sentence, in input order: the output ids without BOS and without EOS.

    Shape:
        cache: B rows; max_len: int or (B,)
    """
    batch = cache.batch_size
    # Real tokens each sentence may emit; the EOS is implied at max_len.
    room = max_len_per_sentence(max_len, batch) - 1  # (B,)

    rows = room.nonzero().squeeze(1)  # (A,) sentence of each active row; room 0 means "[]"
    if rows.numel() == 0:
        return [[] for _ in range(batch)]
    if rows.numel() < batch:
        cache = cache.reorder(rows)
    room = room[rows]  # (A,)
    tokens = torch.full((rows.numel(), 1), bos_id, dtype=torch.long)  # (A, 1)

    # (rows, tokens) emitted at every step; assembled into per-sentence lists at the end.
    history: list[tuple[Tensor, Tensor]] = []
    while True:
        # The argmax needs no normalisation over the vocabulary: logits rank as log-probs.
        scores, cache = model.step(tokens, cache, normalize=False)  # (A, V)
        next_tokens = scores.argmax(dim=-1)  # (A,)
        # State follows the model's device (no-ops after the first step).
        rows, room = rows.to(next_tokens.device), room.to(next_tokens.device)
        history.append((rows, next_tokens))
        step = len(history)

        done = (next_tokens == eos_id) | (room == step)  # (A,)
        if bool(done.all()):
            break
        if bool(done.any()):
            # Drop finished sentences so the next step runs on the rest only.
            keep = (~done).nonzero().squeeze(1)  # (A',)
            cache = cache.reorder(keep)
            rows, room, next_tokens = rows[keep], room[keep], next_tokens[keep]
        tokens = next_tokens.unsqueeze(1)  # (A', 1)

    # out[b, t] = token of sentence b at step t; EOS fills steps after a sentence stopped.
    out = torch.full((batch, len(history)), eos_id, dtype=torch.long)  # (B, T)
    for t, (step_rows, step_tokens) in enumerate(history):
        out[step_rows.cpu(), t] = step_tokens.cpu()
    lengths = (out != eos_id).cumprod(dim=1).sum(dim=1).tolist()  # tokens before the first EOS
    return [ids[:n] for ids, n in zip(out.tolist(), lengths, strict=True)]
