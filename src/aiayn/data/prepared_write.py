"""Writing the arrays of a prepared dataset (see aiayn.data.prepared for the format).

``SplitWriter`` appends encoded chunks of a split to raw files as they come and turns them
into ``.npy`` files at the end, hashing every byte as it is written; memory stays bounded by a
chunk plus the per-pair lengths (16 bytes a pair).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from aiayn.data.prepared import BLOCK
from aiayn.data.vocab import IdPair


class _HashingWriter:
    """Writes bytes to a file and hashes them on the way."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.digest = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self.digest.update(data)
        return self.f.write(data)


def write_npy(path: Path, array_or_raw: np.ndarray | Path, dtype: np.dtype, shape: tuple) -> str:
    """Write a ``.npy`` file from an array or from a file of its raw bytes; its SHA-256.

    Args:
        path: The ``.npy`` file to write.
        array_or_raw: The array, or a file holding its bytes (C order, ``dtype``), copied
            block by block so that memory stays small.
        dtype: The array's dtype.
        shape: The array's shape.

    Returns:
        The SHA-256 of the written file.
    """
    with open(path, "wb") as f:
        out = _HashingWriter(f)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(out, {**header, "shape": shape})  # type: ignore[arg-type]
        if isinstance(array_or_raw, np.ndarray):
            out.write(np.ascontiguousarray(array_or_raw, dtype=dtype).data)
        else:
            with open(array_or_raw, "rb") as raw:
                shutil.copyfileobj(raw, out, BLOCK)  # type: ignore[misc]
    return out.digest.hexdigest()


class SplitWriter:
    """Writes one split, chunk by chunk, with bounded memory (see the module docstring).

    Ids go to raw files as they come; ``finish`` turns them into ``.npy`` files.

    Args:
        folder: The (temporary) dataset folder.
        split: ``"train"`` or ``"valid"``.
        dtype: The token dtype (``token_dtype``).
    """

    def __init__(self, folder: Path, split: str, dtype: np.dtype) -> None:
        self.folder = Path(folder)
        self.split = split
        self.dtype = dtype
        self._raw = {side: self.folder / f".{split}.{side}.raw" for side in ("src", "tgt")}
        self._files: dict[str, IO[bytes]] = {s: open(p, "wb") for s, p in self._raw.items()}  # noqa: SIM115
        self._lengths: list[np.ndarray] = []

    def add(
        self, src: np.ndarray, src_lengths: np.ndarray, tgt: np.ndarray, tgt_lengths: np.ndarray
    ) -> None:
        """Append a chunk of pairs: flat ids and per-pair lengths of each side.

        Args:
            src: The chunk's source ids, concatenated.
            src_lengths: Each pair's source length.
            tgt: The chunk's target ids, concatenated.
            tgt_lengths: Each pair's target length.
        """
        self._files["src"].write(np.ascontiguousarray(src, dtype=self.dtype).data)
        self._files["tgt"].write(np.ascontiguousarray(tgt, dtype=self.dtype).data)
        self._lengths.append(np.stack([src_lengths, tgt_lengths], axis=1).astype(np.int64))

    def add_pairs(self, pairs: Sequence[IdPair]) -> None:
        """Append encoded pairs given as Python lists (for small splits and tests)."""
        src, tgt = flatten([s for s, _ in pairs]), flatten([t for _, t in pairs])
        self.add(*src, *tgt)

    def finish(self) -> dict[str, Any]:
        """Write the split's ``.npy`` files and remove the raw ones.

        Returns:
            The split's manifest entry: counts, longest lengths, and ``files`` (name -> SHA-256).
        """
        for f in self._files.values():
            f.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros((0, 2), np.int64)
        longest = int(lengths.max()) if len(lengths) else 0
        files: dict[str, str] = {}
        tokens = {}
        for column, side in enumerate(("src", "tgt")):
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths[:, column], out=offsets[1:])
            tokens[side] = int(offsets[-1])
            name = f"{self.split}.{side}.npy"
            files[name] = write_npy(
                self.folder / name, self._raw[side], self.dtype, (tokens[side],)
            )
            self._raw[side].unlink()
            name = f"{self.split}.{side}_offsets.npy"
            files[name] = write_npy(self.folder / name, offsets, offsets.dtype, offsets.shape)
        length_type = np.dtype(np.uint16 if longest < 1 << 16 else np.int32)
        name = f"{self.split}.lengths.npy"
        files[name] = write_npy(self.folder / name, lengths, length_type, lengths.shape)
        return {
            "pairs": len(lengths),
            "src_tokens": tokens["src"],
            "tgt_tokens": tokens["tgt"],
            "longest_src": int(lengths[:, 0].max()) if len(lengths) else 0,
            "longest_tgt": int(lengths[:, 1].max()) if len(lengths) else 0,
            "token_dtype": str(self.dtype),
            "lengths_dtype": str(length_type),
            "files": files,
        }


def flatten(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Lists of ids -> (all ids in one int64 array, each list's length)."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    flat = np.fromiter((i for row in rows for i in row), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths
