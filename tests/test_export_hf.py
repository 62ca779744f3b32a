"""`aiayn export --format hf`: transformers computes what our model computes, and says so.

Proof at three levels: the weight mapping (exact inverse; our sinusoids permuted are theirs),
logits of exported random models of every embedding layout, post-norm (MarianMTModel) and
pre-norm (PegasusForConditionalGeneration), on padded batches (< 1e-4, float32), and the
search: on trained models, `generate` gives our greedy output token for token and our beam-4
output (alpha 0) but where a near tie or the rules at the length limit part them. The tokenizer
files give our ids (called with `add_special_tokens=False`) and our detokenised text. Bad input:
a missing extra, a choice transformers cannot express, an existing --out: one line, nothing
written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import transformers
from tests.export_search import assert_beam_differs_only_by_search
from tests.run_helpers import copy_config

from aiayn.cli import main
from aiayn.config import RunConfig
from aiayn.data import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SentencePieceTokenizer,
    SymbolTokenizer,
    Vocabularies,
    load_corpus,
    load_multi30k,
)
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.translator import Translator
from aiayn.export import ExportError, ExportSource, load_source, write_export
from aiayn.export.hf import write_hf
from aiayn.export.hf_mapping import (
    from_hf_state_dict,
    inverse_permutation,
    residual_permutation,
    to_hf_state_dict,
)
from aiayn.export.hf_translate import HFTranslator
from aiayn.export.marian_import import import_marian
from aiayn.model import ModelConfig, Transformer
from aiayn.model.embeddings import sinusoids
from aiayn.pipeline import train

TOLERANCE = 1e-4
# (norm_first, share_embeddings, tie_output, activation): every embedding layout, both norms.
LAYOUTS = [
    (False, True, True, "relu"),
    (False, False, False, "gelu"),
    (False, False, True, "relu"),
    (False, True, False, "relu"),
    (True, True, True, "relu"),
    (True, False, False, "gelu"),
    (True, False, True, "relu"),
]


# ------------------------------------------------------------------------------------- helpers


def perturbed(config: ModelConfig) -> Transformer:
    """A random model whose every weight matters: noise on norms and (zero-initialised) biases."""
    model = Transformer(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def source_of(model: Transformer, vocabs: Vocabularies, tmp_path: Path) -> ExportSource:
    return ExportSource(model, vocabs, DecodeConfig(beam_size=1), tmp_path, tmp_path)


def export(source: ExportSource, out: Path) -> Path:
    return write_export(out, source, "hf", lambda folder: write_hf(source, folder))


def load(folder: Path) -> tuple[object, object]:
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model.eval(), tokenizer


def padded(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(map(len, rows))), PAD_ID)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out


def max_logit_difference(
    ours: Transformer, folder: Path, pairs: list[tuple[str, str]], vocabs: Vocabularies
) -> float:
    """Teacher-forced logits of both models on one padded batch, at real target positions.

    The sources go through the exported tokenizer, which must give our ids.
    """
    theirs, tokenizer = load(folder)
    sources = [s for s, _ in pairs]
    batch = tokenizer(sources, add_special_tokens=False, padding=True, return_tensors="pt")
    assert batch.input_ids.tolist() == padded([vocabs.src.encode(s) for s in sources]).tolist()
    assert len({len(vocabs.src.encode(s)) for s in sources}) > 1  # really padded
    tgt_in = padded([[BOS_ID, *vocabs.tgt.encode(t)] for _, t in pairs])
    with torch.no_grad():
        logits = ours(batch.input_ids, tgt_in)
        hf = theirs(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            decoder_input_ids=tgt_in,
        ).logits
    real = tgt_in != PAD_ID
    return float((logits - hf)[real].abs().max())


def check_search(run: Path, folder: Path, sources: list[str]) -> None:
    """Greedy: equal ids and text on every sentence. Beam 4, alpha 0: equal, or different only
    where a near tie or the engines' rules at the length limit say so (tests/export_search.py)."""
    ours = Translator.from_run(run)
    hf = HFTranslator.load(folder)
    encoded = [ours.vocabs.src.encode(s) for s in sources]
    assert [hf.encode(s) for s in sources] == encoded

    greedy = ours.translate_full(sources, beam_size=1)
    hf_ids = hf.generate_ids(encoded)
    assert [t.hypotheses[0].tokens for t in greedy] == hf_ids
    assert [t.text for t in greedy] == hf.translate(sources)
    assert len({t.text for t in greedy}) > len(sources) // 2  # outputs follow the sources

    assert_beam_differs_only_by_search(
        ours, sources, hf.generate_ids(encoded, beam_size=4, alpha=0.0)
    )


