"""`aiayn import-hf`: a local MarianMTModel directory (e.g. OPUS-MT) as an aiayn run.

Reads the files directly, without transformers:

    config.json                  MarianConfig: shapes, activation, special ids (marian_config.py)
    model.safetensors            the weights; or pytorch_model.bin, read with
                                 torch.load(weights_only=True), so no code in it runs
    source.spm, target.spm       SentencePiece models that cut each side's text
    vocab.json                   piece -> id for both sides (target_vocab.json too when
                                 tokenizer_config.json says separate_vocabs)
    generation_config.json       optional: bad_words_ids, num_beams
    tokenizer_config.json        optional: special pieces, languages, separate_vocabs

and writes a run directory that `aiayn translate --run RUN` reads like any other: config.yaml
(data.corpus "imported": no data of its own), run.json, provenance.json, tokenizer/ (one
`MarianTokenizer` per side; sources end with EOS, as Marian trained them) and the weights in
checkpoints/imported/. The run is written under a temporary name and renamed into place.

What MarianMTModel computes, and how ours computes the same (tests/test_import_hf.py checks the
logits against transformers to 1e-4):

- post-norm layers without final norms, LayerNorm epsilon 1e-5 (MarianMTModel's nn.LayerNorm
  default), biases on every projection, attention scaled by d_head^-0.5: ours with
  `norm_first` off;
- embeddings times sqrt(d_model) when `scale_embedding`; one table for both sides when
  `share_encoder_decoder_embeddings`; the generator tied to the target table when
  `tie_word_embeddings`, else `lm_head`; `final_logits_bias` is our generator's bias;
- sinusoidal positions counted from 0 in both stacks (a cached decoder step at position t adds
  row t, as ours), sin|cos concatenated: ours after the fixed permutation of the residual
  stream in `hf_mapping.py`;
- pad = decoder start = the last id, EOS = 0: `MarianTokenizer` carries these ids and
  ModelConfig.pad_id the pad, from which our masks derive; sources end with EOS;
- the FFN activation: "swish" (SiLU), "gelu" or "relu";
- separate q, k, v projections: stacked into our fused ones (hf_mapping.py names them all, for
  the export too; marian_weights.py checks a checkpoint's tensors against it).

What would make our model compute something else is refused by name (marian_config.py).
Training-only settings (activation_dropout, layerdrop) do not change a translation; run.json
lists them as not carried.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from aiayn.data import DataConfig, DataError, MarianTokenizer, Vocabularies
from aiayn.data.corpus import IMPORTED
from aiayn.data.marian_tokenizer import load_spm
from aiayn.decoding.config import DecodeConfig
from aiayn.export.common import EXPORT_INFO, ExportError
from aiayn.export.marian_config import (
    NOT_CARRIED,
    generation_settings,
    model_config,
    read_json,
    setting,
)
from aiayn.export.marian_weights import read_tensors, read_weights, weights_file
from aiayn.model import ModelConfig, Transformer
from aiayn.runs import RunDir, atomic_write_json, save_checkpoint
from aiayn.runs.atomic import write_folder
from aiayn.runs.layout import provenance

CONFIG = "config.json"
SOURCE_SPM = "source.spm"
TARGET_SPM = "target.spm"
VOCAB = "vocab.json"
TARGET_VOCAB = "target_vocab.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
CHECKPOINT = "checkpoints/imported"


@dataclasses.dataclass(frozen=True)
class MarianImport:
    """A Marian model read into our classes.

    Attributes:
        model: our Transformer holding the Marian weights (eval mode, float32, CPU).
        vocabs: one `MarianTokenizer` per side; sources end with EOS.
        decode: decoding settings (the beam size of the generation config).
        data: the run's data section: corpus "imported", the languages if the tokenizer says.
        notes: facts for run.json (where from, training settings not carried).
    """

    model: Transformer
    vocabs: Vocabularies
    decode: DecodeConfig
    data: DataConfig
    notes: dict[str, Any]


def special_piece(values: dict[str, Any], key: str, default: str, where: Path) -> str:
    """A special piece named in tokenizer_config.json (a string, or an AddedToken's content)."""
    value = values.get(key, default)
    if isinstance(value, dict):
        value = value.get("content")
    if not isinstance(value, str):
        raise ExportError(f"{where}: {key} must be a string, got {value!r}")
    return value


def read_vocabularies(
    directory: Path, config: dict[str, Any], model: ModelConfig, forbidden: list[int]
) -> tuple[Vocabularies, dict[str, Any]]:
    """One `MarianTokenizer` per side, checked against config.json's sizes and special ids.

    Args:
        directory: the Marian directory.
        config: config.json's object.
        model: our config made from it.
        forbidden: ids search must never emit (`generation_settings`).

    Returns:
        The vocabularies (sources end with EOS unless the folder is one of our exports) and
        tokenizer_config.json's object ({} if none).

    Raises:
        ExportError: a bad file, or ids that disagree with config.json.
    """
    path = directory / TOKENIZER_CONFIG
    tok_config = read_json(path) if path.is_file() else {}
    separate = tok_config.get("separate_vocabs", False)
    if not isinstance(separate, bool):
        raise ExportError(f"{path}: separate_vocabs must be true or false, got {separate!r}")
    pieces = {
        f"{name}_piece": special_piece(tok_config, f"{name}_token", default, path)
        for name, default in (("pad", "<pad>"), ("unk", "<unk>"), ("eos", "</s>"))
    }
    spms = {}
    for name in (SOURCE_SPM, TARGET_SPM):
        spms[name] = (directory / name).read_bytes()
        try:
            load_spm(spms[name], str(directory / name))
        except DataError as e:
            raise ExportError(str(e)) from None
    where = directory / CONFIG
    start = setting(config, "decoder_start_token_id", int, where)
    tgt_file = TARGET_VOCAB if separate else VOCAB
    try:
        src = MarianTokenizer(read_json(directory / VOCAB), spms[SOURCE_SPM], **pieces)
    except DataError as e:
        raise ExportError(f"{directory / VOCAB}: {e}") from None
    try:
        # MarianTokenizer joins target pieces with source.spm unless the vocabularies are
        # separate: so do we, for the same text.
        tgt = MarianTokenizer(
            read_json(directory / tgt_file),
            spms[TARGET_SPM],
            spms[TARGET_SPM] if separate else spms[SOURCE_SPM],
            decoder_start_id=start,
            suppressed_ids=forbidden,
            **pieces,
        )
    except DataError as e:
        raise ExportError(f"{directory / tgt_file}: {e}") from None
    sizes = (("vocab_size", src, VOCAB, model.src_vocab_size),)
    sizes += (("decoder_vocab_size", tgt, tgt_file, model.tgt_vocab_size),)
    for key, tokenizer, file, size in sizes:
        if tokenizer.vocab_size != size:
            raise ExportError(f"{where}: {key} is {size} but {file} has {tokenizer.vocab_size} ids")
    eos = setting(config, "eos_token_id", int, where)
    for key, wanted, piece in (("pad_token_id", model.pad_id, "pad"), ("eos_token_id", eos, "eos")):
        for tokenizer, file in ((src, VOCAB), (tgt, tgt_file)):
            found = getattr(tokenizer, f"{piece}_id")
            if found != wanted:
                raise ExportError(
                    f"{where}: {key} is {wanted} but {file} gives {pieces[f'{piece}_piece']} "
                    f"the id {found}"
                )
    return Vocabularies(
        src=src, tgt=tgt, joint=False, source_eos=trained_with_source_eos(directory)
    ), tok_config


def trained_with_source_eos(directory: Path) -> bool:
    """Whether the model saw an EOS at the end of each source: OPUS-MT's did; a model exported
    by `aiayn export --format hf` says in its export.json that it did not."""
    path = directory / EXPORT_INFO
    if not path.is_file():
        return True
    value = read_json(path).get("source_eos", True)
    if not isinstance(value, bool):
        raise ExportError(f"{path}: source_eos must be true or false, got {value!r}")
    return value


def read_marian(directory: str | Path) -> MarianImport:
    """Read a MarianMTModel directory into our model and tokenizers.

    Args:
        directory: the folder holding config.json, model.safetensors (or pytorch_model.bin),
            source.spm, target.spm and vocab.json.

    Returns:
        The model, vocabularies and settings.

    Raises:
        ExportError: a missing file (named), or anything we cannot express (named).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ExportError(f"{directory}: not a folder (expected a MarianMTModel directory)")
    for name in (CONFIG, SOURCE_SPM, TARGET_SPM, VOCAB):
        if not (directory / name).is_file():
            raise ExportError(f"{directory / name}: missing (a MarianMTModel directory needs it)")
    weights = weights_file(directory)
    config = read_json(directory / CONFIG)
    ours = model_config(config, directory / CONFIG)
    forbidden, beams = generation_settings(config, directory)
    vocabs, tok_config = read_vocabularies(directory, config, ours, forbidden)

    model = Transformer(ours)
    model.load_state_dict(read_weights(read_tensors(weights), ours, weights))  # shapes checked
    # Languages, if tokenizer_config.json names them, choose the rules of tokenised BLEU.
    langs = {
        f"{ours_key}_lang": tok_config[f"{theirs}_lang"]
        for ours_key, theirs in (("src", "source"), ("tgt", "target"))
        if isinstance(tok_config.get(f"{theirs}_lang"), str)
    }
    data = DataConfig(
        corpus=IMPORTED,
        **{"src_lang": "und", "tgt_lang": "und", **langs},
        joint_vocab=ours.share_embeddings,
    )
    notes = {
        "format": "marian",
        "path": str(directory.resolve()),
        "weights": weights.name,
        "transformers_version": config.get("transformers_version"),
        "not_carried": {key: config[key] for key in NOT_CARRIED if key in config},
    }
    return MarianImport(model.eval(), vocabs, DecodeConfig(beam_size=beams), data, notes)


def run_config_yaml(imported: MarianImport) -> str:
    """config.yaml of an imported run: the model's fields, the data and decode sections.

    The train section is left to its defaults: an imported run is not trained further.
    """
    fields = imported.model.config.to_dict()
    model = {"preset": "base"}
    model |= {k: v for k, v in fields.items() if k not in ("src_vocab_size", "tgt_vocab_size")}
    sections = {
        "model": model,
        # Only what is not a default: the rest of a data section describes training data.
        "data": {
            key: value
            for key, value in dataclasses.asdict(imported.data).items()
            if value != getattr(DataConfig(), key)
        },
        "decode": dataclasses.asdict(imported.decode),
    }
    return yaml.safe_dump(sections, sort_keys=False)


def import_marian(directory: str | Path, out: str | Path) -> MarianImport:
    """Import a MarianMTModel directory as a new run at `out`, written atomically.

    Args:
        directory: the Marian directory (see `read_marian`).
        out: the run directory to create; it must not exist.

    Returns:
        What was imported.

    Raises:
        ExportError: `out` exists, or the Marian directory cannot be imported (named).
    """
    out = Path(out)
    if out.exists():
        raise ExportError(f"{out} already exists: give --out a new folder for the imported run")
    imported = read_marian(directory)
    config = imported.model.config

    def fill(tmp: Path) -> None:
        run = RunDir(tmp)
        meta = {"imported": imported.notes}
        save_checkpoint(tmp / CHECKPOINT, imported.model, config, None, meta)
        imported.vocabs.save(tmp)
        run.config_file.write_text(run_config_yaml(imported), encoding="utf-8")
        info = {
            "model_config": config.to_dict(),
            "decode": dataclasses.asdict(imported.decode),
            "default_checkpoint": CHECKPOINT,
            "data": IMPORTED,
            "imported": imported.notes,
        }
        atomic_write_json(run.info_file, info)
        atomic_write_json(run.provenance_file, {**provenance("cpu"), "imported": imported.notes})

    write_folder(out, fill)
    return imported
