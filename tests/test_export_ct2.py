"""`aiayn export --format ct2`: CTranslate2 computes what our model computes, token for token.

Proof on trained models: the reverse run (post-norm, symbols) and the Multi30k slice run
(pre-norm, shared and tied embeddings, joint BPE) give the same greedy tokens as ours on every
held-out sentence, and beam 4 without length penalty differs only where a near tie or the
engines' rules at the length limit say it may (tests/export_search.py). Tiny runs trained here
cover the other choices (GELU, learned positions, separate vocabularies, tying without sharing,
no embedding scale) through per-token log-probs. int8 runs and agrees on many sentences; the
docs' five lines run; bad input is one line.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path

import ctranslate2
import pytest
import torch
from tests.conftest import REPO, REVERSE_RUN_CONFIG
from tests.export_search import TOLERANCE, assert_beam_differs_only_by_search
from tests.export_search import output_log_probs as our_log_probs
from tests.run_helpers import copy_config

from aiayn.cli import main
from aiayn.config import RunConfig
from aiayn.data import (
    DataConfig,
    SymbolTokenizer,
    Vocabularies,
    load_corpus,
    load_multi30k,
)
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.translator import Translator
from aiayn.export import ExportError, ExportSource, load_source, write_export
from aiayn.export.ct2 import Ct2Translator, write_ct2
from aiayn.model import ModelConfig, Transformer
from aiayn.pipeline import train
from aiayn.training import TrainConfig

THREADS = 2


def export(run: Path, out: Path, *extra: str) -> Path:
    """`aiayn export --format ct2` through the command line."""
    assert main(["export", "--run", str(run), "--format", "ct2", "--out", str(out), *extra]) == 0
    return out


def ct2_log_probs(
    translator: ctranslate2.Translator, vocabs: Vocabularies, src: list[int], out: list[int]
) -> torch.Tensor:
    """CTranslate2's log-prob of each token of `out` and of the EOS after it (score_batch)."""
    pieces = [[vocabs.src.id_to_piece(i) for i in src]]
    target = [[vocabs.tgt.id_to_piece(i) for i in out]]
    return torch.tensor(translator.score_batch(pieces, target)[0].log_probs)


def float32_engine(folder: Path) -> ctranslate2.Translator:
    return ctranslate2.Translator(str(folder), compute_type="float32", intra_threads=THREADS)


def assert_same_greedy(run: Path, folder: Path, sources: list[str]) -> list[list[int]]:
    """Greedy ids of ours and of CTranslate2 (float32) agree on every sentence."""
    ours = Translator.from_run(run).translate_full(sources, beam_size=1)
    our_ids = [t.hypotheses[0].tokens for t in ours]
    theirs = Ct2Translator(folder, compute_type="float32", threads=THREADS)
    their_ids = theirs.translate_ids(sources, beam_size=1)
    differ = [i for i, (a, b) in enumerate(zip(our_ids, their_ids, strict=True)) if a != b]
    assert not differ, f"greedy outputs differ on sentences {differ[:20]} of {len(sources)}"
    return our_ids


def assert_beam_differs_only_by_search_rules(run: Path, folder: Path, sources: list[str]) -> None:
    """Beam 4, no length penalty: outputs equal or differ as tests/export_search.py explains."""
    ct2 = Ct2Translator(folder, compute_type="float32", threads=THREADS)
    theirs = ct2.translate_ids(sources, beam_size=4, length_penalty=0)
    assert_beam_differs_only_by_search(Translator.from_run(run), sources, theirs)


def reverse_sources() -> list[str]:
    return [src for src, _ in load_corpus(REVERSE_RUN_CONFIG.data).valid]


def slice_sources(multi30k: Path, n: int = 200) -> list[str]:
    return [src for src, _ in load_multi30k("val", "en", "de", data_dir=multi30k)[:n]]


