"""Our Transformer as a CTranslate2 `TransformerSpec`: every weight, every setting, or a refusal.

CTranslate2 describes a model as a tree of specs (`ctranslate2.specs`) whose slots a converter
fills with arrays; `Converter.convert` then validates the tree, quantizes it if asked and saves
`model.bin`, `config.json` and the vocabularies. `AiaynConverter` is that converter for aiayn:

    ours                                        CTranslate2 TransformerSpec
    src_embed / tgt_embed .weight               encoder.embeddings[0] / decoder.embeddings
    x sqrt(d_model) (scale_embeddings)          encoder/decoder.scale_embeddings (True/False)
    positions (sinusoids or learned table)      encoder/decoder.position_encodings.encodings
    layer.self_attn.qkv_proj (Q, K, V stacked)  layer.self_attention.linear[0] (same stacking)
    layer.self_attn.out_proj                    layer.self_attention.linear[1]
    layer.cross_attn.q_proj, .kv_proj           layer.attention.linear[0], .linear[1]
    layer.cross_attn.out_proj                   layer.attention.linear[2]
    layer.*_block.norm (pre- or post-norm)      the layer_norm of the sub-layer it wraps
    layer.ffn.fc1, .fc2                         layer.ffn.linear_0, .linear_1
    encoder_norm / decoder_norm (pre-norm)      encoder/decoder.layer_norm
    generator (weight and bias)                 decoder.projection
    layer_norm_eps                              config.layer_norm_epsilon (one for all norms)

Shared and tied tables are given as the same array; CTranslate2 stores them once (its
`optimize` aliases equal variables).

Traps, each checked by tests/test_export_ct2.py:

- Positions. Left empty, `position_encodings` makes CTranslate2 generate its own sinusoids,
  which differ from the paper's: sin and cos halves concatenated rather than interleaved,
  frequencies 10000^(-i / (d/2 - 1)) rather than 10000^(-2i / d), positions counted from 1. So we
  always export our table: the learned one, or `sinusoids(max_positions)` computed here, since
  our sinusoid table is a buffer that checkpoints do not store. The table's
  length is then a hard limit: CTranslate2 raises an error for a position >= max_positions
  (in the source, or in the output while decoding) rather than extrapolate.
- Vocabulary. CTranslate2 maps token strings to ids through the vocabulary we register, so it
  is our pieces in id order (ids 0-3 are `<pad>`, `<unk>`, `<s>`, `</s>`, which
  CTranslate2's config names as unk, BOS and EOS).
- Special tokens. The decoder starts from `<s>` (BOS, id 2) and CTranslate2 adds nothing to the
  source (`add_source_bos` and `add_source_eos` are False): our sources carry no EOS.
- Padding. CTranslate2 masks by sequence lengths, never by an id, so exporting needs our pad id
  to be 0, `<pad>`, which no tokenizer output contains (see `check_expressible`).

Imports ctranslate2: import this module only after `aiayn.export.require("ctranslate2", "ct2")`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ctranslate2.converters import Converter
from ctranslate2.specs import common_spec, transformer_spec
from torch import nn

from aiayn.data import Vocabularies
from aiayn.data.tokenizer import BOS_PIECE, EOS_PIECE, PAD_ID, SPECIAL_PIECES, UNK_PIECE
from aiayn.export.common import ExportError
from aiayn.export.ct2.translator import vocabulary_pieces
from aiayn.model import ModelConfig, Transformer
from aiayn.model.attention import CrossAttention, SelfAttention
from aiayn.model.embeddings import sinusoids
from aiayn.model.layers import DecoderLayer, EncoderLayer, FeedForward

ACTIVATIONS = {"relu": common_spec.Activation.RELU, "gelu": common_spec.Activation.GELU}

# Where each ModelConfig field goes in CTranslate2. A field missing here (one added to
# ModelConfig later) makes the export refuse the model rather than drop the field silently.
FIELDS = {
    "src_vocab_size": "encoder embedding rows; the source vocabulary",
    "tgt_vocab_size": "decoder embedding and projection rows; the target vocabulary",
    "d_model": "the weights' shapes",
    "n_heads": "encoder/decoder num_heads",
    "d_ff": "the feed-forward weights' shapes",
    "n_encoder_layers": "encoder layers",
    "n_decoder_layers": "decoder layers",
    "dropout": "training only",
    "attention_dropout": "training only",
    "activation": "encoder/decoder activation (relu, gelu)",
    "norm_first": "pre_norm, and the final norms of pre-norm stacks",
    "positional": "position_encodings.encodings: our table, sinusoids included",
    "max_positions": "rows of the position table: the longest input and output",
    "share_embeddings": "one array for encoder and decoder embeddings",
    "tie_output": "one array for decoder embeddings and projection",
    "scale_embeddings": "scale_embeddings (sqrt(d_model) or none)",
    "layer_norm_eps": "config.layer_norm_epsilon",
    "pad_id": "must be 0: CTranslate2 masks by length, not by id",
    "attention_kernel": "ours only: kernels compute the same attention",
}


def check_expressible(config: ModelConfig, vocabs: Vocabularies) -> None:
    """Refuse, by name, a model choice that CTranslate2's TransformerSpec cannot express.

    Raises:
        ExportError: naming the config field (`model.<field>`) or the vocabulary at fault.
    """
    unknown = sorted(set(config.to_dict()) - set(FIELDS))
    if unknown:
        raise ExportError(
            f"model.{unknown[0]} has no CTranslate2 counterpart known to this exporter; "
            "cannot export it to ct2"
        )
    if config.activation not in ACTIVATIONS:
        raise ExportError(
            f"model.activation {config.activation!r} has no CTranslate2 counterpart here "
            f"(exportable: {', '.join(ACTIVATIONS)})"
        )
    if config.positional not in ("sinusoidal", "learned"):
        raise ExportError(f"model.positional {config.positional!r} cannot be exported to ct2")
    if config.pad_id != PAD_ID:
        # Our model masks every source token whose id is pad_id; CTranslate2 masks only past
        # each sequence's length. They agree only when pad_id is an id no text encodes to.
        raise ExportError(
            f"model.pad_id is {config.pad_id}; CTranslate2 masks padding by length, which "
            f"matches our masks only for pad_id {PAD_ID} ({SPECIAL_PIECES[PAD_ID]})"
        )
    sides = [("source", vocabs.src, "src_vocab_size"), ("target", vocabs.tgt, "tgt_vocab_size")]
    for side, tokenizer, field in sides:
        if tokenizer.vocab_size != getattr(config, field):
            raise ExportError(
                f"the {side} vocabulary has {tokenizer.vocab_size} ids but "
                f"model.{field} is {getattr(config, field)}"
            )
        pieces = vocabulary_pieces(tokenizer)
        for token_id, expected in enumerate(SPECIAL_PIECES):
            if pieces[token_id] != expected:
                raise ExportError(
                    f"the {side} vocabulary has {pieces[token_id]!r} at id {token_id}; "
                    f"CTranslate2 needs {expected!r} there"
                )
        if len(set(pieces)) != len(pieces):
            repeated = next(p for p in pieces if pieces.count(p) > 1)
            raise ExportError(
                f"the {side} vocabulary holds the piece {repeated!r} twice; CTranslate2 maps "
                "each token string to one id"
            )


def position_table(model: Transformer) -> np.ndarray:
    """The (max_positions, d_model) table our model adds to its embeddings.

    Sinusoids are recomputed with `sinusoids`, exactly as the model builds its buffer (which
    checkpoints do not store); a learned table is the trained weight.
    """
    config = model.config
    if config.positional == "learned":
        return array(model.positions.embedding.weight)
    return array(sinusoids(config.max_positions, config.d_model))


def array(tensor: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of a weight."""
    return tensor.detach().to(torch.float32).cpu().numpy().copy()


