"""Scaled dot-product attention and multi-head attention (paper section 3.2).

The paper's attention is softmax(Q K^T / sqrt(d_k)) V. `explicit_attention` writes exactly that,
as the tutorial thread does. Masks use the package's one polarity (True = may attend, see
`masks.py`). The model's `attention_kernel` may instead hand the same computation to PyTorch's
fused kernel (`fast.sdpa_attention`, equal to float rounding in values and gradients); the
attention weights for pictures always come from the explicit kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aiayn.model import fast
from aiayn.model.cache import LayerCache
from aiayn.model.masks import causal_mask


def explicit_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    causal: bool = False,
    dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T / sqrt(d_k)) V, written out.

    Args:
        q: queries.
        k: keys.
        v: values.
        mask: boolean, True = may attend, broadcastable to (B, H, Tq, Tk); None = no padding.
        causal: also apply a right-aligned causal mask (see `masks.causal_mask`).
        dropout_p: dropout on the attention weights.

    Returns:
        The attended values and the attention weights.

    Shape:
        q: (B, H, Tq, Dh), k and v: (B, H, Tk, Dh) -> (B, H, Tq, Dh), weights (B, H, Tq, Tk)
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
    if causal:
        tri = causal_mask(q.shape[-2], k.shape[-2], q.device)
        mask = tri if mask is None else mask & tri
    if mask is not None:
        # A large negative rather than -inf: a fully masked row then softmaxes to a uniform row
        # (no NaN) that the masked_fill below turns into zeros.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights


class MultiHeadAttention(nn.Module):
    """h parallel scaled dot-product attentions, concatenated and projected (paper section 3.2.2).

    Subclasses decide where queries, keys and values come from: `SelfAttention` projects all three
    from one sequence with one fused matmul, `CrossAttention` projects queries from the decoder and
    keys/values from the encoder output.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, kernel: str) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.dropout = dropout  # on the attention weights
        self.kernel = kernel  # "sdpa", "explicit" or "auto"; Transformer.use_kernel changes it
        self.out_proj = nn.Linear(d_model, d_model)

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, T, H * Dh) -> (B, H, T, Dh)."""
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_head).transpose(1, 2)

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None,
        causal: bool,
        weights_out: list[Tensor] | None,
    ) -> Tensor:
        """Attention on (B, H, T, Dh) heads, then the output projection of the concatenation."""
        dropout_p = self.dropout if self.training else 0.0
        kernel = fast.choose_kernel(self.kernel, k.shape[-2], q.device, q.shape[-2])
        if weights_out is None and kernel == "sdpa":
            out = fast.sdpa_attention(q, k, v, mask, causal=causal, dropout_p=dropout_p)
        else:
            out, weights = explicit_attention(q, k, v, mask, causal=causal, dropout_p=dropout_p)
            if weights_out is not None:
                weights_out.append(weights.detach())
        b, _, t, _ = out.shape
        out = out.transpose(1, 2).reshape(b, t, self.n_heads * self.d_head)  # (B, T, D)
        return self.out_proj(out)


class SelfAttention(MultiHeadAttention):
    """Multi-head self-attention with a fused Q/K/V projection.

    `qkv_proj.weight` stacks the paper's W^Q, W^K and W^V (each d_model x d_model) row-wise, so one
    matmul produces all three.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, kernel: str) -> None:
        super().__init__(d_model, n_heads, dropout, kernel)
        self.qkv_proj = nn.Linear(d_model, 3 * d_model)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        causal: bool = False,
        cache: LayerCache | None = None,
        start: int = 0,
        weights_out: list[Tensor] | None = None,
    ) -> Tensor:
        """Attend from every position of `x` to every (allowed) position of `x`.

        Args:
            x: the sequence.
            mask: True = may attend, broadcastable to (B, H, T, T_keys).
            causal: add the right-aligned causal mask.
            cache: this layer's decoder cache: the keys/values of the `start` earlier positions
                are in its self-attention buffers; this call adds its own after them and
                attends to all `start + T`.
            start: how many positions `cache` already holds.
            weights_out: if a list, the attention weights (B, H, T, T_keys) are appended to it.

        Returns:
            The attention output.

        Shape:
            x: (B, T, D) -> (B, T, D)
        """
        b, t, _ = x.shape
        qkv = self.qkv_proj(x).view(b, t, 3, self.n_heads, self.d_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, T, Dh)
        if cache is not None:
            k, v = cache.append_self(k, v, start)
        return self.attend(q, k, v, mask, causal, weights_out)


class CrossAttention(MultiHeadAttention):
    """Multi-head attention from the decoder (queries) to the encoder output (keys, values).

    Keys and values depend only on the source, so `project_memory` computes them once per source
    sentence; a KV cache keeps them for every decoding step.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, kernel: str) -> None:
        super().__init__(d_model, n_heads, dropout, kernel)
        self.q_proj = nn.Linear(d_model, d_model)
        self.kv_proj = nn.Linear(d_model, 2 * d_model)  # W^K and W^V stacked row-wise

    def project_memory(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of the encoder output.

        Shape:
            memory: (B, S, D) -> two (B, H, S, Dh)
        """
        b, s, _ = memory.shape
        kv = self.kv_proj(memory).view(b, s, 2, self.n_heads, self.d_head)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        return k, v

    def forward(
        self,
        x: Tensor,
        memory_kv: tuple[Tensor, Tensor],
        mask: Tensor | None = None,
        *,
        weights_out: list[Tensor] | None = None,
    ) -> Tensor:
        """Attend from the decoder states `x` to the projected encoder output.

        `x` may hold several rows per source sentence (beam search's beams: R = B x beams
        consecutive rows per sentence) while `memory_kv` and `mask` hold one row per sentence.
        The beams then attend as beams x T queries of their sentence's row: one product with
        the sentence's keys, which are never copied per beam.

        Args:
            x: decoder states.
            memory_kv: keys and values from `project_memory`.
            mask: the source padding mask shaped (B, 1, 1, S), True = real token.
            weights_out: if a list, the attention weights (B, H, beams x T, S) are appended.

        Returns:
            The attention output.

        Shape:
            x: (R, T, D), memory_kv: two (B, H, S, Dh) with R = B x beams -> (R, T, D)
        """
        q = self.split_heads(self.q_proj(x))  # (R, H, T, Dh)
        k, v = memory_kv  # (B, H, S, Dh)
        rows, sentences = q.shape[0], k.shape[0]
        if rows == sentences:
            return self.attend(q, k, v, mask, False, weights_out)
        # Beams: their sentence's keys, shared rather than copied per beam (see fast.fold_beams).
        out = self.attend(fast.fold_beams(q, sentences), k, v, mask, False, weights_out)
        return fast.unfold_beams(out, rows)  # (R, T, D)
