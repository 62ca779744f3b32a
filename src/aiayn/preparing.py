"""What `aiayn prepare` does, as a library call: parallel text -> a prepared dataset folder.

    text (files, TSV, a named corpus) --stream, clean--> spool files in the new folder
        --a random sample--> SentencePiece vocabulary
        --chunks, all cores--> memory-mapped id arrays (aiayn.data.prepared) + manifest.json

Memory stays bounded by a chunk, the validation pairs and SentencePiece's sample, not by the
corpus: training pairs are streamed from the input files through cleaning into two spool files
(one cleaned sentence per line, in the folder being written), SentencePiece draws its sample
from those files itself, and worker processes encode byte ranges of them. Everything is
written into a hidden temporary folder that is renamed into place once ``manifest.json``, the
last file, is written: an interrupted prepare leaves nothing that looks finished.

The pairs, their cleaning and the validation pairs (a corpus' own validation set, such as
WMT14's newstest2013, else the held-out slice) are the same as `aiayn train` reads from the
same data options (``aiayn.data.load_corpus``), so a dataset's ids are those
the raw-text path would give with the same vocabulary.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aiayn.data import (
    DataConfig,
    DataError,
    FilterStats,
    Pair,
    SentencePieceTokenizer,
    Vocabularies,
    build_vocabularies,
    clean_pairs,
    count_lines,
    default_vocab_size,
    encode_pairs,
    iter_lines,
    iter_tsv,
    load_corpus,
    load_wmt14,
    read_parallel,
)
from aiayn.data.prepared import (
    FORMAT,
    MANIFEST,
    VALID_TEXT,
    VERSION,
    PreparedDataset,
    file_sha256,
    files_sha256,
    token_dtype,
    vocab_sha256,
)
from aiayn.data.prepared_write import SplitWriter, flatten
from aiayn.data.text_files import check_line_counts
from aiayn.data.wmt14 import wmt14_train_files
from aiayn.runs.atomic import write_folder

SPOOL = (".spool.src", ".spool.tgt")
DEFAULT_SAMPLE = 1_000_000  # sentences SentencePiece learns from at most (the rest is encoded)
DEFAULT_CHUNK = 20_000  # pairs per encoding task

Report = Callable[[str], None]


def default_workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def prepare_dataset(
    config: DataConfig,
    out: str | Path,
    *,
    workers: int | None = None,
    sample: int = DEFAULT_SAMPLE,
    chunk: int = DEFAULT_CHUNK,
    report: Report | None = None,
) -> PreparedDataset:
    """Read, clean, learn a vocabulary for and encode a corpus into a prepared dataset.

    Args:
        config: The data options, as for training (``corpus`` not ``prepared``/``imported``).
        out: The dataset folder to create (must not exist, or be empty).
        workers: Encoding processes (default: every core this process may use; 1 encodes in
            this process).
        sample: Sentences SentencePiece learns from at most, drawn at random (0: all).
        chunk: Pairs per encoding task.
        report: Called with a line of progress now and then.

    Returns:
        The dataset, opened.

    Raises:
        DataError: Unreadable or mismatched input (a line-count mismatch names the first line
            without a partner, before anything is encoded), no pairs left after cleaning, or
            ``out`` already holding something.
        ConfigError: A corpus that cannot be prepared.
    """
    out = Path(out)
    if config.corpus in ("prepared", "imported"):
        raise DataError(f"cannot prepare data.corpus {config.corpus!r}: give the text to prepare")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists and is not empty; choose another --out or delete it")
    say = report or (lambda line: None)
    workers = workers or default_workers()
    seconds: dict[str, float] = {}

    def write(folder: Path) -> None:
        clock = time.perf_counter()
        spool = _Spool(folder, chunk)
        valid, stats, notes = _read(config, spool, say)
        seconds["read_clean"] = time.perf_counter() - clock
        say(f"read {stats}; {len(valid)} validation pairs")
        clock = time.perf_counter()
        vocabs = _vocabularies(config, spool, sample, workers)
        vocabs.save(folder)
        seconds["vocabulary"] = time.perf_counter() - clock
        say(f"learnt {vocabs.src.vocab_size} ids on at most {sample or 'all'} sentences")
        clock = time.perf_counter()
        dtype = token_dtype(max(vocabs.src.vocab_size, vocabs.tgt.vocab_size))
        splits = {"train": _encode_spool(folder, spool, dtype, workers, say)}
        writer = SplitWriter(folder, "valid", dtype)
        writer.add_pairs(encode_pairs(valid, vocabs))
        splits["valid"] = writer.finish()
        for name, side in zip(VALID_TEXT, (0, 1), strict=True):
            (folder / name).write_text("".join(p[side] + "\n" for p in valid), encoding="utf-8")
        for path in spool.paths:
            path.unlink()
        seconds["encode_write"] = time.perf_counter() - clock
        _write_manifest(folder, config, splits, vocabs, stats, notes, sample, workers, seconds)

    write_folder(out, write)
    return PreparedDataset.open(out, verify="size")


class _Spool:
    """Cleaned training pairs written to two files, and the byte ranges of their chunks."""

    def __init__(self, folder: Path, chunk: int) -> None:
        self.paths = tuple(folder / name for name in SPOOL)
        self.chunk = chunk
        self.ranges: list[tuple[int, int, int, int]] = []  # src start, end, tgt start, end
        self.pairs = 0
        self._files = [open(p, "wb") for p in self.paths]  # noqa: SIM115
        self._buffer: list[Pair] = []
        self.stats = FilterStats(0, 0, 0)

    def add(self, pair: Pair, max_len: int | None) -> None:
        self._buffer.append(pair)
        if len(self._buffer) >= self.chunk:
            self.flush(max_len)

    def flush(self, max_len: int | None) -> None:
        kept, stats = (
            clean_pairs(self._buffer, max_len=max_len) if max_len else (self._buffer, None)
        )
        self._buffer = []
        if stats is not None:
            s = self.stats
            self.stats = FilterStats(
                s.kept + stats.kept, s.empty + stats.empty, s.too_long + stats.too_long
            )
        if not kept:
            return
        bounds = []
        for f, side in zip(self._files, (0, 1), strict=True):
            start = f.tell()
            f.write("".join(p[side] + "\n" for p in kept).encode("utf-8"))
            bounds += [start, f.tell()]
        self.ranges.append((bounds[0], bounds[1], bounds[2], bounds[3]))
        self.pairs += len(kept)

    def close(self) -> None:
        for f in self._files:
            f.close()


def _read(
    config: DataConfig, spool: _Spool, say: Report
) -> tuple[list[Pair], FilterStats, list[str]]:
    """Stream the training pairs through cleaning into the spool; the validation pairs."""
    notes: list[str] = []
    if config.corpus in ("files", "tsv"):
        valid = _read_files(config, spool, notes, say)
        stats = spool.stats
        if config.max_valid_pairs is not None:
            valid = valid[: config.max_valid_pairs]
        valid, _ = clean_pairs(valid)
    elif config.corpus == "wmt14":
        valid = _read_wmt14(config, spool, say)
        stats = spool.stats
    else:  # Multi30k, a synthetic task: small, read as training reads them
        corpus = load_corpus(config)
        for pair in corpus.train:
            spool.add(pair, None)
        spool.flush(None)
        valid, stats, notes = corpus.valid, corpus.stats, corpus.notes
    spool.close()
    if not spool.pairs:
        raise DataError(f"no training pairs left in {config.name} after cleaning ({stats})")
    if not valid:
        raise DataError(f"no validation pairs in {config.name}")
    return valid, stats, notes


def _read_wmt14(config: DataConfig, spool: _Spool, say: Report) -> list[Pair]:
    """WMT14: as ``load_corpus`` reads it (training pairs, newstest2013 to validate), streamed."""
    load = dict(data_dir=config.data_dir, checksum_file=config.checksum_file)
    files = wmt14_train_files(config.src_lang, config.tgt_lang, **load)
    limit = config.max_train_pairs
    taken = 0
    for src, tgt in files:
        if limit is not None and taken >= limit:
            break
        n_src, n_tgt = count_lines(src), count_lines(tgt)
        check_line_counts(src, n_src, tgt, n_tgt)
        say(f"{n_src:,} pairs in {src.name}")
        for pair in zip(iter_lines(src), iter_lines(tgt), strict=True):
            if limit is not None and taken >= limit:
                break
            taken += 1
            spool.add(pair, config.max_len)
    spool.flush(config.max_len)
    valid = load_wmt14("newstest2013", config.src_lang, config.tgt_lang, **load)
    if config.max_valid_pairs is not None:
        valid = valid[: config.max_valid_pairs]
    return clean_pairs(valid)[0]


def _read_files(config: DataConfig, spool: _Spool, notes: list[str], say: Report) -> list[Pair]:
    """The files/TSV corpus: as ``load_corpus`` reads it, but streamed."""
    if config.corpus == "tsv":
        assert config.tsv is not None
        count = count_lines(config.tsv)
        pairs: Iterator[Pair] = iter_tsv(config.tsv)
    else:
        assert config.src_file is not None and config.tgt_file is not None
        n_src, n_tgt = count_lines(config.src_file), count_lines(config.tgt_file)
        check_line_counts(config.src_file, n_src, config.tgt_file, n_tgt)
        count = n_src
        pairs = zip(iter_lines(config.src_file), iter_lines(config.tgt_file), strict=True)
    say(f"{count:,} pairs in {config.name}")
    held_out: set[int] = set()
    valid: list[Pair] = []
    if config.valid_src_file and config.valid_tgt_file:
        valid = read_parallel(config.valid_src_file, config.valid_tgt_file)
    else:
        if count < 2 * config.valid_holdout:
            raise DataError(
                f"{count} pairs are too few to hold out {config.valid_holdout} for "
                "validation: give validation files or a smaller data.valid_holdout"
            )
        # The same choice as aiayn.data.split_holdout makes over the whole list.
        held_out = set(random.Random(config.seed).sample(range(count), config.valid_holdout))
        notes.append(f"held out {len(held_out)} training pairs for validation")
    limit = config.max_train_pairs
    taken = found = 0
    for index, pair in enumerate(pairs):
        if index in held_out:
            valid.append(pair)
            found += 1
        elif limit is None or taken < limit:
            taken += 1
            spool.add(pair, config.max_len)
        elif found == len(held_out):
            break  # enough training pairs, and every held-out one found
    spool.flush(config.max_len)
    return valid


def _vocabularies(config: DataConfig, spool: _Spool, sample: int, workers: int) -> Vocabularies:
    """Learn the vocabularies from (a sample of) the spooled training sentences."""
    if config.vocab_kind != "sentencepiece":  # symbols: a synthetic task, small
        src = [line.rstrip("\n") for line in spool.paths[0].open(encoding="utf-8")]
        tgt = [line.rstrip("\n") for line in spool.paths[1].open(encoding="utf-8")]
        return build_vocabularies(
            list(zip(src, tgt, strict=True)), joint=config.joint_vocab, kind="symbols"
        )
    sides = [list(spool.paths)] if config.joint_vocab else [[p] for p in spool.paths]
    tokenizers = []
    for paths in sides:
        n = spool.pairs * len(paths)
        size = config.vocab_size or default_vocab_size(n)
        tokenizers.append(
            SentencePieceTokenizer.train_files(
                paths,
                size,
                sample=sample,
                model_type=config.subword,
                seed=config.seed,
                num_threads=workers,
            )
        )
    if config.joint_vocab:
        return Vocabularies(src=tokenizers[0], tgt=tokenizers[0], joint=True)
    return Vocabularies(src=tokenizers[0], tgt=tokenizers[1], joint=False)


# ------------------------------------------------------------------------- encoding workers

_worker_vocabs: Vocabularies | None = None


def _init_worker(folder: str) -> None:
    global _worker_vocabs
    _worker_vocabs = Vocabularies.load(folder)


def _encode_range(
    task: tuple[str, str, tuple[int, int, int, int], str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Encode one chunk of the spool: (src ids, src lengths, tgt ids, tgt lengths)."""
    src_path, tgt_path, (s0, s1, t0, t1), dtype = task
    assert _worker_vocabs is not None
    result = []
    for path, start, end, tokenizer in (
        (src_path, s0, s1, _worker_vocabs.src),
        (tgt_path, t0, t1, _worker_vocabs.tgt),
    ):
        with open(path, "rb") as f:
            f.seek(start)
            lines = f.read(end - start).decode("utf-8").split("\n")[:-1]
        flat, lengths = flatten(tokenizer.encode_batch(lines))
        result += [flat.astype(dtype), lengths]
    return result[0], result[1], result[2], result[3]


