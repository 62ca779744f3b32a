"""Reading any parallel corpus from text files: plain or gzipped, one sentence per line.

Lines are split on ``\\n`` only. ``str.splitlines`` would also split on characters such as
U+2028 or U+0085 that do occur inside real sentences, and a single extra split silently
misaligns every following source/target pair.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

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
    check_line_counts(src_path, len(src), tgt_path, len(tgt))
    return list(zip(src, tgt, strict=True))


def check_line_counts(src_path: PathLike, n_src: int, tgt_path: PathLike, n_tgt: int) -> None:
    """Refuse parallel files of different lengths, naming the first line without a partner.

    Args:
        src_path: The source file.
        n_src: Its number of lines.
        tgt_path: The target file.
        n_tgt: Its number of lines.

    Raises:
        DataError: If the counts differ.
    """
    if n_src == n_tgt:
        return
    longer, shorter = (src_path, tgt_path) if n_src > n_tgt else (tgt_path, src_path)
    line = min(n_src, n_tgt) + 1
    raise DataError(
        f"{longer}:{line}: line {line} has no partner in {shorter}, which ends after line "
        f"{line - 1}: {src_path} has {n_src} lines, {tgt_path} has {n_tgt}; line i of one must "
        "translate line i of the other"
    )


def count_lines(path: PathLike, block: int = 1 << 20) -> int:
    """Count the lines of a text file (plain or ``.gz``) as ``read_lines`` would, streaming.

    Reads in blocks of ``block`` bytes, so memory stays small whatever the file's size.

    Args:
        path: The file.
        block: Bytes read at a time.

    Returns:
        The number of lines (a last line without a line end counts).

    Raises:
        DataError: If the file is missing or not valid gzip.
    """
    path = Path(path)
    count, last = 0, b"\n"
    try:
        with _open_binary(path) as f:
            while chunk := f.read(block):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file ({e})") from None
    return count + (last != b"\n")


def _open_binary(path: Path) -> IO[bytes]:
    """Open a file for reading bytes, decompressing ``.gz``; DataError if it is not there."""
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a text file") from None


def iter_lines(path: PathLike) -> Iterator[str]:
    """The lines of a UTF-8 text file one at a time, as ``read_lines`` gives them all.

    Args:
        path: The file (plain or ``.gz``).

    Yields:
        Each line without its line end (a byte-order mark at the start dropped).

    Raises:
        DataError: If the file is missing, not valid gzip, or a line is not valid UTF-8 (the
            message names the file and line).
    """
    path = Path(path)
    try:
        with _open_binary(path) as f:
            for number, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(
                        f"{path}:{number}: invalid UTF-8 ({e.reason} at byte {e.start} of the "
                        "line); convert the file to UTF-8"
                    ) from None
                if number == 1:
                    line = line.removeprefix("\ufeff")
                yield line.removesuffix("\n")
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file ({e})") from None


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
    return [_tsv_pair(path, number, line) for number, line in enumerate(read_lines(path), 1)]


def iter_tsv(path: PathLike) -> Iterator[Pair]:
    """The pairs of a ``source<TAB>target`` file one at a time (see ``read_tsv``).

    Args:
        path: The file (plain or ``.gz``).

    Yields:
        (source, target) pairs, in file order.

    Raises:
        DataError: As ``read_tsv``.
    """
    for number, line in enumerate(iter_lines(path), start=1):
        yield _tsv_pair(path, number, line)


def _tsv_pair(path: PathLike, number: int, line: str) -> Pair:
    """The two columns of a TSV line; DataError naming the file and line if not two."""
    columns = line.split("\t")
    if len(columns) != 2:
        raise DataError(
            f"{path}:{number}: expected 2 tab-separated columns (source, target), "
            f"found {len(columns)}"
        )
    return columns[0], columns[1]
