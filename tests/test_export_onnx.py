"""ONNX export: our encoder and cached decoder step as two graphs, run by ONNX Runtime.

Proof, per model (post-norm `reverse_run`; the Multi30k recipe's pre-norm, shared and tied
`multi30k_slice_run`; a learned-positions, GELU, separate-vocabulary model trained here):
- the graphs' encoder states and log-probabilities over a few cached steps equal ours on a
  padded batch (max abs difference < 1e-4, float32, at real positions), and so do the
  self-attention keys/values they hand to the next step;
- `OnnxTranslator`'s greedy output equals our `Translator`'s token for token on held-out data;
- int8 (ONNX Runtime dynamic quantization) runs and mostly agrees with float32.
And the command's bad input: the `onnx` extra missing, an existing --out without --force.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from aiayn.cli import main
from aiayn.config import RunConfig
from aiayn.data import DataConfig
from aiayn.data.corpus import load_corpus
from aiayn.data.multi30k import load_multi30k
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.stepper import ModelStepper
from aiayn.decoding.translator import Translator
from aiayn.export import ExportError, load_source, onnx_runtime, write_export
from aiayn.export.onnx_format import write_onnx
from aiayn.export.onnx_runtime import OnnxCache, OnnxTranslator
from aiayn.model import Transformer
from aiayn.pipeline import train
from aiayn.training import TrainConfig

TOLERANCE = 1e-4


def export_onnx(run: Path, out: Path, quantization: str | None = None) -> Path:
    """`aiayn export --run run --format onnx --out out`, through the library."""
    source = load_source(run)
    return write_export(
        out, source, "onnx", lambda folder: write_onnx(source, folder, quantization=quantization)
    )


@pytest.fixture(scope="module")
def reverse_onnx(reverse_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(reverse_run, tmp_path_factory.mktemp("onnx") / "reverse")


@pytest.fixture(scope="module")
def slice_onnx(multi30k_slice_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(multi30k_slice_run, tmp_path_factory.mktemp("onnx") / "slice")


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Learned positions (a short table), GELU, separate vocabularies, a tied generator: a tiny
    model trained for a few dozen updates on additions."""
    config = RunConfig(
        model={
            "preset": "tiny", "positional": "learned", "max_positions": 16, "activation": "gelu",
            "tie_output": True,
        },
        data=DataConfig(
            task="add", task_train_size=2000, task_valid_size=100, task_max_len=3,
            joint_vocab=False,
        ),
        train=TrainConfig(
            max_steps=60, max_epochs=0, max_tokens=1024, warmup=20, lr_factor=1.0,
            precision="fp32", progress=False,
        ),
        decode=DecodeConfig(beam_size=1),
    )  # fmt: skip
    out = tmp_path_factory.mktemp("variant") / "run"
    train(config, out)
    return out


def held_out_sources(run: Path) -> list[str]:
    """The source sentences of a run's validation data."""
    return [src for src, _ in load_corpus(RunConfig.load(run / "config.yaml").data).valid]


