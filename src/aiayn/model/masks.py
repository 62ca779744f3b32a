"""Attention masks, in ONE polarity for the whole package.

Every mask in aiayn is boolean with **True = a real token / may attend** (the convention of
`torch.nn.functional.scaled_dot_product_attention`). Padding is carried as a (B, S) mask per
sequence; the decoder adds causality itself. A row with nothing to attend to (an empty source)
yields a zero vector, never NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(ids: Tensor, pad_id: int) -> Tensor:
    """True where `ids` holds a real token.

    Shape:
        ids: (B, S) -> (B, S) bool
    """
    return ids != pad_id


def subsequent_mask(size: int, device: torch.device | str | None = None) -> Tensor:
    """The tutorial's subsequent mask: position i may attend to positions 0..i.

    Shape:
        (size, size) bool, lower triangular
    """
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def causal_mask(q_len: int, k_len: int, device: torch.device | str | None = None) -> Tensor:
    """Causal mask aligned to the right, for queries that are the last `q_len` of `k_len` keys.

    With a KV cache the keys hold `k_len - q_len` earlier positions followed by the new ones, so
    query i sits at absolute position `k_len - q_len + i` and may attend to keys 0..that. (SDPA's
    `is_causal=True` aligns to the top left instead, which is wrong whenever q_len != k_len.)

    Shape:
        (q_len, k_len) bool
    """
    if q_len > k_len:
        raise ValueError(f"causal_mask: q_len ({q_len}) > k_len ({k_len})")
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(diagonal=k_len - q_len)


def key_mask(mask: Tensor) -> Tensor:
    """A (B, S) padding mask shaped to broadcast over heads and queries.

    Shape:
        (B, S) -> (B, 1, 1, S)
    """
    return mask[:, None, None, :]


def decoder_self_mask(tgt_mask: Tensor) -> Tensor:
    """Padding mask of the target combined with the causal mask.

    Shape:
        (B, T) -> (B, 1, T, T)
    """
    t = tgt_mask.shape[1]
    return key_mask(tgt_mask) & causal_mask(t, t, tgt_mask.device)
