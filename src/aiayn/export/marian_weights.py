"""Marian's weights as our parameters: names, tied tables, positions, file formats.

`marian_names` lists which MarianMTModel tensors make each of our layer parameters (our fused
Q/K/V and K/V projections stack Marian's separate ones); `read_weights` adds the embedding
tables, the generator (`lm_head` or the tied target table, with `final_logits_bias` as its
bias) and checks what is left: stored position tables must be Marian's sinusoids, and a tensor
we would not use is refused rather than dropped. The result is still in Marian's layout of the
residual stream: `residual_stream.permute_residual_stream` makes it ours.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from aiayn.export.common import ExportError
from aiayn.export.residual_stream import invert, marian_to_ours
from aiayn.model import ModelConfig
from aiayn.model.embeddings import sinusoids

WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # the first one present is read
# MarianMTModel's embedding tables: with shared embeddings transformers saves `shared` (older
# checkpoints hold all three copies); without, the encoder's and the decoder's.
SHARED_TABLE = "model.shared.weight"
ENCODER_TABLE = "model.encoder.embed_tokens.weight"
DECODER_TABLE = "model.decoder.embed_tokens.weight"


def marian_names(config: ModelConfig) -> dict[str, tuple[str, ...]]:
    """Which MarianMTModel tensors make each of our layer parameters, stacked row-wise.

    Our fused projections stack Marian's separate ones: a self-attention's `qkv_proj` is q, k, v
    and a cross-attention's `kv_proj` is k, v (d_model rows each). Embedding tables and the
    generator depend on sharing and tying; `read_weights` maps them.

    Args:
        config: our model's config (its layer counts).

    Returns:
        our parameter name -> MarianMTModel's state-dict names.
    """
    names: dict[str, tuple[str, ...]] = {}

    def linear(ours: str, *theirs: str) -> None:
        for part in ("weight", "bias"):
            names[f"{ours}.{part}"] = tuple(f"{t}.{part}" for t in theirs)

    def self_attention(ours: str, theirs: str) -> None:
        qkv = (f"{theirs}.q_proj", f"{theirs}.k_proj", f"{theirs}.v_proj")
        linear(f"{ours}.qkv_proj", *qkv)
        linear(f"{ours}.out_proj", f"{theirs}.out_proj")

    for i in range(config.n_encoder_layers):
        ours, theirs = f"encoder_layers.{i}", f"model.encoder.layers.{i}"
        self_attention(f"{ours}.self_attn", f"{theirs}.self_attn")
        linear(f"{ours}.attn_block.norm", f"{theirs}.self_attn_layer_norm")
        linear(f"{ours}.ffn.fc1", f"{theirs}.fc1")
        linear(f"{ours}.ffn.fc2", f"{theirs}.fc2")
        linear(f"{ours}.ffn_block.norm", f"{theirs}.final_layer_norm")
    for i in range(config.n_decoder_layers):
        ours, theirs = f"decoder_layers.{i}", f"model.decoder.layers.{i}"
        self_attention(f"{ours}.self_attn", f"{theirs}.self_attn")
        linear(f"{ours}.self_attn_block.norm", f"{theirs}.self_attn_layer_norm")
        cross = f"{theirs}.encoder_attn"
        linear(f"{ours}.cross_attn.q_proj", f"{cross}.q_proj")
        linear(f"{ours}.cross_attn.kv_proj", f"{cross}.k_proj", f"{cross}.v_proj")
        linear(f"{ours}.cross_attn.out_proj", f"{cross}.out_proj")
        linear(f"{ours}.cross_attn_block.norm", f"{theirs}.encoder_attn_layer_norm")
        linear(f"{ours}.ffn.fc1", f"{theirs}.fc1")
        linear(f"{ours}.ffn.fc2", f"{theirs}.fc2")
        linear(f"{ours}.ffn_block.norm", f"{theirs}.final_layer_norm")
    return names


def marian_sinusoids(n_positions: int, d_model: int) -> Tensor:
    """MarianMTModel's position table: our sinusoids in Marian's sin|cos layout."""
    return sinusoids(n_positions, d_model)[:, invert(marian_to_ours(d_model))]


def weights_file(directory: Path) -> Path:
    """model.safetensors, else pytorch_model.bin.

    Raises:
        ExportError: neither is there.
    """
    for name in WEIGHTS:
        if (directory / name).is_file():
            return directory / name
    raise ExportError(f"{directory / WEIGHTS[0]}: missing (and there is no {WEIGHTS[1]} either)")


def read_tensors(path: Path) -> dict[str, Tensor]:
    """Marian's tensors by name, as float32.

    pytorch_model.bin is read with `torch.load(weights_only=True)`: tensors and plain
    containers only, so a crafted file cannot run code.

    Raises:
        ExportError: a damaged file, or one that holds other objects.
    """
    try:
        if path.suffix == ".safetensors":
            tensors = load_file(path)
        else:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # its message is a page of advice on unsafe loading
        raise ExportError(
            f"{path}: refused, not plain tensors (read with torch.load(weights_only=True))"
        ) from None
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError) as e:
        raise ExportError(f"{path}: cannot read the weights ({str(e).splitlines()[0]})") from None
    if not isinstance(tensors, dict) or not all(isinstance(t, Tensor) for t in tensors.values()):
        raise ExportError(f"{path}: expected a mapping of names to tensors")
    return {name: tensor.float() for name, tensor in tensors.items()}


def read_weights(tensors: dict[str, Tensor], config: ModelConfig, path: Path) -> dict[str, Tensor]:
    """Our state dict, still in Marian's layout of the residual stream, from Marian's tensors.

    Raises:
        ExportError: a tensor that is missing, copies of a tied table that differ, stored
            positions that are not Marian's sinusoids, or tensors we do not know.
    """
    left = dict(tensors)

    def take(name: str) -> Tensor:
        if name not in left:
            raise ExportError(f"{path}: tensor {name} is missing")
        return left.pop(name)

    def take_equal(*names: str) -> Tensor:
        """The first of `names` there; the others there must be equal copies of it."""
        present = [n for n in names if n in left]
        if not present:
            raise ExportError(f"{path}: none of the tensors {', '.join(names)} is there")
        table = take(present[0])
        for other in present[1:]:
            if not torch.equal(take(other), table):
                raise ExportError(f"{path}: {other} differs from {present[0]}, its tied copy")
        return table

    state = {
        ours: torch.cat([take(t) for t in theirs]) for ours, theirs in marian_names(config).items()
    }
    if config.share_embeddings:
        table = take_equal(SHARED_TABLE, ENCODER_TABLE, DECODER_TABLE)
        state["src_embed.embedding.weight"] = state["tgt_embed.embedding.weight"] = table
    else:
        state["src_embed.embedding.weight"] = take(ENCODER_TABLE)
        state["tgt_embed.embedding.weight"] = take(DECODER_TABLE)
    if config.tie_output:
        state["generator.weight"] = state["tgt_embed.embedding.weight"]
        if "lm_head.weight" in left and not torch.equal(
            left.pop("lm_head.weight"), state["generator.weight"]
        ):
            raise ExportError(
                f"{path}: lm_head.weight differs from the target embeddings it is tied to "
                "(tie_word_embeddings)"
            )
    else:
        state["generator.weight"] = take("lm_head.weight")
    state["generator.bias"] = take("final_logits_bias").reshape(-1)
    for stack in ("encoder", "decoder"):
        name = f"model.{stack}.embed_positions.weight"
        if name in left:  # some checkpoints store them: they must be the sinusoids we compute
            stored = take(name)
            expected = marian_sinusoids(stored.shape[0], config.d_model)
            # A loose tolerance admits a float16 copy; another layout is off by about 1.
            if stored.shape != expected.shape or (stored - expected).abs().max() > 1e-3:
                raise ExportError(f"{path}: {name} is not Marian's sinusoidal position table")
    if left:
        unknown = ", ".join(sorted(left)[:3])
        raise ExportError(f"{path}: tensors that a MarianMTModel does not have: {unknown}")
    return state