def set_linear(spec: common_spec.LinearSpec, linear: nn.Linear) -> None:
    spec.weight = array(linear.weight)
    spec.bias = array(linear.bias)


def set_layer_norm(spec: common_spec.LayerNormSpec, norm: nn.LayerNorm) -> None:
    spec.gamma = array(norm.weight)
    spec.beta = array(norm.bias)


def set_ffn(spec: transformer_spec.FeedForwardSpec, ffn: FeedForward, norm: nn.LayerNorm) -> None:
    set_layer_norm(spec.layer_norm, norm)
    set_linear(spec.linear_0, ffn.fc1)
    set_linear(spec.linear_1, ffn.fc2)


def set_self_attention(spec: Any, attention: SelfAttention, norm: nn.LayerNorm) -> None:
    # Our fused projection stacks W^Q, W^K, W^V row-wise, as CTranslate2's linear[0] expects.
    set_layer_norm(spec.layer_norm, norm)
    set_linear(spec.linear[0], attention.qkv_proj)
    set_linear(spec.linear[1], attention.out_proj)


def set_cross_attention(spec: Any, attention: CrossAttention, norm: nn.LayerNorm) -> None:
    # Keys and values are one stacked projection on both sides (W^K, then W^V).
    set_layer_norm(spec.layer_norm, norm)
    set_linear(spec.linear[0], attention.q_proj)
    set_linear(spec.linear[1], attention.kv_proj)
    set_linear(spec.linear[2], attention.out_proj)


def set_encoder_layer(spec: Any, layer: EncoderLayer) -> None:
    set_self_attention(spec.self_attention, layer.self_attn, layer.attn_block.norm)
    set_ffn(spec.ffn, layer.ffn, layer.ffn_block.norm)


def set_decoder_layer(spec: Any, layer: DecoderLayer) -> None:
    set_self_attention(spec.self_attention, layer.self_attn, layer.self_attn_block.norm)
    set_cross_attention(spec.attention, layer.cross_attn, layer.cross_attn_block.norm)
    set_ffn(spec.ffn, layer.ffn, layer.ffn_block.norm)


def build_spec(model: Transformer, vocabs: Vocabularies) -> transformer_spec.TransformerSpec:
    """The TransformerSpec of `model`, weights and vocabularies filled in.

    Raises:
        ExportError: a model choice CTranslate2 cannot express (see `check_expressible`).
    """
    config = model.config
    check_expressible(config, vocabs)
    spec = transformer_spec.TransformerSpec.from_config(
        (config.n_encoder_layers, config.n_decoder_layers),
        config.n_heads,
        pre_norm=config.norm_first,
        activation=ACTIVATIONS[config.activation],
    )
    # Explicit, not CTranslate2's default (1e-5 or 1e-6 depending on the norm).
    spec.config.layer_norm_epsilon = config.layer_norm_eps
    spec.config.unk_token = UNK_PIECE
    spec.config.bos_token = BOS_PIECE
    spec.config.eos_token = EOS_PIECE
    spec.config.decoder_start_token = BOS_PIECE
    spec.config.add_source_bos = False
    spec.config.add_source_eos = False

    positions = position_table(model)
    encoder, decoder = spec.encoder, spec.decoder
    for stack in (encoder, decoder):
        stack.scale_embeddings = config.scale_embeddings
        stack.position_encodings.encodings = positions
    encoder.embeddings[0].weight = array(model.src_embed.weight)
    decoder.embeddings.weight = array(model.tgt_embed.weight)
    for layer_spec, layer in zip(encoder.layer, model.encoder_layers, strict=True):
        set_encoder_layer(layer_spec, layer)
    for layer_spec, layer in zip(decoder.layer, model.decoder_layers, strict=True):
        set_decoder_layer(layer_spec, layer)
    if config.norm_first:
        assert model.encoder_norm is not None and model.decoder_norm is not None
        set_layer_norm(encoder.layer_norm, model.encoder_norm)
        set_layer_norm(decoder.layer_norm, model.decoder_norm)
    set_linear(decoder.projection, model.generator)  # weight tied or not, and its bias

    spec.register_source_vocabulary(vocabulary_pieces(vocabs.src))
    spec.register_target_vocabulary(vocabulary_pieces(vocabs.tgt))
    return spec


class AiaynConverter(Converter):
    """Converts an aiayn model to the CTranslate2 format.

        AiaynConverter(model, vocabs).convert("exports/en-de-ct2", quantization="int8")

    Args:
        model: the model (its weights are read, in float32).
        vocabs: its source and target vocabularies.
    """

    def __init__(self, model: Transformer, vocabs: Vocabularies) -> None:
        self._model = model
        self._vocabs = vocabs

    def _load(self) -> transformer_spec.TransformerSpec:
        with torch.no_grad():
            return build_spec(self._model, self._vocabs)
