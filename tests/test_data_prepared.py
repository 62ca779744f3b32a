"""Prepared datasets (`aiayn prepare`: aiayn.preparing, aiayn.data.prepared), training from them."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np
import pytest
from benchmarks.scale import main as scale_benchmark

from aiayn.config import RunConfig
from aiayn.data import (
    DataConfig,
    DataError,
    encode_pairs,
    load_corpus,
    load_multi30k,
    read_parallel,
)
from aiayn.data.prepared import MANIFEST, PreparedDataset, vocab_sha256
from aiayn.pipeline import prepare as prepare_run
from aiayn.pipeline import train
from aiayn.preparing import prepare_dataset
from aiayn.training import TrainConfig


@pytest.fixture(scope="module")
def text_files(multi30k: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """1,200 Multi30k pairs as files (source gzipped), with an empty and an over-long pair."""
    folder = tmp_path_factory.mktemp("text")
    pairs = load_multi30k("train", "de", "en", data_dir=multi30k)[:1200]
    pairs[5] = ("  ", "nothing")
    pairs[9] = ("lang " * 60, "long")
    src, tgt = folder / "train.de.gz", folder / "train.en"
    with gzip.open(src, "wt", encoding="utf-8") as f:
        f.write("".join(s + "\n" for s, _ in pairs))
    tgt.write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    return src, tgt


def files_config(src: Path, tgt: Path, **overrides: object) -> DataConfig:
    fields = {"valid_holdout": 100, "max_len": 50, "vocab_size": 600, **overrides}
    return DataConfig(corpus="files", src_file=str(src), tgt_file=str(tgt), **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def prepared(text_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "data"
    prepare_dataset(files_config(*text_files), out, workers=1, chunk=250)
    return out


def test_prepared_ids_and_text_are_the_raw_paths(
    prepared: Path, text_files: tuple[Path, Path]
) -> None:
    dataset = PreparedDataset.open(prepared)
    corpus = load_corpus(files_config(*text_files))  # what `aiayn train` reads
    vocabs = dataset.vocabularies()
    assert list(dataset.train) == encode_pairs(corpus.train, vocabs)
    assert list(dataset.valid) == encode_pairs(corpus.valid, vocabs)
    assert dataset.valid_text == corpus.valid
    assert len(dataset.train) == 1200 - 100 - 2  # held out, empty, too long
    manifest = dataset.manifest
    assert manifest["filtered"] == str(corpus.stats)
    assert dataset.train.src.dtype == np.uint16 and isinstance(dataset.train.src, np.memmap)
    lengths = np.array([(len(s), len(t)) for s, t in dataset.train])
    assert (dataset.train.lengths == lengths).all()
    assert manifest["splits"]["train"]["src_tokens"] == int(lengths[:, 0].sum())
    assert manifest["vocab"]["sha256"] == vocab_sha256(prepared)


@pytest.mark.slow  # two worker processes start (~10 s)
def test_two_encoding_processes_give_the_raw_paths_ids(multi30k: Path, tmp_path: Path) -> None:
    """Multi30k's first 2,000 pairs, a named corpus, through the worker pool in 3 chunks."""
    config = DataConfig(
        corpus="multi30k", data_dir=str(multi30k), max_train_pairs=2000, vocab_size=800
    )
    two = prepare_dataset(config, tmp_path / "two", workers=2, chunk=700)
    corpus = load_corpus(config)
    assert len(two.train) == 2000 and two.valid_text == corpus.valid
    assert list(two.train) == encode_pairs(corpus.train, two.vocabularies())


@pytest.mark.slow  # trains, prepares again and resumes (~15 s)
def test_train_from_prepared_then_refuse_another_dataset(
    prepared: Path, text_files: tuple[Path, Path], tmp_path: Path
) -> None:
    config = RunConfig(
        model={"preset": "tiny"},
        data=DataConfig(corpus="prepared", prepared_dir=str(prepared)),
        train=TrainConfig(max_steps=3, max_tokens=600, valid_bleu=0, progress=False),
    )
    run_dir = tmp_path / "run"
    _, result = train(config, run_dir)
    assert result.steps == 3
    info = json.loads((run_dir / "run.json").read_text())
    dataset = PreparedDataset.open(prepared)
    assert info["prepared"]["sha256"] == dataset.sha256
    assert info["prepared"]["vocab_sha256"] == vocab_sha256(run_dir) == dataset.vocab_sha256
    assert info["train_pairs"] == len(dataset.train)

    # The same folder prepared again from other text: refused on --resume.
    other = tmp_path / "other"
    prepare_dataset(files_config(*text_files, max_train_pairs=900), other, workers=1)
    redone = prepared.with_name("redone")
    prepared.rename(redone)
    other.rename(prepared)
    try:
        with pytest.raises(DataError, match=r"vocabulary .* is not the run's"):
            prepare_run(None, run_dir, resume=True)
    finally:
        prepared.rename(other)
        redone.rename(prepared)
    # The same vocabulary but other pairs: the checksum refuses it.
    record = dict(info["prepared"], sha256="0" * 64)
    with pytest.raises(DataError, match=r"dataset checksum .* is not the one the run"):
        dataset.check_record(record, dataset.vocab_sha256)
    resumed = prepare_run(None, run_dir, resume=True)  # the right one still resumes
    assert resumed.trainer.step == 3


