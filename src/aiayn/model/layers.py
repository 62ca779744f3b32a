"""Encoder and decoder layers: attention and feed-forward sub-layers, each in a residual + norm.

Dropout is `fast.Dropout`: `nn.Dropout`'s, with its CPU mask drawn faster (see fast.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from aiayn.model import fast
from aiayn.model.attention import CrossAttention, SelfAttention
from aiayn.model.cache import LayerCache
from aiayn.model.config import ModelConfig

# The FFN non-linearities by ModelConfig.activation: the paper's ReLU, GELU (exact, erf), and
# swish = SiLU, x * sigmoid(x), which OPUS-MT's Marian models use.
ACTIVATION_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "swish": F.silu,
}


class FeedForward(nn.Module):
    """Position-wise feed-forward network: FFN(x) = act(x W1 + b1) W2 + b2 (paper eq. 2)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.dropout = fast.Dropout(dropout)
        self.activation = ACTIVATION_FUNCTIONS[activation]

    def forward(self, x: Tensor) -> Tensor:
        """Shape: (B, T, D) -> (B, T, D)."""
        return self.fc2(self.dropout(self.activation(self.fc1(x))))


class Residual(nn.Module):
    """A sub-layer's residual connection and LayerNorm, post-norm (paper) or pre-norm.

    post-norm: LayerNorm(x + Dropout(sublayer(x)))     pre-norm: x + Dropout(sublayer(LayerNorm(x)))
    """

    def __init__(self, d_model: int, dropout: float, norm_first: bool, eps: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout = fast.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        """Apply `sublayer` inside the residual connection. Shape: (B, T, D) -> (B, T, D)."""
        if self.norm_first:
            return x + self.dropout(sublayer(self.norm(x)))
        return self.norm(x + self.dropout(sublayer(x)))


class EncoderLayer(nn.Module):
    """Self-attention, then feed-forward (paper section 3.1)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.self_attn = SelfAttention(
            c.d_model, c.n_heads, c.attention_dropout, c.attention_kernel
        )
        self.ffn = FeedForward(c.d_model, c.d_ff, c.dropout, c.activation)
        self.attn_block = Residual(c.d_model, c.dropout, c.norm_first, c.layer_norm_eps)
        self.ffn_block = Residual(c.d_model, c.dropout, c.norm_first, c.layer_norm_eps)

    def forward(
        self, x: Tensor, mask: Tensor | None, weights_out: list[Tensor] | None = None
    ) -> Tensor:
        """Args: x (B, S, D); mask (B, 1, 1, S), True = real token. Returns (B, S, D)."""
        x = self.attn_block(x, lambda h: self.self_attn(h, mask, weights_out=weights_out))
        return self.ffn_block(x, self.ffn)


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the encoder output, feed-forward."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.self_attn = SelfAttention(
            c.d_model, c.n_heads, c.attention_dropout, c.attention_kernel
        )
        self.cross_attn = CrossAttention(
            c.d_model, c.n_heads, c.attention_dropout, c.attention_kernel
        )
        self.ffn = FeedForward(c.d_model, c.d_ff, c.dropout, c.activation)
        self.self_attn_block = Residual(c.d_model, c.dropout, c.norm_first, c.layer_norm_eps)
        self.cross_attn_block = Residual(c.d_model, c.dropout, c.norm_first, c.layer_norm_eps)
        self.ffn_block = Residual(c.d_model, c.dropout, c.norm_first, c.layer_norm_eps)

    def forward(
        self,
        x: Tensor,
        memory_kv: tuple[Tensor, Tensor],
        self_mask: Tensor | None,
        src_mask: Tensor | None,
        *,
        causal: bool,
        cache: LayerCache | None = None,
        start: int = 0,
        weights_out: tuple[list[Tensor], list[Tensor]] | None = None,
    ) -> Tensor:
        """One decoder layer.

        Args:
            x: decoder states (B, T, D).
            memory_kv: cross-attention keys and values of the encoder output, (B, H, S, Dh) each.
            self_mask: target padding mask broadcastable to (B, 1, T, T_keys), or None.
            src_mask: source padding mask (B, 1, 1, S).
            causal: apply the (right-aligned) causal mask in self-attention.
            cache: this layer's decoder cache, whose self-attention buffers hold `start`
                earlier positions (see `SelfAttention`), or None for a full pass.
            start: positions already in `cache`.
            weights_out: two lists collecting self- and cross-attention weights, or None.

        Returns:
            (B, T, D)
        """
        self_w, cross_w = weights_out if weights_out is not None else (None, None)
        x = self.self_attn_block(
            x,
            lambda h: self.self_attn(
                h, self_mask, causal=causal, cache=cache, start=start, weights_out=self_w
            ),
        )
        x = self.cross_attn_block(
            x, lambda h: self.cross_attn(h, memory_kv, src_mask, weights_out=cross_w)
        )
        return self.ffn_block(x, self.ffn)
