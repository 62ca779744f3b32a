"""Tokenizers: exact round trips on real Multi30k text, fixed special ids, save and load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiayn.data import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    DataError,
    SentencePieceTokenizer,
    SymbolTokenizer,
    Vocabularies,
    build_vocabularies,
    default_vocab_size,
    encode_pairs,
    load_multi30k,
    load_tokenizer,
    make_task,
)

VOCAB = 1000  # small, so that training in the tests takes well under a second


@pytest.fixture(scope="module")
def train_pairs(multi30k: Path) -> list[tuple[str, str]]:
    return load_multi30k("train", "de", "en", data_dir=multi30k, download=False)


@pytest.fixture(scope="module")
def sp(train_pairs: list[tuple[str, str]]) -> SentencePieceTokenizer:
    texts = [s for pair in train_pairs[:2000] for s in pair]
    return SentencePieceTokenizer.train(texts, VOCAB, seed=0)


def test_round_trip_on_real_multi30k_sentences(
    sp: SentencePieceTokenizer, train_pairs: list[tuple[str, str]], multi30k: Path
) -> None:
    # Sentences the model never saw, plus every train sentence with the awkward cases:
    # double spaces, leading or trailing spaces, tabs, no-break spaces, typographic quotes.
    sentences = [s for pair in train_pairs[2000:2300] for s in pair]
    sentences += [s for pair in load_multi30k("val", "de", "en", multi30k) for s in pair][:200]
    awkward = [
        s
        for pair in train_pairs
        for s in pair
        if "  " in s or s != s.strip() or "\t" in s or "\xa0" in s or "„" in s
    ]
    assert (
        len(awkward) > 100 and any("  " in s for s in awkward) and any("\t" in s for s in awkward)
    )
    for text in sentences + awkward:
        assert sp.decode(sp.encode(text)) == text
    # Characters the vocabulary never saw come back through byte fallback, not as UNK.
    for text in ["Čtyři muži stojí", "naïve café ½ — “quoted”", "  two  spaces  "]:
        ids = sp.encode(text)
        assert UNK_ID not in ids
        assert sp.decode(ids) == text


def test_special_ids_and_pieces(sp: SentencePieceTokenizer) -> None:
    assert (
        (sp.pad_id, sp.unk_id, sp.bos_id, sp.eos_id)
        == (0, 1, 2, 3)
        == (
            PAD_ID,
            UNK_ID,
            BOS_ID,
            EOS_ID,
        )
    )
    assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert 500 < sp.vocab_size <= VOCAB
    text = "Ein Mann fährt Fahrrad."
    ids = sp.encode(text)
    assert all(i > EOS_ID for i in ids)  # encode adds no BOS/EOS
    pieces = sp.pieces(text)
    assert pieces == [sp.id_to_piece(i) for i in ids]
    assert "".join(pieces).replace("▁", " ").strip() == text
    # decode drops PAD, BOS and EOS wherever they are.
    assert sp.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == text
    assert sp.encode_batch([text, "Hund"]) == [ids, sp.encode("Hund")]
    with pytest.raises(DataError, match=f"token id {sp.vocab_size} is outside"):
        sp.decode([*ids, sp.vocab_size])


def test_training_is_deterministic_and_bpe_works(train_pairs: list[tuple[str, str]]) -> None:
    texts = [de for de, _ in train_pairs[:800]]
    a = SentencePieceTokenizer.train(texts, 600, model_type="bpe", seed=3)
    b = SentencePieceTokenizer.train(texts, 600, model_type="bpe", seed=3)
    assert a.model_proto == b.model_proto
    assert all(a.decode(a.encode(t)) == t for t in texts[:100])
    with pytest.raises(DataError, match="unknown model_type 'wordpiece'"):
        SentencePieceTokenizer.train(texts, 600, model_type="wordpiece")
    with pytest.raises(DataError, match=r"vocab_size=100 .*smaller than required_chars"):
        SentencePieceTokenizer.train(texts, 100)
    with pytest.raises(DataError, match="cannot train a SentencePiece vocabulary on no"):
        SentencePieceTokenizer.train(["", ""], 600)


def test_save_load_gives_identical_encodings(
    sp: SentencePieceTokenizer, train_pairs: list[tuple[str, str]], tmp_path: Path
) -> None:
    path = sp.save(tmp_path / "tok", "joint")
    assert path == tmp_path / "tok" / "joint.model"
    loaded = load_tokenizer(path)
    assert isinstance(loaded, SentencePieceTokenizer)
    texts = [s for pair in train_pairs[5000:5200] for s in pair]
    assert loaded.encode_batch(texts) == sp.encode_batch(texts)
    assert loaded.vocab_size == sp.vocab_size


def test_load_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(DataError, match=r"bad\.model: not a SentencePiece model"):
        load_tokenizer(bad)
    with pytest.raises(DataError, match=r"missing\.model: cannot read"):
        load_tokenizer(tmp_path / "missing.model")
    with pytest.raises(DataError, match="unknown tokenizer file"):
        load_tokenizer(tmp_path / "vocab.txt")


def test_symbol_tokenizer() -> None:
    tok = SymbolTokenizer.train(["3 1 4 + 1 5", "9 2 6"])
    assert tok.symbols == ["+", "1", "2", "3", "4", "5", "6", "9"]
    assert tok.vocab_size == 4 + 8
    ids = tok.encode("3 1  4")
    assert ids == [4 + 3, 4 + 1, 4 + 4]
    assert tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID]) == "3 1 4"
    assert tok.encode("3 7") == [7, UNK_ID]
    assert tok.pieces("3 7") == ["3", "<unk>"]
    assert tok.decode(tok.encode("3 7")) == "3 <unk>"
    with pytest.raises(DataError, match="reserved"):
        SymbolTokenizer(["a", "</s>"])
    with pytest.raises(DataError, match="repeat"):
        SymbolTokenizer(["a", "a"])


def test_symbol_tokenizer_save_load(tmp_path: Path) -> None:
    tok = SymbolTokenizer.train(src for src, _ in make_task("add", 50, seed=0))
    loaded = load_tokenizer(tok.save(tmp_path, "src"))
    assert isinstance(loaded, SymbolTokenizer) and loaded.symbols == tok.symbols
    (tmp_path / "x.symbols.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match=r"x\.symbols\.json: not a symbol vocabulary"):
        load_tokenizer(tmp_path / "x.symbols.json")


def test_vocabularies_joint_save_load(train_pairs: list[tuple[str, str]], tmp_path: Path) -> None:
    pairs = train_pairs[:1000]
    vocabs = build_vocabularies(pairs, 800, joint=True)
    assert vocabs.joint and vocabs.src is vocabs.tgt and vocabs.kind == "sentencepiece"
    folder = vocabs.save(tmp_path / "run")
    assert sorted(p.name for p in folder.iterdir()) == ["joint.model", "vocabularies.json"]
    loaded = Vocabularies.load(tmp_path / "run")
    assert loaded.joint and loaded.src is loaded.tgt
    assert encode_pairs(pairs[:50], loaded) == encode_pairs(pairs[:50], vocabs)


def test_vocabularies_separate_symbols_save_load(tmp_path: Path) -> None:
    pairs = make_task("add", 200, seed=0)
    vocabs = build_vocabularies(pairs, None, joint=False, kind="symbols")
    assert not vocabs.joint and vocabs.kind == "symbols"
    assert "+" in vocabs.src.pieces("1 + 2") and vocabs.tgt.encode("+") == [UNK_ID]
    vocabs.save(tmp_path)
    assert sorted(p.name for p in (tmp_path / "tokenizer").iterdir()) == [
        "src.symbols.json",
        "tgt.symbols.json",
        "vocabularies.json",
    ]
    loaded = Vocabularies.load(tmp_path)
    assert encode_pairs(pairs, loaded) == encode_pairs(pairs, vocabs)
    examples = encode_pairs(pairs[:1], vocabs)
    assert examples == [(vocabs.src.encode(pairs[0][0]), vocabs.tgt.encode(pairs[0][1]))]
    assert BOS_ID not in examples[0][0] + examples[0][1]


def test_vocabularies_errors(tmp_path: Path) -> None:
    a, b = SymbolTokenizer(["x"]), SymbolTokenizer(["x"])
    with pytest.raises(DataError, match="joint"):
        Vocabularies(src=a, tgt=b, joint=True)
    with pytest.raises(DataError, match="unknown vocabulary kind 'words'"):
        build_vocabularies([("a", "b")], 100, kind="words")
    with pytest.raises(DataError, match=r"vocabularies\.json: cannot read"):
        Vocabularies.load(tmp_path)


def test_default_vocab_size() -> None:
    assert default_vocab_size(2 * 29000) == 8000  # Multi30k, joint vocabulary
    assert default_vocab_size(100) == 1000
    assert default_vocab_size(9_000_000) == 32000
    sizes = [default_vocab_size(n) for n in (1000, 10_000, 100_000, 1_000_000)]
    assert sizes == sorted(sizes) and all(s % 500 == 0 for s in sizes)
