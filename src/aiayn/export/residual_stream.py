"""Reordering the residual stream: Marian's sin|cos sinusoids are a permutation of ours.

Our sinusoids interleave (paper section 3.5): dimension 2i holds sin(pos / 10000^(2i/d)) and
2i+1 the cosine of the same angle. Marian (and MarianMTModel in transformers) concatenates: the
first ceil(d/2) dimensions hold the sines, the rest the cosines, of the same angles in the same
order. So Marian's position vector is ours with its dimensions reordered by one fixed
permutation:

    ours[..., k] = marian[..., perm[k]],   perm[2i] = i,   perm[2i + 1] = ceil(d/2) + i

A Transformer never looks at the residual stream dimension by dimension, except through weights:
every matrix reading the stream (Q/K/V projections, the FFN's first layer, the generator) takes
a weighted sum over its dimensions, every matrix writing to it (attention output projections,
the FFN's second layer) and every embedding table produce one value per dimension, and LayerNorm
takes a mean and a variance over all dimensions (unchanged by reordering) before scaling each
dimension by its own weight and bias. Reorder the dimensions of all of these consistently (the
reading matrices' input columns, the writing matrices' output rows and biases, the embedding
tables' columns, the LayerNorms' weights and biases) and the whole computation is the same one
with the stream's dimensions relabelled: the logits, which are not indexed by d_model, come out
identical. Nothing inside attention or the FFN moves: heads, keys, queries and the FFN's inner
dimensions keep their order. The result is exact up to the order in which floating-point sums
are taken (1e-6 in float32).

`permute_residual_stream` applies a permutation to a state dict in OUR parameter names, so the
import (Marian -> ours: `marian_to_ours(d)`) and an export (ours -> Marian: its inverse,
`invert(marian_to_ours(d))`) share one list of which parameters touch the stream.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

# Our parameters, by the end of their state-dict name, and the axis along which each is indexed
# by the residual stream. A parameter not listed here has no residual-stream axis.
READS_STREAM = (  # weight (out, d_model): input columns
    "qkv_proj.weight",
    "q_proj.weight",
    "kv_proj.weight",
    "fc1.weight",
    "generator.weight",
)
WRITES_STREAM = (  # weight (d_model, in) and bias (d_model,): output rows
    "out_proj.weight",
    "out_proj.bias",
    "fc2.weight",
    "fc2.bias",
)
TABLES = (  # (rows, d_model): columns
    "src_embed.embedding.weight",
    "tgt_embed.embedding.weight",
    "positions.embedding.weight",
)
NORMS = ("norm.weight", "norm.bias")  # every LayerNorm (attn_block.norm, encoder_norm, ...)


def marian_to_ours(d_model: int) -> Tensor:
    """The permutation taking Marian's layout of the residual stream to ours.

    Returns:
        `perm` (d_model,) long, with ours[..., k] = marian[..., perm[k]]: our dimension 2i is
        Marian's i (the sines) and our 2i + 1 is Marian's ceil(d/2) + i (the cosines).
    """
    k = torch.arange(d_model)
    sines = (d_model + 1) // 2  # Marian puts the extra sine of an odd width in the first half
    return torch.where(k % 2 == 0, k // 2, sines + k // 2)


def invert(perm: Tensor) -> Tensor:
    """The inverse permutation: `x[perm][invert(perm)] == x`."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    return inverse


def residual_axis(name: str) -> int | None:
    """The axis of our parameter `name` that is indexed by the residual stream, or None."""
    if name in TABLES or name.endswith(READS_STREAM):
        return 1
    if name.endswith(WRITES_STREAM) or name.endswith(NORMS):
        return 0
    return None


def permute_residual_stream(state: Mapping[str, Tensor], perm: Tensor) -> dict[str, Tensor]:
    """Reorder the residual-stream dimension of every parameter of a state dict in our names.

    Args:
        state: our parameter names -> tensors (e.g. `Transformer.state_dict()`, or Marian's
            weights renamed to ours).
        perm: a permutation of range(d_model); the result's dimension k is the input's perm[k].

    Returns:
        A new state dict; parameters without a residual-stream axis are the same tensors.
    """
    out = {}
    for name, tensor in state.items():
        axis = residual_axis(name)
        out[name] = tensor if axis is None else tensor.index_select(axis, perm)
    return out
