"""A prepared dataset: a corpus encoded once into memory-mapped numpy arrays (`aiayn prepare`).

Raw text is read into Python lists of strings and lists of ids: fine for Multi30k's 29k pairs,
several GB of Python objects for WMT's 4.5M. A prepared dataset is a folder that training
opens in a second and pages in as it goes, whatever its size::

    manifest.json            written last: counts, dtypes, sizes and SHA-256 of every file
    train.src.npy            all source ids of the split, one flat array (uint16 or int32)
    train.tgt.npy            all target ids
    train.src_offsets.npy    int64, n + 1: pair i's source is src[src_offsets[i]:src_offsets[i+1]]
    train.tgt_offsets.npy    int64, n + 1
    train.lengths.npy        (n, 2): source and target length of each pair (for the sampler)
    valid.*.npy              the same for the validation split
    valid.src.txt, valid.tgt.txt   the validation text (for BLEU and examples)
    tokenizer/               the vocabularies (as in a run folder)

Why numpy ``.npy`` files opened with ``mmap_mode="r"`` rather than Arrow: numpy is already a
dependency (Arrow would add pyarrow, ~100 MB); a ``.npy`` file is a short header and the raw
array, so it loads with ``allow_pickle=False`` and no code runs; and its bytes live in the
operating system's page cache, shared by every process that reads the file: the ranks of a
DDP run on one machine read the same physical pages, and no process holds a private copy.
The sampler plans batches from the memory-mapped lengths array (4 bytes a pair); a pair's ids
are read with ``os.pread`` at the offsets the header and offset arrays give, so that pages
read for training are not mapped into the process either, and resident memory does not grow
with the corpus (see ``_Reader`` and docs/scale.md). Token ids are ``uint16`` when the
vocabulary has at most 65536 ids (the paper's 37k does), halving the files against int32.

The checksum of a dataset (``PreparedDataset.sha256``) is the SHA-256 of its manifest's list of
files and their SHA-256s; a run records it with the vocabulary's, and a dataset that does not
match the run it is used with is refused (``check_record``). The manifest also records each
file's size and modification time: opening compares those and hashes only a file whose time
changed (``PreparedDataset.open``), so a run starts in the same seconds from 4.5M pairs as from
29k; ``aiayn prepare --check DATA_DIR`` hashes everything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from aiayn.data.errors import DataError
from aiayn.data.text_files import Pair, read_parallel
from aiayn.data.vocab import TOKENIZER_DIR, IdPair, Vocabularies

FORMAT = "aiayn-prepared"
VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "valid")
ARRAYS = ("src", "tgt", "src_offsets", "tgt_offsets", "lengths")
VALID_TEXT = ("valid.src.txt", "valid.tgt.txt")
BLOCK = 1 << 20  # bytes read or copied at a time
Verify = Literal["size", "changed", "all"]


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest id type for a vocabulary: uint16 up to 65536 ids, else int32.

    Args:
        vocab_size: Ids in the vocabulary.

    Returns:
        The numpy dtype.
    """
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.int32)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks (the page cache, not this process, holds it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def files_sha256(files: dict[str, str]) -> str:
    """One SHA-256 for a set of files: of their names and SHA-256s, in name order."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def vocab_sha256(folder: Path) -> str:
    """The SHA-256 of the vocabulary files in ``folder/tokenizer`` (a dataset or a run).

    Args:
        folder: The dataset or run folder.

    Returns:
        The checksum, the same for the same vocabulary files wherever they lie.
    """
    tokenizer = Path(folder) / TOKENIZER_DIR
    files = sorted(p for p in tokenizer.rglob("*") if p.is_file())
    return files_sha256({p.relative_to(tokenizer).as_posix(): file_sha256(p) for p in files})


def valid_text(path: str | Path | None) -> list[Pair]:
    """The validation pairs of a prepared dataset, as text (what `aiayn evaluate` scores).

    Args:
        path: The dataset folder.

    Returns:
        The pairs.

    Raises:
        DataError: If the folder holds no validation text.
    """
    if path is None:
        raise DataError("data.corpus 'prepared' needs data.prepared_dir")
    return read_parallel(*(Path(path) / name for name in VALID_TEXT))


def _open_array(path: Path) -> np.memmap:
    """Memory-map a ``.npy`` file read-only (``allow_pickle=False``: no code runs)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npy array ({e})") from None
    return array


class _Reader:
    """Reads slices of a memory-mapped ``.npy`` array with ``os.pread``, not through the map.

    Training reads a few scattered pairs per batch. Read through the map, every page touched
    stays mapped into the process and counts in its resident memory (and the kernel maps
    neighbouring pages too), so resident memory would grow with the corpus after all.
    ``pread`` copies just the bytes asked for out of the page cache, which every process
    (every DDP rank) shares.
    """

    def __init__(self, array: np.memmap) -> None:
        self.dtype = array.dtype
        self.offset = int(array.offset)
        self.length = len(array)
        self._file = open(array.filename, "rb")  # noqa: SIM115 (closed with the reader)
        self._fd = self._file.fileno()

    def read(self, start: int, stop: int) -> np.ndarray:
        """``array[start:stop]`` (within bounds), as a fresh array."""
        size = self.dtype.itemsize
        data = os.pread(self._fd, (stop - start) * size, self.offset + start * size)
        return np.frombuffer(data, dtype=self.dtype)

    def __del__(self) -> None:
        self._file.close()


class PreparedSplit(Sequence[IdPair]):
    """One split of a prepared dataset: a sequence of (source ids, target ids) pairs.

    ``split[i]`` reads pair i's offsets and ids (four small ``pread`` calls, see ``_Reader``)
    and returns two short Python lists, as ``encode_pairs`` would; nothing else is read.
    ``lengths`` is the memory-mapped ``(n, 2)`` array that ``TokenBatchSampler`` plans batches
    from; ``src``, ``tgt`` and the offsets are the memory-mapped arrays, for whole-array work.

    Args:
        folder: The dataset folder.
        split: ``"train"`` or ``"valid"``.
    """

    def __init__(self, folder: Path, split: str) -> None:
        self.src, self.tgt, self.src_offsets, self.tgt_offsets, self.lengths = (
            _open_array(Path(folder) / f"{split}.{name}.npy") for name in ARRAYS
        )
        self._readers = [
            (_Reader(offsets), _Reader(ids))
            for offsets, ids in ((self.src_offsets, self.src), (self.tgt_offsets, self.tgt))
        ]

    def __len__(self) -> int:
        return len(self.lengths)

    @overload
    def __getitem__(self, index: int) -> IdPair: ...
    @overload
    def __getitem__(self, index: slice) -> list[IdPair]: ...
    def __getitem__(self, index: int | slice) -> IdPair | list[IdPair]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f"pair {index} of {len(self)}")
        index %= len(self)
        sides = []
        for offsets, ids in self._readers:
            start, stop = offsets.read(index, index + 2).tolist()
            sides.append(ids.read(start, stop).tolist())
        return sides[0], sides[1]

    def __iter__(self) -> Iterator[IdPair]:
        return (self[i] for i in range(len(self)))


