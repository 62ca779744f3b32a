"""Export to Hugging Face transformers (`aiayn export --format hf`).

The folder loads offline with `from_pretrained` and needs no aiayn:

    config.json, model.safetensors   MarianMTModel (post-norm models) or
                                     PegasusForConditionalGeneration (pre-norm models)
    generation_config.json           greedy search with our ids: decoder start = BOS (2),
                                     EOS 3, pad 0; max_length = the model's max_positions
    tokenizer files                  sentencepiece runs: MarianTokenizer (source.spm,
                                     target.spm, vocab.json, tokenizer_config.json);
                                     joint symbol vocabularies: tokenizer.json (one id per
                                     whitespace-separated symbol)

Why these classes: MarianMTModel is the paper's post-norm Transformer with static sinusoids,
which it cannot run pre-norm; PegasusForConditionalGeneration is the same code pre-norm, with a
final LayerNorm after each stack, as ours has. Both lay their sinusoids out as `sin | cos` where
ours interleave them; `aiayn.export.hf_mapping` permutes the residual stream to match, exactly
(the same mapping, read backwards, imports Marian checkpoints: `aiayn import-hf`).

Call the tokenizer with `add_special_tokens=False`: MarianTokenizer appends `</s>` to every
source by default, and our models were trained on sources without it (docs/export.md).

A model choice these classes cannot express is refused by name (`ExportError`): learned
positions, a LayerNorm epsilon other than their fixed 1e-5, an activation transformers does not
know, a pre-norm model whose two vocabularies differ in size, separate symbol vocabularies.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from aiayn.data import SentencePieceTokenizer, SymbolTokenizer, Vocabularies
from aiayn.data.tokenizer import BOS_PIECE, EOS_PIECE, PAD_PIECE, UNK_PIECE
from aiayn.export.common import ExportError, ExportSource, require
from aiayn.export.hf_mapping import to_hf_state_dict
from aiayn.model import ModelConfig

EXTRA = "hf"
MARIAN = "MarianMTModel"  # post-norm
PEGASUS = "PegasusForConditionalGeneration"  # pre-norm with final norms
# Both classes build their LayerNorms as nn.LayerNorm(d_model): epsilon 1e-5, not configurable.
HF_LAYER_NORM_EPS = 1e-5
# Our activation names -> transformers' ACT2FN names that compute the same function.
ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "swish": "swish"}


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """transformers' progress bars off (saving and loading a small model is instant), restored
    after."""
    logging = require("transformers.utils.logging", EXTRA)
    was_on = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            logging.enable_progress_bar()


def architecture(config: ModelConfig) -> str:
    """The transformers class that runs a model of this config: by pre- or post-norm."""
    return PEGASUS if config.norm_first else MARIAN


def check_exportable(config: ModelConfig, vocabs: Vocabularies) -> None:
    """Refuse, by name, every model choice that the transformers class cannot express.

    Training-only choices (dropout, attention dropout) travel in config.json; the attention
    kernel is ours to choose and transformers chooses its own.

    Raises:
        ExportError: naming the field, its value and why.
    """
    target = architecture(config)
    if config.positional != "sinusoidal":
        raise ExportError(
            f"model.positional {config.positional!r} cannot be exported to Hugging Face: "
            f"{target} has only sinusoidal positions"
        )
    if config.layer_norm_eps != HF_LAYER_NORM_EPS:
        raise ExportError(
            f"model.layer_norm_eps {config.layer_norm_eps:g} cannot be exported to Hugging Face: "
            f"{target}'s LayerNorms use {HF_LAYER_NORM_EPS:g}, not configurable"
        )
    if config.activation not in ACTIVATIONS:
        raise ExportError(
            f"model.activation {config.activation!r} cannot be exported to Hugging Face: "
            f"transformers' ACT2FN has no counterpart (known: {', '.join(ACTIVATIONS)})"
        )
    if config.norm_first and config.src_vocab_size != config.tgt_vocab_size:
        raise ExportError(
            f"a pre-norm model with model.src_vocab_size {config.src_vocab_size} != "
            f"model.tgt_vocab_size {config.tgt_vocab_size} cannot be exported to Hugging Face: "
            f"{PEGASUS} has one vocab_size for both sides"
        )
    if vocabs.kind == "symbols" and not vocabs.joint:
        raise ExportError(
            "separate symbol vocabularies cannot be exported to Hugging Face: a transformers "
            "tokenizer without sentencepiece holds one vocabulary (use a joint one)"
        )


def special_ids(config: ModelConfig, vocabs: Vocabularies) -> dict[str, int]:
    """Our special ids as transformers names them, in config.json and generation_config.json:
    the decoder starts with BOS, and a sentence that reaches the length limit ends with EOS."""
    tgt = vocabs.tgt
    return dict(
        pad_token_id=config.pad_id,
        bos_token_id=tgt.bos_id,
        eos_token_id=tgt.eos_id,
        decoder_start_token_id=tgt.bos_id,
        forced_eos_token_id=tgt.eos_id,
    )


def hf_config(config: ModelConfig, vocabs: Vocabularies) -> Any:
    """The MarianConfig or PegasusConfig of our model (see `architecture`).

    Raises:
        ExportError: transformers is not installed, or a choice it cannot express.
    """
    transformers = require("transformers", EXTRA)
    check_exportable(config, vocabs)
    act2fn = require("transformers.activations", EXTRA).ACT2FN
    if ACTIVATIONS[config.activation] not in act2fn:
        raise ExportError(
            f"model.activation {config.activation!r}: this transformers "
            f"({transformers.__version__}) has no {ACTIVATIONS[config.activation]!r} in ACT2FN"
        )
    fields: dict[str, Any] = dict(
        d_model=config.d_model,
        encoder_layers=config.n_encoder_layers,
        decoder_layers=config.n_decoder_layers,
        encoder_attention_heads=config.n_heads,
        decoder_attention_heads=config.n_heads,
        encoder_ffn_dim=config.d_ff,
        decoder_ffn_dim=config.d_ff,
        activation_function=ACTIVATIONS[config.activation],
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        activation_dropout=config.dropout,  # ours drops the FFN's inner activations with it
        max_position_embeddings=config.max_positions,
        scale_embedding=config.scale_embeddings,
        vocab_size=config.src_vocab_size,
        **special_ids(config, vocabs),
    )
    if config.norm_first:
        # Pegasus ties encoder, decoder and output tables to `shared` only all at once.
        tied = config.share_embeddings and config.tie_output
        return transformers.PegasusConfig(tie_word_embeddings=tied, **fields)
    return transformers.MarianConfig(
        decoder_vocab_size=config.tgt_vocab_size,
        share_encoder_decoder_embeddings=config.share_embeddings,
        tie_word_embeddings=config.tie_output,
        **fields,
    )


def hf_model(source: ExportSource) -> Any:
    """Our model as an in-memory transformers model (float32, eval), weights mapped exactly.

    Raises:
        ExportError: see `hf_config`.
    """
    transformers = require("transformers", EXTRA)
    config = source.model.config
    hf = hf_config(config, source.vocabs)
    cls = getattr(transformers, architecture(config))
    model = cls(hf).eval()
    state = to_hf_state_dict(source.model.state_dict(), config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # The sinusoid tables are no weights: transformers computes them (sin | cos) at load time.
    missing = [name for name in missing if not name.endswith("embed_positions.weight")]
    if missing or unexpected:  # a mapping out of step with this transformers: a bug
        raise RuntimeError(f"weight mapping mismatch: missing {missing}, unexpected {unexpected}")
    return model


def generation_config(source: ExportSource) -> Any:
    """Greedy search with our ids; `max_length` = max_positions (the positional table's rows).

    Our search stops a sentence at source length + decode.max_len_offset tokens (EOS counted);
    a generation_config holds one fixed limit, so pass `max_new_tokens` per call to match it
    (`aiayn.export.hf_translate` does).
    """
    transformers = require("transformers", EXTRA)
    return transformers.GenerationConfig(
        num_beams=1,
        do_sample=False,
        max_length=source.model.config.max_positions,
        **special_ids(source.model.config, source.vocabs),
    )


def _pieces(tokenizer: SentencePieceTokenizer | SymbolTokenizer) -> dict[str, int]:
    """piece -> id for every id."""
    return {tokenizer.id_to_piece(i): i for i in range(tokenizer.vocab_size)}


SPECIAL_TOKENS = dict(
    bos_token=BOS_PIECE, eos_token=EOS_PIECE, unk_token=UNK_PIECE, pad_token=PAD_PIECE
)


def write_tokenizer(vocabs: Vocabularies, folder: Path, max_length: int) -> str:
    """Write transformers tokenizer files that give our ids (with `add_special_tokens=False`).

    Sentencepiece: MarianTokenizer over our own .model files (source.spm, target.spm), so the
    pieces are those sentencepiece gives; vocab.json maps each piece to its id, which is the
    sentencepiece id. Joint symbol vocabularies: a WordLevel tokenizer.json that splits on
    whitespace, with no post-processor (it appends nothing).

    Returns:
        The tokenizer class written, for export.json.
    """
    transformers = require("transformers", EXTRA)
    common = dict(model_max_length=max_length, clean_up_tokenization_spaces=False, **SPECIAL_TOKENS)
    if isinstance(vocabs.src, SymbolTokenizer):
        tokenizers = require("tokenizers", EXTRA)
        engine = tokenizers.Tokenizer(
            tokenizers.models.WordLevel(_pieces(vocabs.src), unk_token=UNK_PIECE)
        )
        engine.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
        tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=engine, **common)
        tokenizer.save_pretrained(str(folder))
        return "PreTrainedTokenizerFast"
    assert isinstance(vocabs.src, SentencePieceTokenizer)
    assert isinstance(vocabs.tgt, SentencePieceTokenizer)
    (folder / "source.spm").write_bytes(vocabs.src.model_proto)
    (folder / "target.spm").write_bytes(vocabs.tgt.model_proto)
    files = {"vocab": folder / "vocab.json"}
    (folder / "vocab.json").write_text(json.dumps(_pieces(vocabs.src), ensure_ascii=False))
    if not vocabs.joint:
        files["target_vocab_file"] = folder / "target_vocab.json"
        files["target_vocab_file"].write_text(json.dumps(_pieces(vocabs.tgt), ensure_ascii=False))
    tokenizer = transformers.MarianTokenizer(
        source_spm=str(folder / "source.spm"),
        target_spm=str(folder / "target.spm"),
        separate_vocabs=not vocabs.joint,
        **{name: str(path) for name, path in files.items()},
        **common,
    )
    tokenizer.save_pretrained(str(folder))
    return "MarianTokenizer"


def write_hf(source: ExportSource, folder: Path, quantization: str | None = None) -> dict[str, Any]:
    """Write the transformers folder (the format writer registered as "hf").

    Args:
        source: the run to export.
        folder: the (temporary) export folder.
        quantization: must be None: this export is float32.

    Returns:
        Notes for export.json.

    Raises:
        ExportError: transformers missing, a quantization asked for, a choice the class cannot
            express.
    """
    transformers = require("transformers", EXTRA)
    if quantization is not None:
        raise ExportError(
            f"--quantization {quantization}: the hf export writes float32 weights only "
            "(quantize after loading, with transformers' own tools)"
        )
    model = hf_model(source)
    model.generation_config = generation_config(source)
    with torch.no_grad(), quiet_progress():
        model.save_pretrained(str(folder))
    config = source.model.config
    tokenizer = write_tokenizer(source.vocabs, folder, config.max_positions)
    return {
        "hf_class": architecture(config),
        "hf_tokenizer": tokenizer,
        "tokenizer_call": "add_special_tokens=False (no </s> on sources)",
        "max_len_offset": source.decode.max_len_offset,
        "transformers_version": transformers.__version__,
    }