@pytest.fixture(scope="module")
def spm_vocabs(multi30k: Path) -> dict[bool, Vocabularies]:
    """Joint (True) and separate (False) sentencepiece vocabularies of Multi30k val, small."""
    pairs = load_multi30k("val", "en", "de", data_dir=multi30k)[:600]
    en, de = [s for s, _ in pairs], [t for _, t in pairs]
    joint = SentencePieceTokenizer.train(en + de, 500)
    separate = Vocabularies(
        SentencePieceTokenizer.train(en, 420), SentencePieceTokenizer.train(de, 460), joint=False
    )
    return {True: Vocabularies(joint, joint, joint=True), False: separate}


@pytest.fixture(scope="module")
def val_pairs(multi30k: Path) -> list[tuple[str, str]]:
    return load_multi30k("val", "en", "de", data_dir=multi30k)


# ------------------------------------------------------------------------------------- mapping


@pytest.mark.parametrize("d_model", [64, 63, 8])
def test_the_permutation_maps_our_sinusoids_onto_transformers(d_model: int) -> None:
    marian = transformers.models.marian.modeling_marian.MarianSinusoidalPositionalEmbedding
    theirs = marian(50, d_model).create_weight()
    perm = residual_permutation(d_model)
    assert sorted(perm.tolist()) == list(range(d_model))
    torch.testing.assert_close(sinusoids(50, d_model)[:, perm], theirs, atol=1e-6, rtol=0)
    assert not torch.allclose(sinusoids(50, d_model)[1:], theirs[1:])  # the layouts do differ
    x = torch.randn(d_model)
    assert torch.equal(x[perm][inverse_permutation(perm)], x)


@pytest.mark.parametrize(("norm_first", "share", "tie", "activation"), LAYOUTS)
def test_the_weight_mapping_is_an_exact_inverse(
    norm_first: bool, share: bool, tie: bool, activation: str
) -> None:
    sizes = (40, 40) if share or norm_first else (40, 50)
    config = ModelConfig.tiny(*sizes, norm_first=norm_first, share_embeddings=share, tie_output=tie)
    state = perturbed(config).state_dict()
    back = from_hf_state_dict(to_hf_state_dict(state, config), config)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[name], state[name]) for name in state)
    Transformer(config).load_state_dict(back, strict=True)


# -------------------------------------------------------------------- logits of random models


@pytest.mark.parametrize(("norm_first", "share", "tie", "activation"), LAYOUTS)
def test_logits_equal_on_a_padded_batch(
    norm_first: bool,
    share: bool,
    tie: bool,
    activation: str,
    spm_vocabs: dict[bool, Vocabularies],
    val_pairs: list[tuple[str, str]],
    tmp_path: Path,
) -> None:
    vocabs = spm_vocabs[share or norm_first]
    config = ModelConfig.tiny(
        vocabs.src.vocab_size,
        vocabs.tgt.vocab_size,
        norm_first=norm_first,
        share_embeddings=share,
        tie_output=tie,
        activation=activation,
    )
    model = perturbed(config)
    folder = export(source_of(model, vocabs, tmp_path), tmp_path / "hf")

    info = json.loads((folder / "export.json").read_text())
    expected = "PegasusForConditionalGeneration" if norm_first else "MarianMTModel"
    assert info["hf_class"] == expected
    assert json.loads((folder / "config.json").read_text())["architectures"] == [expected]
    assert max_logit_difference(model, folder, val_pairs[700:716], vocabs) < TOLERANCE


