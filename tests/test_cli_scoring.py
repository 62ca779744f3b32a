"""`aiayn evaluate` and `aiayn tune` score a run on what it was trained for, and tune stores only
what it chose.

Tiny runs trained for a few updates (a reverse task, aligned files, a Multi30k en-cs slice):
the scores are meaningless, the choice of data, references and stored settings is not.
"""

import json
import random
import shutil
from pathlib import Path

import pytest

import aiayn.data.multi30k
from aiayn.cli import main
from aiayn.cli.tune import choose_best
from aiayn.config import RunConfig
from aiayn.data import DataConfig, load_corpus
from aiayn.errors import UsageError
from aiayn.evaluation.scoring_data import evaluation_data, tuning_data, validation_data
from aiayn.pipeline import train

FAST = {"progress": False, "precision": "fp32"}


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reverse task, 3 updates, a checkpoint after each; 12 of 20 validation pairs used."""
    out = tmp_path_factory.mktemp("runs") / "reverse"
    config = RunConfig().replace(
        "data", task="reverse", task_train_size=300, task_valid_size=20, max_valid_pairs=12
    )
    config = config.replace("train", max_steps=3, save_every=1, keep_last=5, **FAST)
    train(config.replace("decode", beam_size=4, alpha=0.8), out)
    return out


@pytest.fixture(scope="module")
def files_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Aligned word files with separate validation files, 2 updates."""
    folder = tmp_path_factory.mktemp("files")
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    rng = random.Random(0)
    for name, n in (("train", 200), ("valid", 7)):
        src = [" ".join(rng.choices(words, k=rng.randint(2, 6))) for _ in range(n)]
        (folder / f"{name}.src").write_text("".join(s + "\n" for s in src))
        (folder / f"{name}.tgt").write_text("".join(" ".join(s.split()[::-1]) + "\n" for s in src))
    config = RunConfig().replace(
        "data",
        corpus="files",
        src_file=str(folder / "train.src"),
        tgt_file=str(folder / "train.tgt"),
        valid_src_file=str(folder / "valid.src"),
        valid_tgt_file=str(folder / "valid.tgt"),
        vocab_size=300,
    )
    out = folder / "run"
    train(config.replace("train", max_steps=2, **FAST), out)
    return out


@pytest.fixture(scope="module")
def en_cs_run(multi30k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Multi30k en-cs on a 300-pair slice, 2 updates: cs is not in the 2017 test sets."""
    config = RunConfig().replace(
        "data",
        corpus="multi30k",
        src_lang="en",
        tgt_lang="cs",
        data_dir=str(multi30k),
        max_train_pairs=300,
        max_valid_pairs=10,
        vocab_size=500,
    )
    out = tmp_path_factory.mktemp("runs") / "en-cs"
    train(config.replace("train", max_steps=2, **FAST), out)
    return out


@pytest.fixture
def no_multi30k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Multi30k is nowhere: an empty data folder, and any download is a test failure."""
    empty = tmp_path / "no-multi30k"
    empty.mkdir()
    monkeypatch.setenv("AIAYN_DATA_DIR", str(empty))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"Multi30k was downloaded: {args}")

    monkeypatch.setattr(aiayn.data.multi30k, "download_file", refuse)


def copy_of(run: Path, tmp_path: Path) -> Path:
    """A private copy of a module-scoped run, for a test that changes its run.json."""
    return Path(shutil.copytree(run, tmp_path / run.name))