def test_half_written_prepare_leaves_nothing_finished(
    text_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiayn.preparing

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as Ctrl-C just before the manifest

    monkeypatch.setattr(aiayn.preparing, "_write_manifest", crash)
    out = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(files_config(*text_files), out, workers=1)
    assert list(tmp_path.iterdir()) == []  # no folder, no hidden leftover
    with pytest.raises(DataError, match="no prepared dataset there"):
        PreparedDataset.open(out)


def test_unfinished_or_damaged_folders_are_refused(prepared: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in prepared.rglob("*"):
        target = copy / file.relative_to(prepared)
        if file.is_dir():
            target.mkdir()
        else:
            target.write_bytes(file.read_bytes())
    manifest = (copy / MANIFEST).read_bytes()
    (copy / MANIFEST).unlink()
    with pytest.raises(DataError, match="not a finished prepared dataset"):
        PreparedDataset.open(copy)
    (copy / MANIFEST).write_bytes(manifest)
    tokens = bytearray((copy / "train.src.npy").read_bytes())
    tokens[-1] ^= 1
    (copy / "train.src.npy").write_bytes(bytes(tokens))
    with pytest.raises(DataError, match=r"train.src.npy: SHA-256 differs"):
        PreparedDataset.open(copy)
    (copy / "train.tgt.npy").write_bytes(b"short")
    with pytest.raises(DataError, match=r"train.tgt.npy: missing or not the size"):
        PreparedDataset.open(copy, verify="size")
    with pytest.raises(DataError, match="already exists and is not empty"):
        prepare_dataset(DataConfig(), copy)


def test_opening_hashes_only_files_whose_time_changed_and_check_hashes_all(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Training opens an untouched dataset without reading it (its start-up does not grow with
    the corpus); a copied or edited file is hashed; `aiayn prepare --check` hashes everything."""
    import shutil

    import aiayn.data.prepared as prepared_module
    from aiayn.cli import main

    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)  # copy2: times kept, as rsync -a or cp -p
    hashed: list[str] = []
    real_sha256 = prepared_module.file_sha256

    def counting_sha256(path: Path) -> str:
        hashed.append(path.name)
        return real_sha256(path)

    monkeypatch.setattr(prepared_module, "file_sha256", counting_sha256)
    PreparedDataset.open(copy)
    assert hashed == []
    tokens = copy / "train.src.npy"
    times = tokens.stat()
    data = bytearray(tokens.read_bytes())
    data[-1] ^= 1
    tokens.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train.src.npy: SHA-256 differs"):
        PreparedDataset.open(copy)  # its modification time changed
    assert hashed == ["train.src.npy"]
    # The same edit with the old time put back passes the quick check; --check finds it.
    import os

    os.utime(tokens, ns=(times.st_atime_ns, times.st_mtime_ns))
    PreparedDataset.open(copy)
    assert main(["prepare", "--check", str(copy)]) == 2
    assert "train.src.npy: SHA-256 differs" in capsys.readouterr().err
    data[-1] ^= 1
    tokens.write_bytes(bytes(data))
    assert main(["prepare", "--check", str(copy)]) == 0
    assert f"{len(json.loads((copy / MANIFEST).read_text())['files'])} files match" in (
        capsys.readouterr().out
    )


def test_line_count_mismatch_at_line_3000001_is_named_at_once(tmp_path: Path) -> None:
    src, tgt = tmp_path / "big.src", tmp_path / "big.tgt"
    src.write_bytes(b"a b\n" * 3_000_001)
    tgt.write_bytes(b"c d\n" * 3_000_000)
    clock = time.perf_counter()
    with pytest.raises(DataError, match=r"big.src:3000001: line 3000001 has no partner"):
        prepare_dataset(files_config(src, tgt), tmp_path / "data")
    assert time.perf_counter() - clock < 10  # counted, not read into memory
    assert not (tmp_path / "data").exists()
    with pytest.raises(DataError, match=r"big.src:3000001: line 3000001 has no partner in .*tgt"):
        read_parallel(tgt, src)  # training from the raw text says the same


@pytest.mark.slow
def test_rss_after_100_updates_does_not_grow_with_the_corpus(
    multi30k: Path, tmp_path: Path
) -> None:
    """The issue's test: `python -m benchmarks.scale --quick`, i.e. 200k vs 20k pairs generated
    from Multi30k sentences, `aiayn prepare`, then 100 updates of the tiny preset from each."""
    result = scale_benchmark(["--quick", "--workdir", str(tmp_path), "--data-dir", str(multi30k)])
    big, small = (result["corpora"][k]["train"] for k in ("big", "small"))
    assert big["pairs"] == 199_000 and small["pairs"] == 19_000  # 1,000 held out
    assert big["steps"] == small["steps"] == 100
    assert abs(big["rss_mib"] - small["rss_mib"]) < 50, result
    assert result["sampler"]["batches"] > 1000
