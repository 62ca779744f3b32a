"""A Marian model's settings (config.json, generation_config.json) as ours, or refused by name.

MarianMTModel (transformers 5.x) computes a post-norm Transformer; `model_config` maps its
config.json onto our `ModelConfig` and refuses, naming the key, every setting that would make
our model compute something else. `generation_settings` does the same for decoding: the ids
search must never emit (single-token `bad_words_ids`, `suppress_tokens`) and the beam size are
carried; options our search does not have (sampling, repetition penalties, ...) are refused
unless they are set to the value that leaves search alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiayn.export.common import ExportError
from aiayn.model import ModelConfig

# MarianConfig's defaults (transformers 5.x) for keys that converted OPUS-MT configs may lack
# (transformers fills them in the same way). Shapes and special ids have no default here: they
# must be in config.json.
MARIAN_DEFAULTS: dict[str, Any] = {
    "activation_function": "gelu",
    "scale_embedding": False,
    "share_encoder_decoder_embeddings": True,
    "tie_word_embeddings": True,
    "max_position_embeddings": 1024,
    "dropout": 0.1,
    "attention_dropout": 0.0,
}
# transformers' activation names -> ours. Its "gelu" is the exact (erf) GELU, as ours.
ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "swish": "swish", "silu": "swish"}
# Flags of older BART-style configs that MarianMTModel does not compute. A model with one set
# otherwise was not the post-norm Marian Transformer that MarianMTModel (and aiayn) run.
REQUIRED_FLAGS = {
    "normalize_before": False,
    "normalize_embedding": False,
    "add_final_layer_norm": False,
    "add_bias_logits": False,
    "static_position_embeddings": True,
}
# Generation options without a counterpart in our search, with the values that leave it alone
# (the first is transformers' default).
NEUTRAL_GENERATION: dict[str, tuple[Any, ...]] = {
    "do_sample": (False,),
    "no_repeat_ngram_size": (0,),
    "encoder_no_repeat_ngram_size": (0,),
    "repetition_penalty": (1.0,),
    "forced_bos_token_id": (None,),
    "begin_suppress_tokens": (None, []),
    "min_length": (0,),
    "min_new_tokens": (None, 0),
}
# Training-only settings: they do not change a translation; run.json lists them as not carried.
NOT_CARRIED = ("activation_dropout", "encoder_layerdrop", "decoder_layerdrop")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file of the Marian directory.

    Raises:
        ExportError: unreadable, not JSON, or not an object (naming the file).
    """
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ExportError(f"{path}: cannot read ({e.strerror})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ExportError(f"{path}: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return value


def setting(values: dict[str, Any], key: str, kind: type, where: Path) -> Any:
    """`values[key]`, or MarianConfig's default, if it is of type `kind`.

    A one-element list is its element (transformers allows `eos_token_id: [0]`).

    Raises:
        ExportError: the key is missing without a default, or of another type.
    """
    if key not in values and key not in MARIAN_DEFAULTS:
        raise ExportError(f"{where}: {key} is missing")
    value = values.get(key, MARIAN_DEFAULTS.get(key))
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ExportError(f"{where}: {key} must be a {kind.__name__}, got {value!r}")
    return value


def model_config(values: dict[str, Any], where: Path) -> ModelConfig:
    """Our ModelConfig for a MarianConfig (the values of config.json).

    Args:
        values: config.json's object.
        where: its path, for messages.

    Raises:
        ExportError: a key that is missing, of the wrong type, or a choice we cannot express.
    """
    if values.get("model_type") != "marian":
        raise ExportError(
            f"{where}: model_type is {values.get('model_type')!r}; import-hf reads "
            "MarianMTModel directories (model_type 'marian')"
        )
    architectures = values.get("architectures") or ["MarianMTModel"]
    if "MarianMTModel" not in architectures:
        raise ExportError(f"{where}: architectures {architectures} has no MarianMTModel")
    for key, required in REQUIRED_FLAGS.items():
        if key in values and values[key] != required:
            raise ExportError(
                f"{where}: {key} = {values[key]!r} is not supported (MarianMTModel and aiayn "
                f"compute the model with {key} = {required!r})"
            )

    def get(key: str, kind: type = int) -> Any:
        return setting(values, key, kind, where)

    for ours, (enc, dec) in {
        "n_heads": ("encoder_attention_heads", "decoder_attention_heads"),
        "d_ff": ("encoder_ffn_dim", "decoder_ffn_dim"),
    }.items():
        if get(enc) != get(dec):
            raise ExportError(
                f"{where}: {enc} = {get(enc)} and {dec} = {get(dec)} differ; aiayn has one "
                f"{ours} for both stacks"
            )
    activation = get("activation_function", str)
    if activation not in ACTIVATIONS:
        raise ExportError(
            f"{where}: activation_function {activation!r} is not supported (aiayn has "
            f"{', '.join(ACTIVATIONS)})"
        )
    share = get("share_encoder_decoder_embeddings", bool)
    vocab_size = get("vocab_size")
    # A shared table has vocab_size rows; otherwise the decoder's has decoder_vocab_size.
    decoder_vocab = values.get("decoder_vocab_size")
    tgt_vocab_size = vocab_size if share or decoder_vocab is None else get("decoder_vocab_size")
    try:
        return ModelConfig(
            src_vocab_size=vocab_size,
            tgt_vocab_size=tgt_vocab_size,
            d_model=get("d_model"),
            n_heads=get("encoder_attention_heads"),
            d_ff=get("encoder_ffn_dim"),
            n_encoder_layers=get("encoder_layers"),
            n_decoder_layers=get("decoder_layers"),
            dropout=get("dropout", float),
            attention_dropout=get("attention_dropout", float),
            activation=ACTIVATIONS[activation],
            norm_first=False,
            positional="sinusoidal",
            max_positions=get("max_position_embeddings"),
            share_embeddings=share,
            tie_output=get("tie_word_embeddings", bool),
            scale_embeddings=get("scale_embedding", bool),
            layer_norm_eps=1e-5,  # MarianMTModel's nn.LayerNorm default; config.json has no key
            pad_id=get("pad_token_id"),
        )
    except ValueError as e:  # ModelConfigError, naming our field
        raise ExportError(f"{where}: {e}") from None


def generation_settings(config: dict[str, Any], directory: Path) -> tuple[list[int], int]:
    """The ids search must never emit, and the beam size, of a Marian model.

    Read from generation_config.json, else from config.json (where older checkpoints keep
    them). `num_beams` defaults to 1, as in transformers.

    Args:
        config: config.json's object.
        directory: the Marian directory.

    Returns:
        The sorted forbidden ids and the beam size.

    Raises:
        ExportError: a setting our search cannot honour, naming it.
    """
    path = directory / "generation_config.json"
    values, where = (
        (read_json(path), path) if path.is_file() else (config, directory / "config.json")
    )
    for key, neutral in NEUTRAL_GENERATION.items():
        value = values.get(key, neutral[0])
        if value not in neutral:
            raise ExportError(f"{where}: {key} = {value!r} has no counterpart in aiayn's search")
    forbidden: list[int] = []
    for entry in values.get("bad_words_ids") or []:
        if not (isinstance(entry, list) and len(entry) == 1 and type(entry[0]) is int):
            raise ExportError(
                f"{where}: bad_words_ids entry {entry!r}: aiayn forbids single tokens only"
            )
        forbidden.append(entry[0])
    for token in values.get("suppress_tokens") or []:
        if type(token) is not int:
            raise ExportError(f"{where}: suppress_tokens must be ids, got {token!r}")
        forbidden.append(token)
    beams = values.get("num_beams", 1)
    if type(beams) is not int or beams < 1:
        raise ExportError(f"{where}: num_beams must be a positive int, got {beams!r}")
    return sorted(set(forbidden)), beams
