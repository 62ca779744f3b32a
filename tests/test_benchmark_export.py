"""`python -m benchmarks.export` on a trained run: every float32 engine translates as ours does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.cases import QUICK_EXPORT_SENTENCES as QUICK_SENTENCES
from benchmarks.export import main

from aiayn.config import RunConfig
from aiayn.decoding.translator import Translator
from aiayn.evaluation.scoring_data import evaluation_data


@pytest.mark.slow  # trains the slice model (session fixture), then one process per engine
def test_the_export_benchmark_runs_beam_search_on_every_engine(
    multi30k_slice_run: Path, multi30k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    argv = ["--run", str(multi30k_slice_run), "--data-dir", str(multi30k), "--max-sentences"]
    argv += ["20", "--rounds", "1", "--threads", "1", "--json", str(out), "--beam", "3"]
    assert main([*argv, "--engines", "onnx", "ours-k-finished", "ct2", "--workers", "1", "2"]) == 0
    info = json.loads(out.read_text())
    rows = {r["engine"]: r for r in info["rows"]}
    assert info["beam"] == 3 and "beam 3" in capsys.readouterr().out
    data = evaluation_data(
        RunConfig.load(multi30k_slice_run / "config.yaml").data, data_dir=str(multi30k)
    ).head(20)
    translator = Translator.from_run(multi30k_slice_run)
    beam3 = translator.translate(data.sources, beam_size=3)
    assert rows["ours"]["bleu_tok_lc"] == data.score(beam3).report.bleu_tok_lc
    k_finished = translator.translate(data.sources, beam_size=3, stopping="k-finished")
    assert rows["ours-k-finished"]["bleu_tok_lc"] == data.score(k_finished).report.bleu_tok_lc
    same = sum(a == b for a, b in zip(k_finished, beam3, strict=True))
    assert rows["ours-k-finished"]["same_as_ours"] == same
    assert rows["onnx"]["same_as_ours"] == 20  # our beam search over ONNX Runtime's steps
    # --workers 2: a second row for each engine that takes it, the same translations.
    assert rows["ours/w2"]["same_as_ours"] == 20
    assert rows["ours-k-finished/w2"]["same_as_ours"] == same
    assert rows["ct2/w2"]["same_as_ours"] == rows["ct2"]["same_as_ours"]
    assert rows["ct2/w2"]["bleu_tok_lc"] == rows["ct2"]["bleu_tok_lc"]
    assert info["skipped"] == {"onnx/w2": "no workers option"} and info["workers"] == [1, 2]


@pytest.mark.slow  # trains the slice model (session fixture), then one process per engine
def test_the_suite_runs_the_export_case_on_request(
    multi30k_slice_run: Path, multi30k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import run

    assert "export" not in run.selected(None, quick=False)  # needs a run: only when named
    with pytest.raises(SystemExit, match="needs --run"):
        run.main(["--only", "export", "--quick"])
    out = tmp_path / "suite.json"
    argv = ["--only", "export", "--quick", "--run", str(multi30k_slice_run)]
    result = run.main([*argv, "--data-dir", str(multi30k), "--json", str(out)])
    (case,) = result["cases"]
    rows = {r["candidate"]: r for r in case["rows"]}
    assert set(rows) | set(case["skipped"]) == {
        "ours",
        "ours-int8",
        "ct2",
        "ct2-int8",
        "hf",
        "onnx",
        "onnx-int8",
    }
    assert not case["skipped"]  # [dev] installs every engine
    for name in ("ct2", "hf", "onnx"):  # float32: the same translations as ours
        assert rows[name]["same_as_ours"] == rows[name]["sentences"] == QUICK_SENTENCES, name
        assert rows[name]["bleu_tok_lc"] == rows["ours"]["bleu_tok_lc"], name
    assert all(r["ratio_vs_baseline"] > 0 and len(r["seconds"]) == 1 for r in rows.values())
    printed = capsys.readouterr().out
    assert "as ours" in printed and "onnx-int8" in printed
    assert json.loads(out.read_text())["cases"][0]["name"] == "export"