def test_generation_config_is_greedy_with_our_ids(
    spm_vocabs: dict[bool, Vocabularies], tmp_path: Path
) -> None:
    vocabs = spm_vocabs[True]
    config = ModelConfig.tiny(vocabs.src.vocab_size, vocabs.tgt.vocab_size, max_positions=300)
    folder = export(source_of(perturbed(config), vocabs, tmp_path), tmp_path / "hf")
    generation = transformers.GenerationConfig.from_pretrained(folder, local_files_only=True)
    assert (generation.num_beams, generation.do_sample) == (1, False)
    assert generation.decoder_start_token_id == BOS_ID == 2
    assert (generation.eos_token_id, generation.pad_token_id) == (EOS_ID, PAD_ID) == (3, 0)
    assert generation.forced_eos_token_id == EOS_ID
    assert generation.max_length == 300  # the positional table's rows
    assert json.loads((folder / "export.json").read_text())["max_len_offset"] == 50


# ------------------------------------------------------------------------------- tokenizer


def test_the_tokenizer_gives_our_ids_without_eos_and_our_text(
    spm_vocabs: dict[bool, Vocabularies], val_pairs: list[tuple[str, str]], tmp_path: Path
) -> None:
    for joint, vocabs in spm_vocabs.items():
        config = ModelConfig.tiny(
            vocabs.src.vocab_size, vocabs.tgt.vocab_size, share_embeddings=joint
        )
        folder = export(source_of(perturbed(config), vocabs, tmp_path), tmp_path / f"hf{joint}")
        _, tokenizer = load(folder)
        assert type(tokenizer).__name__ == "MarianTokenizer"
        for src, tgt in val_pairs:
            ids = vocabs.src.encode(src)
            assert tokenizer(src, add_special_tokens=False).input_ids == ids, src
            target = vocabs.tgt.encode(tgt)
            decoded = tokenizer.decode([BOS_ID, *target, EOS_ID], skip_special_tokens=True)
            assert decoded == vocabs.tgt.decode(target), tgt
        # The trap the documentation warns about: by default it appends </s>.
        src = val_pairs[0][0]
        assert tokenizer(src).input_ids == [*vocabs.src.encode(src), EOS_ID]


# ---------------------------------------------------------------------------- trained models


