"""Marian's weight files read and checked, without transformers: our state dict, or a refusal.

`read_tensors` reads model.safetensors or pytorch_model.bin (plain tensors only); `read_weights`
takes from them every tensor of `hf_mapping`'s name mapping and checks what a checkpoint may
hold besides: the copies of a tied table must be equal, stored position tables must be Marian's
sinusoids, and a tensor we would not use is refused rather than dropped. `hf_mapping` then
stacks and permutes them into our parameters.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from aiayn.export.common import ExportError
from aiayn.export.hf_mapping import (
    DECODER_TABLE,
    ENCODER_TABLE,
    OUTPUT,
    OUTPUT_BIAS,
    SHARED_TABLE,
    from_hf_state_dict,
    layer_names,
    residual_permutation,
    to_hf_state_dict,
)
from aiayn.model import ModelConfig, Transformer
from aiayn.model.embeddings import sinusoids

WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # the first one present is read


def marian_sinusoids(n_positions: int, d_model: int) -> Tensor:
    """MarianMTModel's position table: our sinusoids in Marian's sin|cos layout."""
    return sinusoids(n_positions, d_model)[:, residual_permutation(d_model)]


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
    """Our state dict from Marian's tensors, checked (see the module docstring).

    With shared embeddings a checkpoint holds `model.shared` (transformers 5) or every copy
    (older ones); with a tied output layer `lm_head` may be absent.

    Raises:
        ExportError: a tensor that is missing or of a shape that config.json does not give,
            copies of a tied table that differ, stored positions that are not Marian's
            sinusoids, or tensors we do not know.
    """
    left = dict(tensors)
    with torch.device("meta"):  # shapes only, no memory
        shapes = {
            k: v.shape
            for k, v in to_hf_state_dict(Transformer(config).state_dict(), config).items()
        }

    def take(name: str) -> Tensor:
        if name not in left:
            raise ExportError(f"{path}: tensor {name} is missing")
        tensor = left.pop(name)
        if tensor.shape != shapes[name]:  # before it is stacked and permuted
            raise ExportError(
                f"{path}: tensor {name} has shape {list(tensor.shape)}, but config.json makes "
                f"it {list(shapes[name])}"
            )
        return tensor

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

    marian = {name: take(name) for names in layer_names(config).values() for name in names}
    if config.share_embeddings:
        table = take_equal(SHARED_TABLE, ENCODER_TABLE, DECODER_TABLE)
        marian[ENCODER_TABLE] = marian[DECODER_TABLE] = table
    else:
        marian[ENCODER_TABLE] = take(ENCODER_TABLE)
        marian[DECODER_TABLE] = take(DECODER_TABLE)
    if config.tie_output:
        if OUTPUT in left and not torch.equal(left.pop(OUTPUT), marian[DECODER_TABLE]):
            raise ExportError(
                f"{path}: {OUTPUT} differs from the target embeddings it is tied to "
                "(tie_word_embeddings)"
            )
        marian[OUTPUT] = marian[DECODER_TABLE]
    else:
        marian[OUTPUT] = take(OUTPUT)
    marian[OUTPUT_BIAS] = take(OUTPUT_BIAS)
    for stack in ("encoder", "decoder"):
        name = f"model.{stack}.embed_positions.weight"
        if name in left:  # some checkpoints store them: they must be the sinusoids we compute
            stored = left.pop(name)
            expected = marian_sinusoids(stored.shape[0], config.d_model)
            # A loose tolerance admits a float16 copy; another layout is off by about 1.
            if stored.shape != expected.shape or (stored - expected).abs().max() > 1e-3:
                raise ExportError(f"{path}: {name} is not Marian's sinusoidal position table")
    if left:
        unknown = ", ".join(sorted(left)[:3])
        raise ExportError(f"{path}: tensors that a MarianMTModel does not have: {unknown}")
    return from_hf_state_dict(marian, config)
