"""Our Transformer's weights under transformers' Marian and Pegasus names, and back.

transformers' MarianMTModel (post-norm) and PegasusForConditionalGeneration (pre-norm, with a
final LayerNorm per stack) compute what our `Transformer` computes; three things differ in how
the weights are laid out.

**Sinusoids: one permutation of the residual stream.** Ours interleave (paper section 3.5):
dimension 2i holds sin(pos / 10000^(2i/d)) and 2i+1 the cosine of the same angle. Theirs
concatenate: the first ceil(d/2) dimensions hold the sines, the rest the cosines, of the same
angles in the same order. So their position vector is ours with its dimensions reordered by one
fixed permutation (`residual_permutation`):

    theirs[..., k] = ours[..., perm[k]],   perm = [0, 2, 4, ..., 1, 3, 5, ...]

A Transformer never looks at the residual stream dimension by dimension, except through weights:
every matrix reading the stream (Q/K/V projections, the FFN's first layer, the generator) takes
a weighted sum over its dimensions, every matrix writing to it (attention output projections,
the FFN's second layer) and every embedding table produce one value per dimension, and LayerNorm
takes a mean and a variance over all dimensions (unchanged by reordering) before scaling each
dimension by its own weight and bias. Reorder the dimensions of all of these consistently (the
reading matrices' input columns, the writing matrices' output rows and biases, the embedding
tables' columns, the LayerNorms' weights and biases: `residual_axis` lists them) and the whole
computation is the same one with the stream's dimensions relabelled: the logits, which are not
indexed by d_model, come out identical. Nothing inside attention or the FFN moves: heads, keys,
queries and the FFN's inner dimensions keep their order. The result is exact up to the order in
which floating-point sums are taken (1e-6 in float32).

**Fused projections.** Our self-attention stacks W^Q, W^K, W^V in one `qkv_proj` and our
cross-attention W^K, W^V in one `kv_proj` (row blocks, in that order); theirs are separate
`q_proj`, `k_proj`, `v_proj`. Heads are laid out alike within each (head h owns rows
h * d_head .. (h + 1) * d_head - 1). `layer_names` says which of their tensors stack into each
of our parameters.

**Output bias.** Our generator is a Linear with a bias; theirs is `lm_head` (no bias) plus a
`final_logits_bias` buffer of shape (1, V).

Marian and Pegasus share their layer code and its names; Pegasus adds `model.encoder.layer_norm`
and `model.decoder.layer_norm`, our `encoder_norm` and `decoder_norm`. Position tables are not
mapped: ours is a buffer, theirs is recomputed at load (`aiayn import-hf` checks a stored one).

`to_hf_state_dict` (the export, hf.py) and `from_hf_state_dict` (the Marian import,
marian_weights.py) are exact inverses (a test proves it). This module needs no transformers.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from aiayn.model import ModelConfig

# Our parameters, by the end of their state-dict name, and the axis along which each is indexed
# by the residual stream. A parameter not listed here has no residual-stream axis: the biases of
# Q/K/V and fc1 (indexed by heads or the FFN's inner width) and the generator's (by vocabulary).
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

# transformers' names of the embedding tables and the output layer. With shared embeddings
# Marian keeps one table, `shared`, that the encoder and decoder use; Pegasus always has it.
SHARED_TABLE = "model.shared.weight"
ENCODER_TABLE = "model.encoder.embed_tokens.weight"
DECODER_TABLE = "model.decoder.embed_tokens.weight"
OUTPUT = "lm_head.weight"
OUTPUT_BIAS = "final_logits_bias"


def residual_permutation(d_model: int) -> Tensor:
    """Where each HF residual dimension comes from in ours: `hf[..., k] = ours[..., perm[k]]`.

    Ours are interleaved (sin at even dimensions, cos at odd), theirs `sin | cos`: the even
    dimensions first, then the odd ones. Holds for odd d_model too (one more sin than cos on
    both sides).

    Args:
        d_model: width of the residual stream.

    Returns:
        A (d_model,) long tensor, a permutation of 0 .. d_model - 1.
    """
    return torch.cat([torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)])


def inverse_permutation(perm: Tensor) -> Tensor:
    """The permutation that undoes `perm`: `x[perm][inverse] == x`."""
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
        state: our parameter names -> tensors.
        perm: a permutation of range(d_model); the result's dimension k is the input's perm[k].

    Returns:
        A new state dict; parameters without a residual-stream axis are the same tensors.
    """
    out = {}
    for name, tensor in state.items():
        axis = residual_axis(name)
        out[name] = tensor if axis is None else tensor.index_select(axis, perm)
    return out


