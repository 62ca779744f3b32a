"""Encoder and decoder layers: attention and feed-forward sub-layers, each in a residual + norm."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aiayn.model.attention import CrossAttention, SelfAttention
from aiayn.model.config import ModelConfig


def keep_mask(x: Tensor, p: float) -> Tensor:
    """Boolean mask, True with probability 1 - p (to 1/65536), from 16 random bits per element.

    One 64-bit random word gives four elements their 16-bit draw: a quarter of the generator
    calls of `torch.rand_like`, whose serial CPU generator dominated dropout's cost.
    """
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
    words.random_(-(2**63), None)  # every bit uniform (the default range leaves the sign bit 0)
    threshold = round(p * 65536) - 32768  # int16 draws are uniform in [-32768, 32767]
    return (words.view(torch.int16)[:n] >= threshold).view(x.shape)


class Dropout(nn.Dropout):
    """`nn.Dropout` (zero each element with probability p, scale the rest by 1 / (1 - p)), with
    its CPU mask drawn 16 bits at a time by `keep_mask`.

    PyTorch's CPU dropout draws its mask with `bernoulli_`, one element at a time; `rand_like`
    was twice as fast on the CPU we benchmark and `keep_mask` 2.5x faster again, and the boolean
    mask that backward keeps is a quarter of the size of `nn.Dropout`'s float mask
    (docs/benchmarks.md). p is resolved to 1/65536 (0.1 -> 0.100006). Other devices:
    `nn.Dropout`.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        return torch.where(keep_mask(x, self.p), x * (1.0 / (1.0 - self.p)), 0.0)


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
        self.dropout = Dropout(dropout)
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
        self.dropout = Dropout(dropout)
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
        kv_cache: tuple[Tensor, Tensor, int] | None = None,
        weights_out: tuple[list[Tensor], list[Tensor]] | None = None,
    ) -> Tensor:
        """One decoder layer.

        Args:
            x: decoder states (B, T, D).
            memory_kv: cross-attention keys and values of the encoder output, (B, H, S, Dh) each.
            self_mask: target padding mask broadcastable to (B, 1, T, T_keys), or None.
            src_mask: source padding mask (B, 1, 1, S).
            causal: apply the (right-aligned) causal mask in self-attention.
            kv_cache: self-attention cache buffers and start position (see `SelfAttention`).
            weights_out: two lists collecting self- and cross-attention weights, or None.

        Returns:
            (B, T, D)
        """
        self_w, cross_w = weights_out if weights_out is not None else (None, None)
        x = self.self_attn_block(
            x,
            lambda h: self.self_attn(
                h, self_mask, causal=causal, kv_cache=kv_cache, weights_out=self_w
            ),
        )
        x = self.cross_attn_block(
            x, lambda h: self.cross_attn(h, memory_kv, src_mask, weights_out=cross_w)
        )
        return self.ffn_block(x, self.ffn)