def padded(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded (B, S) batch of ids and its mask, True = real token."""
    src = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
    for row, sentence in enumerate(ids):
        src[row, : len(sentence)] = torch.tensor(sentence)
    return src, src != 0


@torch.no_grad()
def max_differences(run: Path, folder: Path, sources: list[str], steps: int = 4) -> list[float]:
    """Ours vs ONNX Runtime on one padded batch: max abs differences of the encoder states (real
    positions), then per cached step of the log-probabilities and of the keys/values passed on.

    Both sides are fed the same tokens: BOS, then our greedy choices.
    """
    model: Transformer = Translator.from_run(run).model  # the run's own kernel and settings
    onnx_translator = OnnxTranslator(folder, threads=1)
    src, src_mask = padded([onnx_translator.vocabs.src.encode(s) for s in sources])
    assert not bool(src_mask.all()), "the batch must be padded"

    memory = model.encode(src, src_mask)
    cache = model.init_cache(memory)
    states = onnx_translator.encoder.run(
        ["memory"], {"src": src.numpy(), "src_mask": src_mask.numpy()}
    )
    their_cache: OnnxCache = onnx_translator.start(src.numpy(), src_mask.numpy())
    real = src_mask.numpy()
    differences = [float(np.abs(states[0] - memory.states.numpy())[real].max())]

    stepper = ModelStepper(model)
    tokens = torch.full((len(sources), 1), 2, dtype=torch.long)  # BOS
    for _ in range(steps):
        ours, cache = stepper.step(tokens, cache)
        theirs, their_cache = onnx_translator.stepper.step(tokens, their_cache)
        kv_ours = [t[:, :, : cache.length] for lc in cache.layers for t in (lc.self_k, lc.self_v)]
        kv_difference = max(
            float(np.abs(a - b.numpy()).max())
            for a, b in zip(their_cache.past, kv_ours, strict=True)
        )
        differences.append(max(float((theirs - ours).abs().max()), kv_difference))
        tokens = ours.argmax(dim=-1, keepdim=True)
    return differences


def token_outputs(translations: list) -> list[list[int]]:
    return [t.hypotheses[0].tokens for t in translations]


# ------------------------------------------------------------------------------ float32: logits


@pytest.mark.slow  # trains and exports models
def test_post_norm_logits_match_ours(reverse_run: Path, reverse_onnx: Path) -> None:
    sources = ["1 2 3 4 5 6", "7 8 9 0", "3 1 4 1 5", "9"]
    differences = max_differences(reverse_run, reverse_onnx, sources)
    assert max(differences) < TOLERANCE, differences


@pytest.mark.slow
def test_pre_norm_shared_tied_logits_match_ours(multi30k_slice_run: Path, slice_onnx: Path) -> None:
    sources = [
        "A man in a blue shirt is standing on a ladder cleaning windows.",
        "Two dogs play.",
        "A little girl climbs into a wooden playhouse.",
    ]
    differences = max_differences(multi30k_slice_run, slice_onnx, sources, steps=6)
    assert max(differences) < TOLERANCE, differences


@pytest.mark.slow
def test_learned_positions_gelu_separate_vocabularies(variant_run: Path, tmp_path: Path) -> None:
    folder = export_onnx(variant_run, tmp_path / "variant")
    sources = ["1 2 3 + 4 5", "7 + 8", "9 9 + 1 0 0"]
    differences = max_differences(variant_run, folder, sources)
    assert max(differences) < TOLERANCE, differences
    # Outputs run into the 16-position table here, which both translators stop at.
    held_out = held_out_sources(variant_run)
    ours = Translator.from_run(variant_run).translate_full(held_out, beam_size=1)
    theirs = OnnxTranslator(folder, threads=1).translate_full(held_out, beam_size=1)
    assert token_outputs(theirs) == token_outputs(ours)


# ------------------------------------------------------------------------------ float32: tokens


@pytest.mark.slow
def test_greedy_equals_ours_on_every_held_out_reverse_sequence(
    reverse_run: Path, reverse_onnx: Path
) -> None:
    sources = held_out_sources(reverse_run)
    ours = Translator.from_run(reverse_run).translate_full(sources, beam_size=1)
    theirs = OnnxTranslator(reverse_onnx, threads=1).translate_full(sources, beam_size=1)
    assert len(sources) == 200
    assert token_outputs(theirs) == token_outputs(ours)
    assert [t.text for t in theirs] == [" ".join(reversed(s.split())) for s in sources]


@pytest.mark.slow
def test_greedy_equals_ours_on_multi30k_val(
    multi30k_slice_run: Path, slice_onnx: Path, multi30k: Path
) -> None:
    sources = [src for src, _ in load_multi30k("val", "en", "de", multi30k, download=False)][:200]
    ours = token_outputs(
        Translator.from_run(multi30k_slice_run).translate_full(sources, beam_size=1)
    )
    theirs = token_outputs(
        OnnxTranslator(slice_onnx, threads=1).translate_full(sources, beam_size=1)
    )
    assert theirs == ours
    assert len({tuple(t) for t in ours}) > 100  # outputs that vary, so equality means something


@pytest.mark.slow
def test_beam_search_over_the_graphs_equals_ours(
    reverse_run: Path, reverse_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = held_out_sources(reverse_run)[:50]
    ours = Translator.from_run(reverse_run).translate_full(sources, beam_size=4, alpha=0.6)
    engine = OnnxTranslator(reverse_onnx, threads=1)
    theirs = engine.translate_full(sources, beam_size=4, alpha=0.6)
    assert token_outputs(theirs) == token_outputs(ours)
    # The stopping rule reaches the search: the run's ("exact") unless one is given.
    search_k = {"beam_size": 4, "alpha": 0.6, "stopping": "k-finished"}
    ours_k = Translator.from_run(reverse_run).translate_full(sources, **search_k)
    assert token_outputs(engine.translate_full(sources, **search_k)) == token_outputs(ours_k)
    seen: list[str] = []
    search = onnx_runtime.beam_search

    def recording(*args, **kwargs):
        seen.append(kwargs["stopping"])
        return search(*args, **kwargs)

    monkeypatch.setattr(onnx_runtime, "beam_search", recording)
    engine.translate(sources[:3], beam_size=2)
    engine.translate(sources[:3], beam_size=2, stopping="k-finished")
    assert seen == ["exact", "k-finished"]


# ------------------------------------------------------------------------------ int8


@pytest.mark.slow
def test_int8_runs_and_mostly_agrees_with_float32(
    multi30k_slice_run: Path, slice_onnx: Path, multi30k: Path, tmp_path: Path
) -> None:
    int8 = export_onnx(multi30k_slice_run, tmp_path / "int8", quantization="int8")
    ops = {node.op_type for node in onnx.load(str(int8 / "decoder_step.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in ops, sorted(ops)
    assert json.loads((int8 / "export.json").read_text())["quantization"] == "int8"
    sources = [src for src, _ in load_multi30k("val", "en", "de", multi30k, download=False)][:200]
    float32 = OnnxTranslator(slice_onnx, threads=1).translate(sources, beam_size=1)
    quantized = OnnxTranslator(int8, threads=1).translate(sources, beam_size=1)
    agree = sum(a == b for a, b in zip(float32, quantized, strict=True)) / len(sources)
    print(f"int8 equals float32 on {agree:.0%} of 200 Multi30k val sentences")
    assert agree >= 0.6


# ------------------------------------------------------------------------------ bad input


@pytest.mark.slow  # reads the trained reverse_run
@pytest.mark.parametrize("module", ["onnx", "onnxscript", "onnxruntime"])
def test_missing_extra_is_one_line_naming_it(
    reverse_run: Path,
    tmp_path: Path,
    module: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    out = tmp_path / "export"
    args = ["export", "--run", str(reverse_run), "--format", "onnx", "--out", str(out)]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"aiayn export: error: {module} is not installed")
    assert "pip install -e '.[onnx]'" in error
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing half-written


def test_onnx_translator_without_onnxruntime_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ExportError, match=r"onnxruntime is not installed.*\[onnx\]"):
        OnnxTranslator(tmp_path)


def test_onnx_translator_refuses_another_format(tmp_path: Path) -> None:
    (tmp_path / "export.json").write_text(json.dumps({"format": "ct2"}))
    with pytest.raises(ExportError, match=r"export.json: not an ONNX export \(format 'ct2'\)"):
        OnnxTranslator(tmp_path)


def test_onnx_translator_names_a_missing_graph(tmp_path: Path) -> None:
    config = {"n_decoder_layers": 2, "max_positions": 64}
    (tmp_path / "export.json").write_text(json.dumps({"format": "onnx", "model_config": config}))
    with pytest.raises(ExportError, match=r"encoder.onnx: missing"):
        OnnxTranslator(tmp_path)


@pytest.mark.slow
def test_existing_out_is_refused_without_force(
    reverse_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["export", "--run", str(reverse_run), "--format", "onnx", "--out", str(out)]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert (
        error
        == f"aiayn export: error: {out} already exists as a folder (pass --force to replace it)\n"
    )
    assert (out / "keep.txt").read_text() == "mine"

    assert main([*args, "--force"]) == 0
    assert capsys.readouterr().out.startswith(f"exported {reverse_run}")
    assert sorted(p.name for p in out.iterdir()) == [
        "decoder_step.onnx", "encoder.onnx", "export.json", "tokenizer"
    ]  # fmt: skip
    assert OnnxTranslator(out).translate(["1 2 3 4"]) == ["4 3 2 1"]
