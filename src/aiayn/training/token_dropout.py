"""Token dropout: a regulariser for small corpora, applied to a batch's inputs in training.

Each real source token, and each real decoder input after BOS, is replaced by ``<unk>`` with
probability p, independently (Sennrich et al., 2016, "Edinburgh Neural Machine Translation
Systems for WMT 16", drop whole words; here the units are the vocabulary's subword pieces).
The model then cannot lean on any single input token: the encoder learns to translate around a
missing word, and the decoder to continue a prefix it does not fully trust, as at inference
after its own mistakes. Labels (``tgt_out``) are never changed: the loss still asks for the
true next token.

``<unk>`` rather than a zeroed embedding keeps the model unchanged (no new code path at
inference); its embedding, otherwise almost unused under subwords, learns "some token here".
The draws come from torch's global generator, which the checkpoints save, so a resumed run
drops exactly the tokens an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses

import torch

from aiayn.data import Batch
from aiayn.data.tokenizer import UNK_ID


def drop_tokens(batch: Batch, p: float) -> Batch:
    """A copy of ``batch`` whose inputs have each real token replaced by ``<unk>`` w.p. ``p``.

    Args:
        batch: a training batch, on the device it will be computed on.
        p: the probability of replacing each token, in [0, 1).

    Returns:
        The batch with ``src`` and ``tgt_in`` changed; masks, labels and counts are the same.

    Shape:
        Every tensor keeps its shape: ``src`` (B, S), ``tgt_in`` (B, T).
    """
    if p <= 0.0:
        return batch
    src_drop = (torch.rand(batch.src.shape, device=batch.src.device) < p) & batch.src_mask
    tgt_drop = (torch.rand(batch.tgt_in.shape, device=batch.tgt_in.device) < p) & batch.tgt_mask
    tgt_drop[:, 0] = False  # BOS tells the decoder where the sentence starts: always kept
    return dataclasses.replace(
        batch,
        src=batch.src.masked_fill(src_drop, UNK_ID),
        tgt_in=batch.tgt_in.masked_fill(tgt_drop, UNK_ID),
    )
