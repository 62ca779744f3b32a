"""Our Transformer's weights under Hugging Face names, and back: the residual-stream permutation.

transformers' MarianMTModel (post-norm) and PegasusForConditionalGeneration (pre-norm, with a
final LayerNorm per stack) compute what our `Transformer` computes, with three differences in how
the weights are laid out:

- **Sinusoids.** Ours interleave sin and cos (sin at even dimensions, cos at odd ones); theirs put
  every sin first and every cos after (`sin | cos`), the same frequencies in the same order. The
  two tables are one permutation of the d_model dimensions apart: HF dimension k holds our
  dimension `perm[k]`, with `perm = [0, 2, 4, ..., 1, 3, 5, ...]`. Nothing in the model treats
  one residual dimension differently from another (LayerNorm averages over all of them and
  scales each by its own weight), so permuting *every* d_model-indexed weight dimension by the
  same `perm` gives a model whose residual stream is ours permuted, at every layer: embedding
  columns, the input columns of every projection that reads the stream (Q, K, V, FFN fc1, the
  output layer), the output rows and biases of every projection that writes it (attention
  out_proj, FFN fc2), and every LayerNorm weight and bias. Attention heads and the FFN's inner
  dimension are not residual dimensions and keep their order. The logits come out unpermuted.
- **Fused projections.** Our self-attention stacks W^Q, W^K, W^V in one `qkv_proj` and our
  cross-attention W^K, W^V in one `kv_proj` (row blocks, in that order); theirs are separate
  `q_proj`, `k_proj`, `v_proj`. Heads are laid out the same way within each (head h owns rows
  h * d_head .. (h + 1) * d_head - 1).
- **Output bias.** Our generator is a Linear with a bias; theirs is `lm_head` (no bias) plus a
  `final_logits_bias` buffer of shape (1, V).

The names are those of MarianMTModel and PegasusForConditionalGeneration alike (the classes
share their layer code); Pegasus adds `model.encoder.layer_norm` and `model.decoder.layer_norm`,
our `encoder_norm` and `decoder_norm`. Positional tables are not weights on either side (ours is
a buffer, theirs is recomputed at load), so they are not mapped.

`to_hf_state_dict` and `from_hf_state_dict` are exact inverses (a test proves it); the export
uses the first, and an importer of MarianMTModel checkpoints can use the second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from aiayn.model import ModelConfig

# How a tensor's dimensions meet the residual stream.
COLUMNS = "columns"  # a (out, d_model) weight that reads the stream: permute its columns
ROWS = "rows"  # a (d_model, in) weight, or a (d_model,) bias or norm, that writes it: permute
NONE = "none"  # indexed by heads or the FFN's inner width only: unchanged


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


@dataclass(frozen=True)
class Piece:
    """One HF tensor: where it sits in ours and how it meets the residual stream.

    Attributes:
        ours: our state_dict name.
        hf: the HF state_dict name.
        block: which row block of our (fused) tensor: (index, count), e.g. (1, 3) = K of QKV.
        residual: COLUMNS, ROWS or NONE (see the module docstring).
    """

    ours: str
    hf: str
    block: tuple[int, int]
    residual: str


def _fused(ours: str, hf_names: list[str]) -> Iterator[Piece]:
    """A fused projection (ours) that reads the stream, split into separate ones (theirs)."""
    n = len(hf_names)
    for i, hf in enumerate(hf_names):
        yield Piece(f"{ours}.weight", f"{hf}.weight", (i, n), COLUMNS)
        yield Piece(f"{ours}.bias", f"{hf}.bias", (i, n), NONE)


def _norm(ours: str, hf: str) -> Iterator[Piece]:
    yield Piece(f"{ours}.weight", f"{hf}.weight", (0, 1), ROWS)
    yield Piece(f"{ours}.bias", f"{hf}.bias", (0, 1), ROWS)


def _attention_out(ours: str, hf: str) -> Iterator[Piece]:
    """out_proj: reads the concatenated heads (not the stream), writes the stream."""
    yield Piece(f"{ours}.weight", f"{hf}.weight", (0, 1), ROWS)
    yield Piece(f"{ours}.bias", f"{hf}.bias", (0, 1), ROWS)


def _ffn(ours: str, hf: str) -> Iterator[Piece]:
    yield Piece(f"{ours}.fc1.weight", f"{hf}.fc1.weight", (0, 1), COLUMNS)
    yield Piece(f"{ours}.fc1.bias", f"{hf}.fc1.bias", (0, 1), NONE)
    yield from _attention_out(f"{ours}.fc2", f"{hf}.fc2")


def pieces(config: ModelConfig) -> list[Piece]:
    """Every HF tensor of the model, except the embeddings and the output layer (see
    `embedding_names`), with where it comes from in ours.

    Args:
        config: our model's config (layer counts, pre- or post-norm).

    Returns:
        The pieces, encoder first.
    """
    out: list[Piece] = []
    for i in range(config.n_encoder_layers):
        o, h = f"encoder_layers.{i}", f"model.encoder.layers.{i}"
        qkv = [f"{h}.self_attn.{p}_proj" for p in "qkv"]
        out += _fused(f"{o}.self_attn.qkv_proj", qkv)
        out += _attention_out(f"{o}.self_attn.out_proj", f"{h}.self_attn.out_proj")
        out += _norm(f"{o}.attn_block.norm", f"{h}.self_attn_layer_norm")
        out += _ffn(f"{o}.ffn", h)
        out += _norm(f"{o}.ffn_block.norm", f"{h}.final_layer_norm")
    for i in range(config.n_decoder_layers):
        o, h = f"decoder_layers.{i}", f"model.decoder.layers.{i}"
        qkv = [f"{h}.self_attn.{p}_proj" for p in "qkv"]
        out += _fused(f"{o}.self_attn.qkv_proj", qkv)
        out += _attention_out(f"{o}.self_attn.out_proj", f"{h}.self_attn.out_proj")
        out += _norm(f"{o}.self_attn_block.norm", f"{h}.self_attn_layer_norm")
        out += _fused(f"{o}.cross_attn.q_proj", [f"{h}.encoder_attn.q_proj"])
        kv = [f"{h}.encoder_attn.{p}_proj" for p in "kv"]
        out += _fused(f"{o}.cross_attn.kv_proj", kv)
        out += _attention_out(f"{o}.cross_attn.out_proj", f"{h}.encoder_attn.out_proj")
        out += _norm(f"{o}.cross_attn_block.norm", f"{h}.encoder_attn_layer_norm")
        out += _ffn(f"{o}.ffn", h)
        out += _norm(f"{o}.ffn_block.norm", f"{h}.final_layer_norm")
    if config.norm_first:
        out += _norm("encoder_norm", "model.encoder.layer_norm")
        out += _norm("decoder_norm", "model.decoder.layer_norm")
    return out


def embedding_names(config: ModelConfig) -> dict[str, list[str]]:
    """Which HF tables hold our source table, target table and output layer weight.

    Every listed HF name gets its own copy of the values, whether or not the HF config ties
    them; loading with tied weights then finds equal values under every name.

    Args:
        config: our model's config.

    Returns:
        {"src_embed.embedding.weight": [...], "tgt_embed.embedding.weight": [...],
        "generator.weight": ["lm_head.weight"]}
    """
    src = ["model.encoder.embed_tokens.weight"]
    if config.share_embeddings or config.norm_first:  # Pegasus always has model.shared
        src.append("model.shared.weight")
    return {
        "src_embed.embedding.weight": src,
        "tgt_embed.embedding.weight": ["model.decoder.embed_tokens.weight"],
        "generator.weight": ["lm_head.weight"],
    }


def to_hf_state_dict(state: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Our state_dict (sinusoidal positions) as a MarianMTModel / Pegasus state_dict.

    Args:
        state: `Transformer.state_dict()`.
        config: the model's config.

    Returns:
        HF names -> new contiguous tensors (`final_logits_bias` shaped (1, V)).

    Raises:
        KeyError: a tensor the mapping expects is missing from `state`.
    """
    perm = residual_permutation(config.d_model)
    hf: dict[str, Tensor] = {}
    for piece in pieces(config):
        index, count = piece.block
        tensor = state[piece.ours].chunk(count, dim=0)[index]
        if piece.residual == COLUMNS:
            tensor = tensor[:, perm]
        elif piece.residual == ROWS:
            tensor = tensor[perm]
        hf[piece.hf] = tensor.contiguous().clone()
    for ours, names in embedding_names(config).items():
        for name in names:
            hf[name] = state[ours][:, perm].contiguous().clone()
    hf["final_logits_bias"] = state["generator.bias"][None, :].contiguous().clone()
    return hf