def layer_names(config: ModelConfig) -> dict[str, tuple[str, ...]]:
    """Which HF tensors make each of our layer parameters, stacked row-wise.

    Our fused projections stack their separate ones: a self-attention's `qkv_proj` is q, k, v
    and a cross-attention's `kv_proj` is k, v (d_model rows each). The embedding tables and the
    output layer are in `embedding_names`.

    Args:
        config: our model's config (layer counts; pre-norm adds the final norms).

    Returns:
        our parameter name -> HF state-dict names, encoder first.
    """
    names: dict[str, tuple[str, ...]] = {}

    def linear(ours: str, *theirs: str) -> None:  # a Linear or a LayerNorm: weight and bias
        for part in ("weight", "bias"):
            names[f"{ours}.{part}"] = tuple(f"{t}.{part}" for t in theirs)

    def fused(ours: str, theirs: str, letters: str) -> None:
        """Our `{letters}_proj` (qkv_proj, kv_proj, q_proj) from their q_proj, k_proj, v_proj."""
        linear(f"{ours}.{letters}_proj", *(f"{theirs}.{x}_proj" for x in letters))

    def self_attention(ours: str, theirs: str, block: str) -> None:
        fused(f"{ours}.self_attn", f"{theirs}.self_attn", "qkv")
        linear(f"{ours}.self_attn.out_proj", f"{theirs}.self_attn.out_proj")
        linear(f"{ours}.{block}.norm", f"{theirs}.self_attn_layer_norm")

    def ffn(ours: str, theirs: str) -> None:
        linear(f"{ours}.ffn.fc1", f"{theirs}.fc1")
        linear(f"{ours}.ffn.fc2", f"{theirs}.fc2")
        linear(f"{ours}.ffn_block.norm", f"{theirs}.final_layer_norm")

    for i in range(config.n_encoder_layers):
        ours, theirs = f"encoder_layers.{i}", f"model.encoder.layers.{i}"
        self_attention(ours, theirs, "attn_block")
        ffn(ours, theirs)
    for i in range(config.n_decoder_layers):
        ours, theirs = f"decoder_layers.{i}", f"model.decoder.layers.{i}"
        self_attention(ours, theirs, "self_attn_block")
        fused(f"{ours}.cross_attn", f"{theirs}.encoder_attn", "q")
        fused(f"{ours}.cross_attn", f"{theirs}.encoder_attn", "kv")
        linear(f"{ours}.cross_attn.out_proj", f"{theirs}.encoder_attn.out_proj")
        linear(f"{ours}.cross_attn_block.norm", f"{theirs}.encoder_attn_layer_norm")
        ffn(ours, theirs)
    if config.norm_first:
        linear("encoder_norm", "model.encoder.layer_norm")
        linear("decoder_norm", "model.decoder.layer_norm")
    return names


def embedding_names(config: ModelConfig) -> dict[str, list[str]]:
    """Which HF tables hold our source table, target table and output layer weight.

    The export gives every listed HF name its own copy of the values, whether or not the HF
    config ties them; loading with tied weights then finds equal values under every name. The
    import reads the first.

    Args:
        config: our model's config.

    Returns:
        {"src_embed.embedding.weight": [...], "tgt_embed.embedding.weight": [...],
        "generator.weight": ["lm_head.weight"]}
    """
    src = [ENCODER_TABLE]
    if config.share_embeddings or config.norm_first:  # Pegasus always has model.shared
        src.append(SHARED_TABLE)
    return {
        "src_embed.embedding.weight": src,
        "tgt_embed.embedding.weight": [DECODER_TABLE],
        "generator.weight": [OUTPUT],
    }


def to_hf_state_dict(state: Mapping[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Our state_dict (sinusoidal positions) as a MarianMTModel / Pegasus state_dict.

    Args:
        state: `Transformer.state_dict()`.
        config: the model's config.

    Returns:
        HF names -> tensors, each with its own storage (`final_logits_bias` shaped (1, V)).

    Raises:
        KeyError: a tensor the mapping expects is missing from `state`.
    """
    state = permute_residual_stream(state, residual_permutation(config.d_model))
    hf: dict[str, Tensor] = {}
    for ours, theirs in layer_names(config).items():
        for name, block in zip(theirs, state[ours].chunk(len(theirs)), strict=True):
            hf[name] = block.contiguous().clone()
    for ours, copies in embedding_names(config).items():
        hf |= {name: state[ours].contiguous().clone() for name in copies}
    hf[OUTPUT_BIAS] = state["generator.bias"][None, :].contiguous().clone()
    return hf


def from_hf_state_dict(hf: Mapping[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """A MarianMTModel / Pegasus state_dict as ours: the inverse of `to_hf_state_dict`.

    The separate projections are stacked back, the permutation undone. Our source and target
    tables and the generator come from the first HF name that holds them (`embedding_names`);
    a loader of checkpoints with tied copies checks that the others hold the same values.

    Args:
        hf: HF names -> tensors (as `to_hf_state_dict` returns, or a checkpoint's).
        config: the config of the model to load into.

    Returns:
        Our state_dict names -> tensors, for `Transformer.load_state_dict`.

    Raises:
        KeyError: a tensor the mapping expects is missing from `hf`.
    """
    ours = {
        name: torch.cat([hf[t] for t in theirs]) for name, theirs in layer_names(config).items()
    }
    ours |= {name: hf[copies[0]] for name, copies in embedding_names(config).items()}
    ours["generator.bias"] = hf[OUTPUT_BIAS].reshape(-1)
    return permute_residual_stream(ours, inverse_permutation(residual_permutation(config.d_model)))
