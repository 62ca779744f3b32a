"""`aiayn import-hf`: a MarianMTModel directory in OPUS-MT's layout runs in aiayn as it runs in
transformers: the same logits (1e-4, float32, padded batches), the same greedy tokens, the same
text from raw text; bad directories are refused in one line, leaving nothing behind."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from tests.marian_helpers import (
    LANGUAGE_CODES,
    hf_greedy,
    marian_config,
    multi30k_lines,
    randomize,
    save_marian,
    train_spm,
    write_tokenizer,
)
from transformers import MarianMTModel
from transformers import MarianTokenizer as HFMarianTokenizer

from aiayn.cli import main
from aiayn.config import RunConfig
from aiayn.data import DataError, MarianTokenizer, Vocabularies
from aiayn.decoding.translator import Translator

LAYOUTS = {
    # OPUS-MT's usual layout: one vocab.json, one shared table tied to the generator.
    "shared-tied": dict(separate=False, share=True, tie=True, d_model=32, heads=4),
    # Separate vocabularies and tables, an untied generator, an odd width (Marian then puts
    # one more sine than cosines in its position vectors).
    "separate-untied-odd": dict(separate=True, share=False, tie=False, d_model=21, heads=3),
}


@pytest.fixture(scope="module")
def spm_files(multi30k: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """source.spm (English) and target.spm (German), 300 pieces each, from Multi30k."""
    folder = tmp_path_factory.mktemp("spm")
    train_spm(multi30k_lines(multi30k, "en", 2000), folder / "source.spm")
    train_spm(multi30k_lines(multi30k, "de", 2000), folder / "target.spm")
    return folder / "source.spm", folder / "target.spm"


def random_marian(folder: Path, spm_files: tuple[Path, Path], layout: str) -> Path:
    """A random MarianMTModel directory of `layout` (see LAYOUTS)."""
    spec = LAYOUTS[layout]
    tokenizer = write_tokenizer(folder / "tok", *spm_files, separate=spec["separate"])
    vocab = len(tokenizer.encoder)
    decoder_vocab = len(tokenizer.target_encoder) if spec["separate"] else vocab
    config = marian_config(
        vocab,
        decoder_vocab,
        d_model=spec["d_model"],
        encoder_attention_heads=spec["heads"],
        decoder_attention_heads=spec["heads"],
        share_encoder_decoder_embeddings=spec["share"],
        tie_word_embeddings=spec["tie"],
    )
    torch.manual_seed(0)
    model = randomize(MarianMTModel(config), seed=1)
    return save_marian(model, tokenizer, folder / "marian")


@pytest.fixture(scope="module")
def marian_dir(spm_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random MarianMTModel directory in OPUS-MT's usual layout (read only)."""
    return random_marian(tmp_path_factory.mktemp("marian"), spm_files, "shared-tied")