@pytest.fixture(scope="module")
def slice_export(multi30k_slice_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "slice"
    args = ["export", "--run", str(multi30k_slice_run), "--format", "hf", "--out", str(out)]
    assert main(args) == 0
    return out


@pytest.mark.slow  # multi30k_slice_run trains the recipe's model
def test_the_recipe_model_is_pegasus_with_equal_logits(
    multi30k_slice_run: Path, slice_export: Path, val_pairs: list[tuple[str, str]]
) -> None:
    source = load_source(multi30k_slice_run)
    assert source.model.config.norm_first and source.model.config.share_embeddings
    info = json.loads((slice_export / "export.json").read_text())
    assert info["hf_class"] == "PegasusForConditionalGeneration"
    assert info["hf_tokenizer"] == "MarianTokenizer"
    difference = max_logit_difference(source.model, slice_export, val_pairs[:32], source.vocabs)
    assert difference < TOLERANCE


@pytest.mark.slow  # multi30k_slice_run trains the recipe's model
def test_the_recipe_model_searches_as_ours(
    multi30k_slice_run: Path, slice_export: Path, val_pairs: list[tuple[str, str]]
) -> None:
    check_search(multi30k_slice_run, slice_export, [s for s, _ in val_pairs[:200]])


@pytest.mark.slow  # reverse_run trains a model
def test_the_reverse_model_is_marian_and_searches_as_ours(
    reverse_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "hf"
    assert main(["export", "--run", str(reverse_run), "--format", "hf", "--out", str(out)]) == 0
    info = json.loads((out / "export.json").read_text())
    assert info["hf_class"] == "MarianMTModel"
    assert info["hf_tokenizer"] == "PreTrainedTokenizerFast"
    held_out = load_corpus(RunConfig.load(reverse_run / "config.yaml").data).valid
    assert len(held_out) == 200
    check_search(reverse_run, out, [s for s, _ in held_out])
    _, tokenizer = load(out)
    assert tokenizer("1 2 3").input_ids == Vocabularies.load(reverse_run).src.encode("1 2 3")


# ------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "copy"
    train(copy_config(max_steps=2), out)
    return out


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_an_existing_out_is_refused_without_force(
    copy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hf"
    args = ["export", "--run", str(copy_run), "--format", "hf", "--out", str(out)]
    assert main(args) == 0
    load(out)
    before = (out / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 2
    line = error_line(capsys)
    assert "already exists" in line and "--force" in line, line
    assert (out / "model.safetensors").stat().st_mtime_ns == before
    assert main([*args, "--force"]) == 0


def test_without_transformers_one_line_names_the_extra(
    copy_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now fails
    out = tmp_path / "hf"
    assert main(["export", "--run", str(copy_run), "--format", "hf", "--out", str(out)]) == 2
    line = error_line(capsys)
    assert "transformers is not installed" in line and ".[hf]" in line, line
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_int8_is_refused(
    copy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hf"
    args = ["export", "--run", str(copy_run), "--format", "hf", "--out", str(out)]
    assert main([*args, "--quantization", "int8"]) == 2
    assert "--quantization int8" in error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"positional": "learned"}, "model.positional 'learned'"),
        ({"layer_norm_eps": 1e-6}, "model.layer_norm_eps 1e-06"),
        ({"norm_first": True, "tgt_vocab_size": 30}, "model.src_vocab_size 20 != model.tgt"),
    ],
)
def test_a_choice_transformers_cannot_express_is_refused_by_name(
    overrides: dict, named: str, tmp_path: Path
) -> None:
    symbols = SymbolTokenizer([str(i) for i in range(16)])
    vocabs = Vocabularies(symbols, symbols, joint=True)
    config = ModelConfig.tiny(20, 20).replace(**overrides)
    source = source_of(perturbed(config), vocabs, tmp_path)
    with pytest.raises(ExportError, match=named.replace("(", r"\(")) as caught:
        export(source, tmp_path / "hf")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "hf").exists()


def test_separate_symbol_vocabularies_are_refused_by_name(tmp_path: Path) -> None:
    vocabs = Vocabularies(
        SymbolTokenizer(["a", "b"]), SymbolTokenizer(["x", "y", "z"]), joint=False
    )
    source = source_of(perturbed(ModelConfig.tiny(6, 7)), vocabs, tmp_path)
    with pytest.raises(ExportError, match="separate symbol vocabularies"):
        export(source, tmp_path / "hf")


def test_the_cli_refuses_learned_positions_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "learned"
    train(copy_config(max_steps=2).replace("model", positional="learned"), run)
    out = tmp_path / "hf"
    assert main(["export", "--run", str(run), "--format", "hf", "--out", str(out)]) == 2
    line = error_line(capsys)
    assert "model.positional 'learned'" in line and "MarianMTModel" in line, line
    assert not out.exists()


# ---------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("joint", [True, False])
def test_export_then_import_gives_back_the_same_model(
    joint: bool, spm_vocabs: dict[bool, Vocabularies], val_pairs: list, tmp_path: Path
) -> None:
    """aiayn export --format hf, then aiayn import-hf: the same logits, ids and translations."""
    vocabs = spm_vocabs[joint]
    config = ModelConfig.tiny(
        vocabs.src.vocab_size, vocabs.tgt.vocab_size, share_embeddings=joint, tie_output=joint
    )
    model = perturbed(config)
    folder = export(source_of(model, vocabs, tmp_path), tmp_path / "hf")
    import_marian(folder, tmp_path / "run")
    back = Translator.from_run(tmp_path / "run")
    sources = [s for s, _ in val_pairs[:40]]
    assert not back.vocabs.source_eos  # export.json says our sources carry no EOS
    assert all(back.vocabs.src.encode(s) == vocabs.src.encode(s) for s in sources)
    src = padded([vocabs.src.encode(s) for s in sources])
    tgt_in = padded([[BOS_ID, *vocabs.tgt.encode(t)] for _, t in val_pairs[:40]])
    with torch.no_grad():
        difference = (model(src, tgt_in) - back.model(src, tgt_in))[tgt_in != PAD_ID]
    assert float(difference.abs().max()) < 1e-4
    ours = Translator(model, vocabs, DecodeConfig(beam_size=1))
    assert back.translate(sources, beam_size=1) == ours.translate(sources)
