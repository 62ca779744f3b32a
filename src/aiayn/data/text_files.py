"""Reading any parallel corpus from text files: plain or gzipped, one sentence per line.

Lines are split on ``\\n`` only. ``str.splitlines`` would also split on characters such as
U+2028 or U+0085 that do occur inside real sentences, and a single extra split silently
misaligns every following source/target pair.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from aiayn.data.errors import DataError

Pair = tuple[str, str]
"""A (source sentence, target sentence) pair of raw text."""

PathLike = str | os.PathLike[str]


def _read_bytes(path: Path) -> bytes:
    """Read a whole file, decompressing it when its name ends in ``.gz``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a text file") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file ({e})") from None


def read_lines(path: PathLike) -> list[str]:
    """Read a UTF-8 text file into a list of lines, without their line ends.

    Files whose name ends in ``.gz`` are decompressed. A final line end does not produce an
    extra empty line; a UTF-8 byte-order mark at the start is dropped. Nothing else is changed:
    ``\\r`` and surrounding whitespace are kept (see ``clean_pairs``).

    Args:
        path: The file to read.

    Returns:
        The lines of the file.

    Raises:
        DataError: If the file is missing, is not valid gzip, or is not valid UTF-8 (the message
            names the file and the 1-based line number of the first bad byte).
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}:{line}: invalid UTF-8 ({e.reason} at byte {e.start}); "
            "convert the file to UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def read_parallel(src_path: PathLike, tgt_path: PathLike) -> list[Pair]:
    """Read a sentence-aligned pair of files: line i of one translates line i of the other.

    Args:
        src_path: The source-language file (plain or ``.gz``).
        tgt_path: The target-language file (plain or ``.gz``).

    Returns:
        The (source, target) pairs, in file order.

    Raises:
        DataError: If either file cannot be read, or the two have different numbers of lines.
    """
    src = read_lines(src_path)
    tgt = read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"parallel files have different line counts: {src_path} has {len(src)} lines, "
            f"{tgt_path} has {len(tgt)}; line i of one must translate line i of the other"
        )
    return list(zip(src, tgt, strict=True))


def read_tsv(path: PathLike) -> list[Pair]:
    """Read a parallel corpus stored as one ``source<TAB>target`` pair per line.

    Args:
        path: The file to read (plain or ``.gz``).

    Returns:
        The (source, target) pairs, in file order.

    Raises:
        DataError: If the file cannot be read, or a line does not have exactly two
            tab-separated columns (the message names the file and 1-based line).
    """
    pairs: list[Pair] = []
    for number, line in enumerate(read_lines(path), start=1):
        columns = line.split("\t")
        if len(columns) != 2:
            raise DataError(
                f"{path}:{number}: expected 2 tab-separated columns (source, target), "
                f"found {len(columns)}"
            )
        pairs.append((columns[0], columns[1]))
    return pairs
