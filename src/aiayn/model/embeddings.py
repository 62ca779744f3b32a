"""Token embeddings and the two kinds of positional encoding (paper section 3.4 and 3.5)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TokenEmbedding(nn.Module):
    """Embedding table, scaled by sqrt(d_model) as in the paper when `scale` is set.

    The table is initialised N(0, d_model^-0.5) so that scaled embeddings start at unit variance,
    comparable with the positional encodings added to them.
    """

    def __init__(self, vocab_size: int, d_model: int, pad_id: int, scale: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.scale = math.sqrt(d_model) if scale else 1.0
        nn.init.normal_(self.embedding.weight, mean=0.0, std=d_model**-0.5)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()

    @property
    def weight(self) -> Tensor:
        """The (V, D) table, e.g. for tying the generator to it."""
        return self.embedding.weight

    def forward(self, ids: Tensor) -> Tensor:
        """Look up ids.

        Shape:
            ids: (B, T) -> (B, T, D)
        """
        return self.embedding(ids) * self.scale


def sinusoids(n_positions: int, d_model: int, start: int = 0) -> Tensor:
    """The paper's encodings: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...).

    Shape:
        (n_positions, d_model), rows for positions start .. start + n_positions - 1
    """
    position = torch.arange(start, start + n_positions, dtype=torch.float64)[:, None]
    inv_freq = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float64) * -(math.log(1e4) / d_model)
    )
    pe = torch.zeros(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * inv_freq)
    pe[:, 1::2] = torch.cos(position * inv_freq[: d_model // 2])
    return pe.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sinusoids; a table up to `max_positions`, computed on the fly beyond it."""

    def __init__(self, d_model: int, max_positions: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.register_buffer("table", sinusoids(max_positions, d_model), persistent=False)

    def forward(self, length: int, start: int = 0) -> Tensor:
        """Encodings of positions start .. start + length - 1.

        Shape:
            (length, D)
        """
        if start + length <= self.table.shape[0]:
            return self.table[start : start + length]
        return sinusoids(length, self.d_model, start).to(self.table.device)


class LearnedPositionalEmbedding(nn.Module):
    """A learned table of `max_positions` rows, as the tutorial thread builds it."""

    def __init__(self, d_model: int, max_positions: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(max_positions, d_model)
        nn.init.normal_(self.embedding.weight, mean=0.0, std=d_model**-0.5)

    def forward(self, length: int, start: int = 0) -> Tensor:
        """Embeddings of positions start .. start + length - 1.

        Shape:
            (length, D)
        """
        limit = self.embedding.num_embeddings
        if start + length > limit:
            raise ValueError(
                f"sequence of {start + length} positions is longer than max_positions ({limit}) "
                "of this model's learned positional embedding"
            )
        positions = torch.arange(start, start + length, device=self.embedding.weight.device)
        return self.embedding(positions)