def info(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


# evaluate


def test_evaluate_scores_a_task_run_on_its_validation_data(
    reverse_run: Path, no_multi30k: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--run", str(reverse_run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no test set given: scoring on the run's validation data (the reverse")
    assert "sentences: 12" in out  # data.max_valid_pairs, not the 20 generated
    hyps = (reverse_run / "translations" / "valid.task-reverse.hyp").read_text().splitlines()
    config = RunConfig.load(reverse_run / "config.yaml").data
    refs = [t for _, t in load_corpus(config).valid]
    assert len(hyps) == len(refs) == 12
    exact = 100 * sum(h == r for h, r in zip(hyps, refs, strict=True)) / 12
    assert f"exact match: {exact:.2f}%" in out


def test_evaluate_scores_a_files_run_on_its_validation_files(
    files_run: Path, no_multi30k: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--run", str(files_run), "--beam", "1"]) == 0
    out = capsys.readouterr().out
    assert "scoring on the run's validation data (" in out and "valid.src" in out, out
    assert "sentences: 7" in out
    assert "exact match" not in out  # real text: exact match is not reported
    assert "compounds split" not in out  # the paper's WMT14 BLEU only when asked (or WMT14)
    assert len((files_run / "translations" / "valid.src.hyp").read_text().splitlines()) == 7
    assert main(["evaluate", "--run", str(files_run), "--beam", "1", "--compound-split"]) == 0
    assert "BLEU (tokenised, cased, compounds split ##AT##-##AT##" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["evaluate", "tune"])
def test_a_multi30k_split_is_refused_for_a_task_run(
    command: str, reverse_run: Path, no_multi30k: None, capsys: pytest.CaptureFixture[str]
) -> None:
    split = "test_2016_flickr" if command == "evaluate" else "val"
    assert main([command, "--run", str(reverse_run), "--split", split]) == 2
    err = error_line(capsys)
    assert f"--split {split}: this run was trained on task:reverse, not Multi30k" in err


def test_a_multi30k_split_without_the_run_languages_is_refused(
    en_cs_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # (tune takes no test split at all; val and train have every language.)
    assert main(["evaluate", "--run", str(en_cs_run), "--split", "test_2017_flickr"]) == 2
    err = error_line(capsys)
    assert "this run translates en-cs but test_2017_flickr has no cs" in err


def test_tune_refuses_a_test_split_with_the_reason(
    en_cs_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "--run", str(en_cs_run), "--split", "test_2016_flickr"]) == 2
    assert "tune chooses settings on validation data, never on a test set" in error_line(capsys)


def test_evaluate_refuses_options_that_do_not_fit(
    reverse_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src.txt"
    src.write_text("1 2\n")
    run = ["evaluate", "--run", str(reverse_run)]
    assert main([*run, "--src-file", str(src)]) == 2
    assert "give both --src-file and --ref-file" in error_line(capsys)
    assert main([*run, "--data-dir", str(tmp_path)]) == 2
    assert "--data-dir: this run was trained on task:reverse" in error_line(capsys)
    assert main([*run, "--beam", "0"]) == 2
    assert "--beam must be at least 1" in error_line(capsys)


def test_multi30k_runs_default_to_test_2016_and_val(multi30k: Path) -> None:
    config = DataConfig(
        corpus="multi30k", src_lang="en", tgt_lang="de", data_dir=str(multi30k), max_valid_pairs=30
    )
    test = evaluation_data(config)
    assert test.name == "test_2016_flickr.en-de" and len(test) == 1000
    assert test.tok_references is not None  # the shipped references, on disk in the fixture
    assert not test.run_validation
    val = tuning_data(config)
    assert val.run_validation and val.name == "val.en-de"
    # Exactly what training validated on: data.max_valid_pairs applies.
    valid = load_corpus(config).valid
    assert list(zip(val.sources, val.references, strict=True)) == valid and len(valid) == 30
    with pytest.raises(UsageError, match="--lang fr: the multi30k references of this run are"):
        evaluation_data(config, lang="fr")
    with pytest.raises(UsageError, match="--split val and --src-file"):
        evaluation_data(config, split="val", src_file="a", ref_file="b")


def test_multi30k_validation_data_reads_only_the_validation_split(
    multi30k: Path, tmp_path: Path
) -> None:
    for name in ("val.en.gz", "val.de.gz"):
        shutil.copy(multi30k / name, tmp_path / name)
    config = DataConfig(corpus="multi30k", src_lang="en", tgt_lang="de", data_dir=str(tmp_path))
    data = validation_data(config)
    assert len(data) == 1014 and data.tok_references is None  # built from the references


def test_evaluate_on_your_files_reports_exact_match_for_a_task_run(
    reverse_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, ref = tmp_path / "mine.txt", tmp_path / "ref.txt"
    src.write_text("1 2 3\n4 5 6\n")
    ref.write_text("3 2 1\n6 5 4\n")
    args = ["evaluate", "--run", str(reverse_run), "--src-file", str(src), "--ref-file", str(ref)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "no test set given" not in out
    assert "mine.txt" in out and "sentences: 2" in out and "exact match:" in out


# tune


def test_tune_greedy_win_stores_beam_1_and_leaves_alpha(
    reverse_run: Path, tmp_path: Path, no_multi30k: None, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_of(reverse_run, tmp_path)
    before = info(run)
    assert main(["tune", "--run", str(run), "--beams", "1"]) == 0
    out = capsys.readouterr().out
    after = info(run)
    assert after["decode"] == {**before["decode"], "beam_size": 1}
    assert after["decode"]["alpha"] == 0.8  # the run's, not 0.0
    assert after["default_checkpoint"] == before["default_checkpoint"]
    assert [r["alpha"] for r in after["decode_tuning"]["results"]] == [None]
    assert "decode.beam_size: 1" in out and "decode.alpha left at 0.8" in out
    assert "decode.alpha:" not in out and "default_checkpoint:" not in out
    assert after["decode_tuning"]["data"].startswith("the reverse task's generated validation")


def test_tune_stores_the_best_row_and_the_number_of_sentences(
    reverse_run: Path, tmp_path: Path, no_multi30k: None, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_of(reverse_run, tmp_path)
    before = info(run)
    args = ["tune", "--run", str(run), "--beams", "1", "2", "--alphas", "0.5", "1.5"]
    assert main([*args, "--max-sentences", "5", "--metric", "chrf"]) == 0
    out = capsys.readouterr().out
    after = info(run)
    tuning = after["decode_tuning"]
    assert (tuning["sentences"], tuning["available_sentences"], tuning["metric"]) == (5, 12, "chrf")
    assert "only the first 5 of 12 sentences (--max-sentences)" in out
    results = tuning["results"]
    assert {(r["beam_size"], r["alpha"]) for r in results} == {(1, None), (2, 0.5), (2, 1.5)}
    best = choose_best(results, "chrf")
    assert after["decode"]["beam_size"] == best["beam_size"]
    alpha = before["decode"]["alpha"] if best["beam_size"] == 1 else best["alpha"]
    assert after["decode"]["alpha"] == alpha
    assert f"decode.beam_size: {best['beam_size']}" in out


def test_choose_best_prefers_the_score_then_the_smaller_beam() -> None:
    rows = [
        {"beam_size": 4, "alpha": 0.6, "bleu_tok_lc": 30.004},
        {"beam_size": 1, "alpha": None, "bleu_tok_lc": 29.996},  # equal to 2 decimals
        {"beam_size": 5, "alpha": 1.0, "bleu_tok_lc": 29.0},
    ]
    assert choose_best(rows, "bleu_tok_lc") is rows[1]
    rows[2]["bleu_tok_lc"] = 31.0
    assert choose_best(rows, "bleu_tok_lc") is rows[2]


def test_tune_with_checkpoint_makes_it_the_default(
    reverse_run: Path, tmp_path: Path, no_multi30k: None, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_of(reverse_run, tmp_path)
    first = run / "checkpoints" / "step-00000001"
    assert info(run)["default_checkpoint"] != "checkpoints/step-00000001"
    assert main(["tune", "--run", str(run), "--checkpoint", str(first), "--beams", "1"]) == 0
    assert info(run)["default_checkpoint"] == "checkpoints/step-00000001"
    assert "default_checkpoint: checkpoints/step-00000001" in capsys.readouterr().out


def test_tune_dry_run_stores_nothing(
    reverse_run: Path, tmp_path: Path, no_multi30k: None, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_of(reverse_run, tmp_path)
    before = (run / "run.json").read_bytes()
    first = str(run / "checkpoints" / "step-00000001")
    assert (
        main(["tune", "--run", str(run), "--checkpoint", first, "--beams", "1", "2", "--dry-run"])
        == 0
    )
    assert (run / "run.json").read_bytes() == before
    assert "nothing stored" in capsys.readouterr().out


def test_tune_passes_workers_on_and_does_not_store_them(
    reverse_run: Path, tmp_path: Path, no_multi30k: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiayn.decoding.translator import Translator

    seen: list[int | None] = []
    translate = Translator.translate

    def recording(self, texts, **kwargs):
        seen.append(kwargs["workers"])
        return translate(self, texts, **kwargs)

    monkeypatch.setattr(Translator, "translate", recording)
    run = copy_of(reverse_run, tmp_path)
    assert main(["tune", "--run", str(run), "--beams", "1", "2", "--workers", "2"]) == 0
    assert seen == [2, 2, 2]  # greedy, beam 2 with each of the two default alphas
    assert info(run)["decode"]["workers"] == 1  # the run's, not the command line's


def test_tune_names_the_checkpoints_a_run_has(
    reverse_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not (reverse_run / "checkpoints" / "average").exists()
    assert main(["tune", "--run", str(reverse_run), "--checkpoints", "average", "last"]) == 2
    err = error_line(capsys)
    assert f"--checkpoints average: {reverse_run} has no checkpoint 'average'" in err
    assert "it has step-00000001, step-00000002, step-00000003, best" in err
    assert "aiayn average" in err


def test_tune_on_a_multi30k_run_uses_its_val_split(
    en_cs_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_of(en_cs_run, tmp_path)
    assert main(["tune", "--run", str(run), "--beams", "1", "--max-sentences", "3"]) == 0
    tuning = info(run)["decode_tuning"]
    assert tuning["data"] == "Multi30k val en-cs: 10 pairs, at most 10 by data.max_valid_pairs"
    assert (tuning["sentences"], tuning["available_sentences"]) == (3, 10)
    assert "tokenised BLEU in cs" in capsys.readouterr().out