def from_hf_state_dict(hf: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """A MarianMTModel / Pegasus state_dict as ours: the inverse of `to_hf_state_dict`.

    The fused projections are concatenated back, the permutation undone. Our source and target
    tables (and the generator, when tied) come from the first HF name that holds them; a loader
    with `share_embeddings` or `tie_output` should check that the others hold the same values.

    Args:
        hf: HF names -> tensors (as `to_hf_state_dict` returns, or a checkpoint's).
        config: the config of the model to load into.

    Returns:
        Our state_dict names -> tensors, for `Transformer.load_state_dict`.

    Raises:
        KeyError: a tensor the mapping expects is missing from `hf`.
    """
    inverse = inverse_permutation(residual_permutation(config.d_model))
    blocks: dict[str, dict[int, Tensor]] = {}
    for piece in pieces(config):
        tensor = hf[piece.hf]
        if piece.residual == COLUMNS:
            tensor = tensor[:, inverse]
        elif piece.residual == ROWS:
            tensor = tensor[inverse]
        blocks.setdefault(piece.ours, {})[piece.block[0]] = tensor
    ours = {
        name: torch.cat([parts[i] for i in sorted(parts)], dim=0).contiguous()
        for name, parts in blocks.items()
    }
    for name, hf_names in embedding_names(config).items():
        ours[name] = hf[hf_names[0]][:, inverse].contiguous()
    ours["generator.bias"] = hf["final_logits_bias"].reshape(-1).contiguous()
    return ours