@dataclass
class PreparedDataset:
    """A prepared dataset folder, opened: manifest, splits, validation text.

    Attributes:
        path: The folder.
        manifest: The parsed ``manifest.json``.
        train: The training pairs (memory-mapped).
        valid: The validation pairs (memory-mapped).
        valid_text: The validation pairs as text.
    """

    path: Path
    manifest: dict[str, Any]
    train: PreparedSplit
    valid: PreparedSplit
    valid_text: list[Pair]

    @classmethod
    def open(cls, path: str | Path, *, verify: Verify = "changed") -> PreparedDataset:
        """Open a dataset written by ``aiayn prepare``, checking that it is whole.

        Args:
            path: The dataset folder.
            verify: How far the files are checked against the manifest: ``"size"``, their
                sizes only; ``"changed"`` (the default), also the SHA-256 of every file whose
                modification time is not the one recorded when it was written (a copied or
                edited file), like rsync's quick check, so that an untouched dataset opens in
                milliseconds whatever its size; ``"all"``, every file's SHA-256 (reads the
                files once, about a second per GB; ``aiayn prepare --check``).

        Returns:
            The dataset.

        Raises:
            DataError: If the folder, its manifest or a file is missing, or a file differs
                from what the manifest recorded (an unfinished or damaged dataset).
        """
        path = Path(path)
        manifest_path = path / MANIFEST
        if not path.is_dir():
            raise DataError(f"{path}: no prepared dataset there; make one with aiayn prepare")
        if not manifest_path.is_file():
            raise DataError(
                f"{path}: not a finished prepared dataset (no {MANIFEST}); an interrupted "
                "aiayn prepare leaves no manifest: run it again"
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            files: dict[str, dict[str, Any]] = manifest["files"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{manifest_path}: not a prepared-dataset manifest ({e!r})") from None
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise DataError(
                f"{manifest_path}: format {manifest.get('format')!r} version "
                f"{manifest.get('version')!r}, expected {FORMAT!r} version {VERSION}"
            )
        for name, entry in files.items():
            file = path / name
            stat = file.stat() if file.is_file() else None
            if stat is None or stat.st_size != entry["bytes"]:
                raise DataError(
                    f"{file}: missing or not the size {MANIFEST} records ({entry['bytes']} "
                    "bytes); the dataset is damaged: prepare it again"
                )
            # A manifest written before aiayn recorded times has no mtime_ns: hash the file.
            changed = stat.st_mtime_ns != entry.get("mtime_ns")
            hashed = verify == "all" or (verify == "changed" and changed)
            if hashed and file_sha256(file) != entry["sha256"]:
                raise DataError(
                    f"{file}: SHA-256 differs from {MANIFEST}; the dataset is damaged: "
                    "prepare it again"
                )
        valid = valid_text(path)
        return cls(
            path, manifest, PreparedSplit(path, "train"), PreparedSplit(path, "valid"), valid
        )

    @property
    def sha256(self) -> str:
        """The dataset's checksum (of all its files' SHA-256s)."""
        return str(self.manifest["sha256"])

    @property
    def vocab_sha256(self) -> str:
        """The checksum of its vocabulary files."""
        return str(self.manifest["vocab"]["sha256"])

    def vocabularies(self) -> Vocabularies:
        """The vocabularies the dataset was encoded with."""
        return Vocabularies.load(self.path)

    def record(self) -> dict[str, Any]:
        """What a run trained from this dataset records about it (see ``check_record``)."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "vocab_sha256": self.vocab_sha256,
            "train_pairs": len(self.train),
            "valid_pairs": len(self.valid),
        }

    def check_record(self, record: dict[str, Any] | None, run_vocab_sha256: str | None) -> None:
        """Refuse this dataset for a run that was trained from another one.

        Args:
            record: What the run recorded (``record()`` of its dataset), or None for a run
                that has not recorded one yet.
            run_vocab_sha256: ``vocab_sha256`` of the run folder's vocabulary, or None for a
                run that has none yet.

        Raises:
            DataError: If the checksum or vocabulary differ.
        """
        if run_vocab_sha256 is not None and run_vocab_sha256 != self.vocab_sha256:
            raise DataError(
                f"{self.path}: its vocabulary (SHA-256 {self.vocab_sha256[:12]}) is not the "
                f"run's (SHA-256 {run_vocab_sha256[:12]}); ids would mean other words: train "
                "from the dataset the run was made with, or start a new run"
            )
        if record is not None and record.get("sha256") != self.sha256:
            raise DataError(
                f"{self.path}: dataset checksum {self.sha256[:12]} is not the one the run was "
                f"trained from ({str(record.get('sha256'))[:12]}, {record.get('path')}); the "
                "batches would not continue the run: use that dataset, or start a new run"
            )