@pytest.fixture(scope="module")
def imported_run(marian_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`marian_dir` imported with the command (read only)."""
    out = tmp_path_factory.mktemp("runs") / "imported"
    assert main(["import-hf", str(marian_dir), "--out", str(out)]) == 0
    return out


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aiayn ") and "Traceback" not in err
    return err


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_random_marian_model_gives_the_same_logits_and_greedy_tokens(
    layout: str, spm_files: tuple[Path, Path], multi30k: Path, tmp_path: Path
) -> None:
    marian = random_marian(tmp_path, spm_files, layout)
    assert main(["import-hf", str(marian), "--out", str(tmp_path / "run")]) == 0
    theirs = MarianMTModel.from_pretrained(marian).eval()
    tokenizer = HFMarianTokenizer.from_pretrained(marian)
    translator = Translator.from_run(tmp_path / "run")
    assert translator.model.config.activation == "swish"

    # A padded batch of raw sentences, and padded decoder inputs starting from the pad token.
    texts = multi30k_lines(multi30k, "en", 6)
    inputs = tokenizer(texts, return_tensors="pt", padding=True)
    ours_ids = [translator._encode(t) for t in texts]
    pad = theirs.config.pad_token_id
    assert [row[row != pad].tolist() for row in inputs["input_ids"]] == ours_ids
    gen = torch.Generator().manual_seed(2)
    lengths = torch.tensor([7, 3, 5, 1, 6, 4])
    tgt_mask = torch.arange(7)[None, :] < lengths[:, None]
    tgt_in = torch.randint(2, 100, (6, 7), generator=gen).masked_fill(~tgt_mask, pad)
    tgt_in[:, 0] = theirs.config.decoder_start_token_id
    with torch.no_grad():
        expected = theirs(**inputs, decoder_input_ids=tgt_in, decoder_attention_mask=tgt_mask)
        logits = translator.model(
            inputs["input_ids"], tgt_in, inputs["attention_mask"].bool(), tgt_mask
        )
    assert (logits - expected.logits)[tgt_mask].abs().max().item() < 1e-4

    # Greedy search, every sentence, with transformers' own generate.
    offset = translator.decode.max_len_offset
    outputs = [h.hypotheses[0].tokens for h in translator.translate_full(texts, beam_size=1)]
    assert outputs == [hf_greedy(theirs, tokenizer, t, offset) for t in texts]
    assert len({tuple(o) for o in outputs}) == len(texts)  # the outputs follow the source


def test_marian_sinusoids_are_ours_permuted() -> None:
    from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding

    from aiayn.export.marian_weights import marian_sinusoids

    for d_model in (32, 21):
        theirs = MarianSinusoidalPositionalEmbedding(50, d_model).create_weight()
        assert (marian_sinusoids(50, d_model) - theirs).abs().max().item() < 1e-6


def test_the_imported_run_is_a_run(imported_run: Path, marian_dir: Path) -> None:
    config = RunConfig.load(imported_run / "config.yaml")
    assert config.data.corpus == "imported"
    assert (
        config.model["pad_id"]
        == json.loads((marian_dir / "config.json").read_text())["pad_token_id"]
    )
    vocabs = Vocabularies.load(imported_run)
    assert vocabs.source_eos and vocabs.kind == "marian"
    assert vocabs.tgt.suppressed_ids == (vocabs.tgt.pad_id,)  # bad_words_ids, as OPUS-MT's
    assert json.loads((imported_run / "run.json").read_text())["decode"]["beam_size"] == 4


def test_the_tokenizer_gives_marian_tokenizers_ids_and_text(
    imported_run: Path, marian_dir: Path, multi30k: Path
) -> None:
    theirs = HFMarianTokenizer.from_pretrained(marian_dir)
    vocabs = Vocabularies.load(imported_run)
    texts = [*multi30k_lines(multi30k, "en", 300), ">>fr<< Two dogs.", "a </s> b", ""]
    translator = Translator.from_run(imported_run)
    for text in texts:
        assert translator._encode(text) == theirs(text)["input_ids"], text
    assert vocabs.src.encode(">>de<< Hi")[0] == theirs.encoder[">>de<<"]  # one id
    # Decoding: target ids back to text, as MarianTokenizer does (skipping specials).
    gen = torch.Generator().manual_seed(0)
    unk = theirs.unk_token_id
    for _ in range(100):
        ids = torch.randint(0, vocabs.tgt.vocab_size, (12,), generator=gen).tolist()
        ids = [i for i in ids if i != unk]
        assert vocabs.tgt.decode(ids) == theirs.decode(ids, skip_special_tokens=True)


def test_an_unknown_language_token_is_an_error_naming_it(imported_run: Path) -> None:
    tokenizer = Vocabularies.load(imported_run).src
    assert isinstance(tokenizer, MarianTokenizer)
    with pytest.raises(DataError, match=r">>xx<< is not a target-language token.*>>de<<"):
        tokenizer.encode(">>xx<< Hello")


@pytest.mark.parametrize(
    "missing", ["config.json", "model.safetensors", "source.spm", "target.spm", "vocab.json"]
)
def test_a_missing_file_is_one_line_naming_it_and_nothing_is_written(
    missing: str, marian_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "marian"
    shutil.copytree(marian_dir, broken)
    (broken / missing).unlink()
    out = tmp_path / "runs" / "new"
    out.parent.mkdir()
    assert main(["import-hf", str(broken), "--out", str(out)]) == 2
    assert str(broken / missing) in one_line_error(capsys)
    assert list(out.parent.iterdir()) == []  # not even a temporary folder


def test_an_existing_out_is_refused(
    marian_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mine.txt").write_text("keep")
    assert main(["import-hf", str(marian_dir), "--out", str(tmp_path / "run")]) == 2
    assert "already exists" in one_line_error(capsys)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["mine.txt"]


@pytest.mark.parametrize(
    ("file", "values", "named"),
    [
        ("config.json", {"normalize_before": True}, "normalize_before"),
        ("config.json", {"activation_function": "gelu_new"}, "activation_function 'gelu_new'"),
        ("config.json", {"decoder_attention_heads": 8}, "decoder_attention_heads"),
        ("config.json", {"model_type": "bart"}, "model_type"),
        ("config.json", {"pad_token_id": 5}, "pad_token_id is 5"),
        ("generation_config.json", {"no_repeat_ngram_size": 3}, "no_repeat_ngram_size"),
        ("generation_config.json", {"bad_words_ids": [[3, 4]]}, "bad_words_ids"),
    ],
)
def test_what_aiayn_cannot_compute_is_refused_by_name(
    file: str,
    values: dict,
    named: str,
    marian_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edited = tmp_path / "marian"
    shutil.copytree(marian_dir, edited)
    config = json.loads((edited / file).read_text())
    (edited / file).write_text(json.dumps({**config, **values}))
    assert main(["import-hf", str(edited), "--out", str(tmp_path / "run")]) == 2
    err = one_line_error(capsys)
    assert named in err and file in err
    assert not (tmp_path / "run").exists()


class Payload:
    """Not a tensor: torch.load(weights_only=True) must refuse to rebuild it."""


def test_pytorch_model_bin_is_read_without_running_code(
    marian_dir: Path, imported_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "marian"
    shutil.copytree(marian_dir, folder)
    (folder / "model.safetensors").unlink()
    state = MarianMTModel.from_pretrained(marian_dir).state_dict()
    torch.save(state, folder / "pytorch_model.bin")
    assert main(["import-hf", str(folder), "--out", str(tmp_path / "run")]) == 0
    ours = Translator.from_run(tmp_path / "run").model.state_dict()
    reference = Translator.from_run(imported_run).model.state_dict()
    assert all(torch.equal(ours[k], reference[k]) for k in reference)

    torch.save({"model.shared.weight": Payload()}, folder / "pytorch_model.bin")
    capsys.readouterr()  # transformers' progress bars
    assert main(["import-hf", str(folder), "--out", str(tmp_path / "run2")]) == 2
    assert "pytorch_model.bin: refused, not plain tensors" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("name", "width"),
    [
        ("model.encoder.layers.0.self_attn_layer_norm.weight", 16),
        ("model.decoder.layers.1.encoder_attn.k_proj.weight", 8),
    ],
)
def test_a_tensor_of_another_shape_than_the_config_is_refused_by_name(
    name: str, width: int, marian_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "marian"
    shutil.copytree(marian_dir, folder)
    tensors = load_file(folder / "model.safetensors")
    tensors[name] = tensors[name][..., :width].contiguous()  # narrower than d_model
    save_file(tensors, folder / "model.safetensors")
    assert main(["import-hf", str(folder), "--out", str(tmp_path / "run")]) == 2
    err = one_line_error(capsys)
    assert "model.safetensors" in err and name in err and f"{width}]" in err
    assert not (tmp_path / "run").exists()


def test_evaluate_and_tune_need_files_for_an_imported_run(
    imported_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["evaluate"], ["tune", "--beams", "1"]):
        assert main([*command, "--run", str(imported_run), "--device", "cpu"]) == 2
        assert "give --src-file and --ref-file" in one_line_error(capsys)
    run = tmp_path / "run"
    shutil.copytree(imported_run, run)
    (tmp_path / "src.txt").write_text("A dog.\nTwo men.\n")
    (tmp_path / "ref.txt").write_text("Ein Hund.\nZwei Männer.\n")
    files = ["--src-file", str(tmp_path / "src.txt"), "--ref-file", str(tmp_path / "ref.txt")]
    assert main(["evaluate", "--run", str(run), "--device", "cpu", "--beam", "1", *files]) == 0
    assert "BLEU" in capsys.readouterr().out


def test_attention_of_an_imported_run_treats_the_start_token_as_real(imported_run: Path) -> None:
    weights, src, _ = Translator.from_run(imported_run).attention("A dog runs.")
    assert src[-1] == "</s>"  # sources end with EOS, as Marian trained them
    first = weights.decoder_self[0][0, :, 0, 0]  # the start token attends to itself
    assert torch.allclose(first, torch.ones_like(first))


def test_search_never_emits_a_suppressed_id_and_renormalises(imported_run: Path) -> None:
    from aiayn.decoding.stepper import start

    translator = Translator.from_run(imported_run)
    pad = translator.vocabs.tgt.pad_id
    src = torch.tensor([translator._encode("A man in a red shirt.")])
    plain, cache = start(translator.model, src)
    forbidding, cache2 = start(translator.model, src, suppressed_ids=[pad])
    start_token = torch.tensor([[translator.vocabs.tgt.bos_id]])
    free, _ = plain.step(start_token, cache)
    kept, _ = forbidding.step(start_token, cache2)
    assert kept[0, pad] == float("-inf") and free[0, pad] > float("-inf")
    others = torch.arange(kept.shape[1]) != pad
    assert torch.allclose(kept[0, others], free[0, others].log_softmax(-1), atol=1e-6)


WORDS = ("dog", "man", "woman", "girl", "boy", "red", "two", "street", "water", "ball", "shirt")


def synthetic_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """A task whose output follows the source and its language token: >>de<< reverses the
    words, >>fr<< copies them."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = rng.sample(WORDS, rng.randint(2, 5))
        code = rng.choice(LANGUAGE_CODES)
        target = words[::-1] if code == ">>de<<" else words
        pairs.append((f"{code} {' '.join(words)}", " ".join(target)))
    return pairs


@pytest.mark.slow
def test_a_trained_marian_model_translates_raw_text_as_transformers_does(
    spm_files: tuple[Path, Path], tmp_path: Path
) -> None:
    tokenizer = write_tokenizer(tmp_path / "tok", *spm_files)
    config = marian_config(
        len(tokenizer.encoder), d_model=64, encoder_ffn_dim=128, decoder_ffn_dim=128, dropout=0.0
    )
    torch.manual_seed(0)
    model = MarianMTModel(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    pairs = synthetic_pairs(200 * 32, seed=1)
    for step in range(200):
        batch = pairs[step * 32 : (step + 1) * 32]
        inputs = tokenizer(
            [s for s, _ in batch], text_target=[t for _, t in batch], return_tensors="pt",
            padding=True,
        )  # fmt: skip
        labels = inputs.pop("labels")
        inputs["labels"] = labels.masked_fill(labels == config.pad_token_id, -100)
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    marian = save_marian(model.eval(), tokenizer, tmp_path / "marian")

    run = tmp_path / "run"
    assert main(["import-hf", str(marian), "--out", str(run)]) == 0
    held_out = [s for s, _ in synthetic_pairs(40, seed=2)]
    (tmp_path / "src.txt").write_text("".join(s + "\n" for s in held_out))
    out = tmp_path / "out.txt"
    args = ["--run", str(run), "--beam", "1", "--input", str(tmp_path / "src.txt")]
    assert main(["translate", *args, "--output", str(out), "--device", "cpu"]) == 0
    ours = out.read_text().splitlines()

    offset = json.loads((run / "run.json").read_text())["decode"]["max_len_offset"]
    theirs_ids = [hf_greedy(model, tokenizer, s, offset) for s in held_out]
    assert all(tokenizer.unk_token_id not in ids for ids in theirs_ids)
    theirs = [tokenizer.decode(ids, skip_special_tokens=True) for ids in theirs_ids]
    assert ours == theirs
    assert len(set(ours)) > len(ours) // 2  # not constant: the outputs follow the sources


def test_an_imported_run_cannot_be_exported(
    imported_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every export promises aiayn's special ids; an imported Marian run has its own."""
    out = tmp_path / "ct2"
    assert main(["export", "--run", str(imported_run), "--format", "ct2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "imported from Marian" in err and err.count("\n") == 1
    assert not out.exists()