def _encode_spool(
    folder: Path, spool: _Spool, dtype: np.dtype, workers: int, say: Report
) -> dict[str, Any]:
    """Encode the spooled training pairs in ``workers`` processes into the train split."""
    writer = SplitWriter(folder, "train", dtype)
    src, tgt = (str(p) for p in spool.paths)
    tasks = [(src, tgt, r, dtype.str) for r in spool.ranges]
    if workers <= 1:
        _init_worker(str(folder))
        results: Iterator[Any] = map(_encode_range, tasks)
        pool = None
    else:
        # spawn: a fresh interpreter per worker, whatever threads this process has started.
        pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker, (str(folder),))
        results = pool.imap(_encode_range, tasks)
    try:
        step = max(1, len(tasks) // 10)
        for done, chunk in enumerate(results, start=1):
            writer.add(*chunk)
            if done % step == 0:
                say(f"encoded {done}/{len(tasks)} chunks")
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return writer.finish()


def _write_manifest(
    folder: Path,
    config: DataConfig,
    splits: dict[str, dict[str, Any]],
    vocabs: Vocabularies,
    stats: FilterStats,
    notes: list[str],
    sample: int,
    workers: int,
    seconds: dict[str, float],
) -> None:
    """Write manifest.json, the last file: what a reader checks the folder against."""
    names = [n for s in splits.values() for n in s["files"]] + list(VALID_TEXT)
    names += [
        p.relative_to(folder).as_posix()
        for p in sorted((folder / "tokenizer").rglob("*"))
        if p.is_file()
    ]
    digests = {n: s["files"][n] for s in splits.values() for n in s["files"]}
    stat_of = {name: (folder / name).stat() for name in names}
    files = {
        name: {
            "bytes": stat_of[name].st_size,
            "sha256": digests.get(name) or file_sha256(folder / name),
            "mtime_ns": stat_of[name].st_mtime_ns,  # unchanged since: not hashed when opened
        }
        for name in names
    }
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "sha256": files_sha256({n: f["sha256"] for n, f in files.items()}),
        "data": dataclasses.asdict(config),
        "source": config.name,
        "filtered": str(stats),
        "notes": notes,
        "splits": {
            name: {k: v for k, v in s.items() if k != "files"} for name, s in splits.items()
        },
        "vocab": {
            "sha256": vocab_sha256(folder),
            "kind": vocabs.kind,
            "joint": vocabs.joint,
            "src_size": vocabs.src.vocab_size,
            "tgt_size": vocabs.tgt.vocab_size,
            "sample_sentences": sample,
        },
        "workers": workers,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
