"""Builders of MarianMTModel directories laid out like OPUS-MT's, for the import-hf tests.

OPUS-MT's layout, which a random model in aiayn's own layout would hide: vocab.json numbers the
pieces of both SentencePiece models in its own order (not SentencePiece's ids), EOS `</s>` is 0,
`<unk>` 1, `<pad>` the last id and also the decoder start; multilingual models have `>>xx<<`
tokens; the activation is swish, embeddings are scaled, and the generation config forbids the
pad token (`bad_words_ids`). The files are written by transformers itself (`save_pretrained`).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import MarianConfig, MarianMTModel
from transformers import MarianTokenizer as HFMarianTokenizer

LANGUAGE_CODES = (">>de<<", ">>fr<<")


def multi30k_lines(folder: Path, lang: str, n: int) -> list[str]:
    """The first `n` Multi30k training sentences in `lang`."""
    with gzip.open(folder / f"train.{lang}.gz", "rt", encoding="utf-8") as f:
        return [next(f).strip() for _ in range(n)]


def train_spm(texts: list[str], path: Path, vocab_size: int = 300) -> None:
    """A SentencePiece model with SentencePiece's defaults (as OPUS-MT's: unigram, NFKC)."""
    model = io.BytesIO()
    spm.set_random_generator_seed(0)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocab_size,
        num_threads=1,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())


def marian_vocab(spm_files: list[Path], codes: tuple[str, ...] = ()) -> dict[str, int]:
    """vocab.json in OPUS-MT's layout: </s> 0, <unk> 1, language codes, the pieces of all the
    SentencePiece models in sorted order (not their SentencePiece ids), <pad> last."""
    pieces: set[str] = set()
    for file in spm_files:
        processor = spm.SentencePieceProcessor(model_file=str(file))
        size = processor.get_piece_size()
        pieces |= {processor.id_to_piece(i) for i in range(size) if not processor.is_control(i)}
    pieces -= {"<unk>"}
    ordered = ["</s>", "<unk>", *codes, *sorted(pieces), "<pad>"]
    return {piece: i for i, piece in enumerate(ordered)}


def write_tokenizer(
    folder: Path, source_spm: Path, target_spm: Path, *, separate: bool = False
) -> HFMarianTokenizer:
    """Save a MarianTokenizer into `folder` (its own files, as transformers writes them).

    Joint: one vocab.json over both SentencePiece models, with language codes. Separate: a
    vocab.json per side (target_vocab.json), each over its own model, no codes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / "scratch"
    scratch.mkdir()
    kwargs = {}
    if separate:
        json.dump(marian_vocab([source_spm]), (scratch / "vocab.json").open("w"))
        json.dump(marian_vocab([target_spm]), (scratch / "target_vocab.json").open("w"))
        kwargs = {"separate_vocabs": True, "target_vocab_file": str(scratch / "target_vocab.json")}
    else:
        vocab = marian_vocab([source_spm, target_spm], LANGUAGE_CODES)
        json.dump(vocab, (scratch / "vocab.json").open("w"))
    tokenizer = HFMarianTokenizer(
        str(source_spm), str(target_spm), str(scratch / "vocab.json"), **kwargs
    )
    tokenizer.save_pretrained(folder)
    for file in scratch.iterdir():
        file.unlink()
    scratch.rmdir()
    return HFMarianTokenizer.from_pretrained(folder)


def marian_config(
    vocab_size: int, decoder_vocab_size: int | None = None, **overrides
) -> MarianConfig:
    """A small MarianConfig with OPUS-MT's choices: swish, scaled embeddings, pad = decoder
    start = the last id, EOS 0."""
    values = dict(
        vocab_size=vocab_size,
        decoder_vocab_size=decoder_vocab_size or vocab_size,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=vocab_size - 1,
        decoder_start_token_id=vocab_size - 1,
        eos_token_id=0,
        forced_eos_token_id=0,
        max_position_embeddings=512,
        dropout=0.1,
    )
    return MarianConfig(**{**values, **overrides})


def randomize(model: MarianMTModel, seed: int) -> MarianMTModel:
    """Weights large enough that greedy output depends on the source (transformers' own init
    makes every output alike); the pad rows and bias are zero, as in converted OPUS-MT models,
    so the pad's logit competes unless search forbids it."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_positions" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        bias = model.final_logits_bias
        bias.copy_(torch.randn(bias.shape, generator=gen))
        pad = model.config.pad_token_id
        for table in {model.get_input_embeddings(), model.get_decoder().embed_tokens}:
            table.weight[pad] = 0.0
        bias[0, pad] = 0.0
    return model.eval()


def save_marian(model: MarianMTModel, tokenizer: HFMarianTokenizer, folder: Path) -> Path:
    """Write the model and tokenizer as OPUS-MT's directories are: a generation config that
    forbids the pad token, renormalises, forces EOS at the end, beam 4."""
    pad = model.config.pad_token_id
    generation = model.generation_config
    generation.bad_words_ids = [[pad]]
    generation.renormalize_logits = True
    generation.forced_eos_token_id = model.config.eos_token_id
    generation.num_beams = 4
    generation.max_length = 512
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def hf_greedy(
    model: MarianMTModel, tokenizer: HFMarianTokenizer, text: str, offset: int
) -> list[int]:
    """transformers' greedy output ids for one sentence, without the decoder start and EOS, with
    aiayn's length limit (source ids, EOS included, + `offset`, EOS included)."""
    inputs = tokenizer([text], return_tensors="pt")
    limit = inputs["input_ids"].shape[1] + offset
    with torch.no_grad():
        out = model.generate(**inputs, num_beams=1, do_sample=False, max_new_tokens=limit)
    ids = out[0, 1:].tolist()
    return ids[:-1] if ids and ids[-1] == model.config.eos_token_id else ids