@pytest.fixture(scope="module")
def reverse_ct2(reverse_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(reverse_run, tmp_path_factory.mktemp("ct2") / "reverse")


@pytest.fixture(scope="module")
def slice_ct2(multi30k_slice_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(multi30k_slice_run, tmp_path_factory.mktemp("ct2") / "slice")


# ------------------------------------------------------------------------------ trained models


@pytest.mark.slow
def test_reverse_model_greedy_and_beam_equal_ours(reverse_run: Path, reverse_ct2: Path) -> None:
    sources = reverse_sources()
    outputs = assert_same_greedy(reverse_run, reverse_ct2, sources)
    assert len({tuple(o) for o in outputs}) > len(sources) // 2  # outputs vary with the source
    assert_beam_differs_only_by_search_rules(reverse_run, reverse_ct2, sources)
    config = json.loads((reverse_ct2 / "config.json").read_text())
    assert config["decoder_start_token"] == "<s>" and not config["add_source_eos"]
    assert config["layer_norm_epsilon"] == pytest.approx(1e-5)


@pytest.mark.slow
def test_slice_model_greedy_and_beam_equal_ours(
    multi30k_slice_run: Path, slice_ct2: Path, multi30k: Path
) -> None:
    sources = slice_sources(multi30k)
    outputs = assert_same_greedy(multi30k_slice_run, slice_ct2, sources)
    assert len({tuple(o) for o in outputs}) > len(sources) // 2
    assert_beam_differs_only_by_search_rules(multi30k_slice_run, slice_ct2, sources)
    # One table for encoder, decoder and generator, one vocabulary file.
    assert (slice_ct2 / "shared_vocabulary.json").exists()
    info = json.loads((slice_ct2 / "export.json").read_text())
    assert info["quantization"] == "float32" and info["max_source_tokens"] == 1024


@pytest.mark.slow
def test_slice_model_log_probs_equal_ours(
    multi30k_slice_run: Path, slice_ct2: Path, multi30k: Path
) -> None:
    source = load_source(multi30k_slice_run)
    pairs = load_multi30k("val", "en", "de", data_dir=multi30k)[:20]
    engine = float32_engine(slice_ct2)
    for src_text, tgt_text in pairs:
        src, tgt = source.vocabs.src.encode(src_text), source.vocabs.tgt.encode(tgt_text)
        ours = our_log_probs(source.model, src, tgt)
        theirs = ct2_log_probs(engine, source.vocabs, src, tgt)
        assert theirs.shape == ours.shape
        assert float((ours - theirs).abs().max()) < TOLERANCE


@pytest.mark.slow
def test_int8_runs_and_mostly_agrees_with_float32(
    multi30k_slice_run: Path, slice_ct2: Path, multi30k: Path, tmp_path: Path
) -> None:
    folder = export(multi30k_slice_run, tmp_path / "int8", "--quantization", "int8")
    info = json.loads((folder / "export.json").read_text())
    assert info["quantization"] == "int8"
    assert (folder / "model.bin").stat().st_size < 0.5 * (slice_ct2 / "model.bin").stat().st_size
    sources = slice_sources(multi30k)
    int8 = Ct2Translator(folder, threads=THREADS).translate_ids(sources, beam_size=1)
    fp32 = Ct2Translator(slice_ct2, compute_type="float32", threads=THREADS)
    same = sum(a == b for a, b in zip(int8, fp32.translate_ids(sources, beam_size=1), strict=True))
    print(f"int8 greedy equals float32 on {same} of {len(sources)} sentences")
    # A briefly trained model's flat distributions make int8's agreement low, and CPU-dependent:
    # over half of the 200 on an AVX-512 (VNNI) EPYC, 84 on an AVX2 one; a broken quantization
    # agrees on next to none.
    assert same > 0.35 * len(sources)


# ------------------------------------------------------------------- the other config choices

VARIANTS = {
    # GELU, learned positions, separate vocabularies (add: "+" only in sources), the generator
    # tied to target embeddings that are not shared, no embedding scale, post-norm, and an
    # epsilon far enough from the 1e-5 CTranslate2 assumes when none is set to change log-probs.
    "post-norm": dict(
        activation="gelu",
        positional="learned",
        max_positions=16,
        tie_output=True,
        scale_embeddings=False,
        layer_norm_eps=0.1,
    ),
    # The same in pre-norm, scaled and untied.
    "pre-norm": dict(activation="gelu", positional="learned", max_positions=16, norm_first=True),
}


VARIANT_DATA = DataConfig(
    task="add", task_train_size=300, task_valid_size=30, task_max_len=5, joint_vocab=False
)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for 40 updates on `add` with separate vocabularies."""
    config = RunConfig(
        model={"preset": "tiny", **VARIANTS[request.param]},
        data=VARIANT_DATA,
        train=TrainConfig(
            max_steps=40, max_epochs=0, max_tokens=256, warmup=20, precision="fp32",
            progress=False, valid_bleu=0,
        ),
        decode=DecodeConfig(beam_size=1),
    )  # fmt: skip
    out = tmp_path_factory.mktemp("variant") / request.param
    train(config, out)
    return out


def test_other_config_choices_give_equal_log_probs_and_greedy_output(
    variant_run: Path, tmp_path: Path
) -> None:
    folder = export(variant_run, tmp_path / "ct2")
    source = load_source(variant_run)
    assert source.vocabs.src.vocab_size != source.vocabs.tgt.vocab_size
    assert (folder / "source_vocabulary.json").exists()
    assert (folder / "target_vocabulary.json").exists()
    config = json.loads((folder / "config.json").read_text())
    assert config["layer_norm_epsilon"] == pytest.approx(source.model.config.layer_norm_eps)
    pairs = load_corpus(VARIANT_DATA).valid
    engine = float32_engine(folder)
    for src_text, tgt_text in pairs:
        src, tgt = source.vocabs.src.encode(src_text), source.vocabs.tgt.encode(tgt_text)
        ours = our_log_probs(source.model, src, tgt)
        theirs = ct2_log_probs(engine, source.vocabs, src, tgt)
        assert float((ours - theirs).abs().max()) < TOLERANCE
    assert_same_greedy(variant_run, folder, [src for src, _ in pairs])


def test_a_source_longer_than_the_position_table(variant_run: Path, tmp_path: Path) -> None:
    """CTranslate2 refuses a position past the exported table; Ct2Translator truncates the
    source to max_positions (16 here), as our Translator does for learned positions."""
    folder = export(variant_run, tmp_path / "ct2")
    long_source = " ".join(["7"] * 12 + ["+"] + ["5"] * 8)  # 21 tokens
    raw = float32_engine(folder)
    with pytest.raises(RuntimeError, match="No position encodings are defined for positions"):
        raw.translate_batch([long_source.split()], max_input_length=0)
    ours = Translator.from_run(variant_run).translate_full([long_source], beam_size=1)
    theirs = Ct2Translator(folder, compute_type="float32").translate_ids([long_source], beam_size=1)
    assert theirs == [ours[0].hypotheses[0].tokens]
    assert len(theirs[0]) <= 15  # outputs stop within the table too


# ---------------------------------------------------------------------------------- the docs


def ct2_docs_block() -> str:
    """The python block of docs/export.md's CTranslate2 section (the "five lines")."""
    text = (REPO / "docs" / "export.md").read_text()
    section = text.split("## CTranslate2", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    five_lines = [b for b in blocks if "import ctranslate2" in b]
    assert len(five_lines) == 1, "the CTranslate2 section shows one block using ctranslate2"
    return five_lines[0]


@pytest.mark.slow
def test_the_docs_five_lines_translate_like_ct2_translator(
    slice_ct2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/export.md cannot run its block in CI (it needs an export): it runs here, as is."""
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "en-de-ct2").symlink_to(slice_ct2)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(ct2_docs_block(), "docs/export.md", "exec"), namespace)
    expected = Ct2Translator(slice_ct2).translate(
        namespace["sentences"], beam_size=5, length_penalty=0.6
    )
    assert printed.getvalue().splitlines() == expected
    assert all(expected)


# ------------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "copy"
    train(copy_config(max_steps=2), out)
    return out


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aiayn export: error: ")
    return err


def test_without_ctranslate2_the_error_names_the_extra(
    copy_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # import ctranslate2 -> ImportError
    out = tmp_path / "out"
    args = ["export", "--run", str(copy_run), "--format", "ct2", "--out", str(out)]
    assert main(args) == 2
    assert "pip install -e '.[ct2]'" in one_line_error(capsys)
    assert not out.exists()
    with pytest.raises(ExportError, match=r"\[ct2\]"):
        Ct2Translator(tmp_path)


def test_an_existing_output_folder_is_refused_without_force(
    copy_run: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["export", "--run", str(copy_run), "--format", "ct2", "--out", str(out)]
    assert main(args) == 2
    assert "--force" in one_line_error(capsys)
    assert (out / "keep.txt").read_text() == "mine"
    assert main([*args, "--force"]) == 0
    assert (out / "model.bin").exists() and not (out / "keep.txt").exists()


def test_a_choice_ctranslate2_cannot_express_is_refused_by_name(
    copy_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = load_source(copy_run)
    size = run.vocabs.src.vocab_size
    # Our masks hide every source token whose id is pad_id; CTranslate2 masks by length only.
    model = Transformer(ModelConfig.tiny(size, size, pad_id=5)).eval()
    source = ExportSource(model, run.vocabs, run.decode, run.run, run.checkpoint)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"model\.pad_id is 5"):
        write_export(out, source, "ct2", lambda folder: write_ct2(source, folder))
    assert not out.exists()
    # A ModelConfig field the converter does not know (as a new one would be) is refused too.
    from aiayn.export.ct2 import converter

    monkeypatch.delitem(converter.FIELDS, "scale_embeddings")
    with pytest.raises(ExportError, match=r"model\.scale_embeddings has no CTranslate2"):
        write_export(out, run, "ct2", lambda folder: write_ct2(run, folder))
    assert not out.exists()


class PadNamedOtherwise(SymbolTokenizer):
    """Symbols whose id 0 is called "[PAD]", as in vocabularies made by other tools."""

    def id_to_piece(self, token_id: int) -> str:
        return "[PAD]" if token_id == 0 else super().id_to_piece(token_id)


def test_a_vocabulary_ctranslate2_cannot_read_as_ours_is_refused(
    copy_run: Path, tmp_path: Path
) -> None:
    run = load_source(copy_run)
    size = run.vocabs.src.vocab_size
    model = Transformer(ModelConfig.tiny(size + 1, size)).eval()
    source = ExportSource(model, run.vocabs, run.decode, run.run, run.checkpoint)
    with pytest.raises(ExportError, match=rf"{size} ids but model\.src_vocab_size is {size + 1}"):
        write_ct2(source, tmp_path / "out")
    symbols = PadNamedOtherwise(run.vocabs.src.symbols)
    vocabs = Vocabularies(src=symbols, tgt=symbols, joint=True)
    source = ExportSource(run.model, vocabs, run.decode, run.run, run.checkpoint)
    with pytest.raises(ExportError, match=r"'\[PAD\]' at id 0; CTranslate2 needs '<pad>'"):
        write_ct2(source, tmp_path / "out")


def test_a_folder_that_is_not_a_ct2_export_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"export\.json"):
        Ct2Translator(tmp_path)
