"""Reading parallel text, cleaning pairs and holding out a validation slice."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from aiayn.data import (
    DataError,
    FilterStats,
    clean_pairs,
    read_lines,
    read_parallel,
    read_tsv,
    split_holdout,
)


def write(path: Path, data: bytes) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["plain.txt", "packed.txt.gz"])
def test_read_lines_plain_and_gz(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, "Grüße\nzwei  Leerzeichen \r\n\nletzte".encode())
    assert read_lines(path) == ["Grüße", "zwei  Leerzeichen \r", "", "letzte"]


def test_read_lines_final_newline_bom_and_unicode_line_separators(tmp_path: Path) -> None:
    # U+2028 and U+0085 are line breaks to str.splitlines; here they must stay inside lines.
    path = write(tmp_path / "a.txt", "\ufeffa\u2028b\nc\x85d\n".encode())
    assert read_lines(path) == ["a\u2028b", "c\x85d"]
    assert read_lines(write(tmp_path / "empty.txt", b"")) == []


@pytest.mark.parametrize("name", ["bad.txt", "bad.txt.gz"])
def test_invalid_utf8_names_file_and_line(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, b"ok\nalso ok\nbroken \xff here\n")
    with pytest.raises(DataError, match=r"bad\.txt(\.gz)?:3: invalid UTF-8") as info:
        read_lines(path)
    assert str(path) in str(info.value)


def test_missing_file_and_broken_gzip(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_lines(tmp_path / "absent.txt")
    path = write(tmp_path / "fake.gz", b"")
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"fake\.gz: not a valid gzip file"):
        read_lines(path)


def test_read_parallel_pairs_lines(tmp_path: Path) -> None:
    src = write(tmp_path / "x.de", b"eins\nzwei\n")
    tgt = write(tmp_path / "x.en.gz", b"one\ntwo\n")
    assert read_parallel(src, tgt) == [("eins", "one"), ("zwei", "two")]


def test_read_parallel_unequal_counts_names_both_files_and_counts(tmp_path: Path) -> None:
    src = write(tmp_path / "x.de", b"eins\nzwei\ndrei\n")
    tgt = write(tmp_path / "x.en", b"one\ntwo\n")
    with pytest.raises(DataError) as info:
        read_parallel(src, tgt)
    message = str(info.value)
    assert f"{src} has 3 lines" in message
    assert f"{tgt} has 2" in message


def test_read_tsv(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", b"Haus\thouse\nein Satz\ta sentence\n")
    assert read_tsv(path) == [("Haus", "house"), ("ein Satz", "a sentence")]


@pytest.mark.parametrize(
    ("content", "line", "found"),
    [(b"a\tb\nonly one column\n", 2, 1), (b"a\tb\nc\td\n1\t2\t3\n", 3, 3), (b"a\tb\n\n", 2, 1)],
)
def test_read_tsv_errors_name_file_and_line(
    tmp_path: Path, content: bytes, line: int, found: int
) -> None:
    path = write(tmp_path / "c.tsv", content)
    with pytest.raises(DataError, match=f"c.tsv:{line}: expected 2 tab-separated columns") as info:
        read_tsv(path)
    assert f"found {found}" in str(info.value)


def test_clean_pairs_counts_empty_and_too_long() -> None:
    pairs = [
        (" ein Haus\r", "a house  "),  # kept, stripped
        ("", "nothing"),  # empty source
        ("nichts", "   "),  # empty target after stripping
        ("a b c d", "w x y z"),  # exactly max_len: kept
        ("a b c d e", "x"),  # source too long
        ("x", "v w x y z"),  # target too long
    ]
    kept, stats = clean_pairs(pairs, max_len=4)
    assert kept == [("ein Haus", "a house"), ("a b c d", "w x y z")]
    assert stats == FilterStats(kept=2, empty=2, too_long=2)
    assert stats.total == 6
    assert str(stats) == "kept 2 of 6 pairs (dropped 2 with an empty side, 2 too long)"


def test_clean_pairs_custom_length_and_no_limit() -> None:
    pairs = [("abc", "de"), ("abcdef", "x")]
    kept, stats = clean_pairs(pairs, max_len=3, length_fn=len)
    assert kept == [("abc", "de")] and stats.too_long == 1
    kept, stats = clean_pairs(pairs)
    assert kept == pairs and stats == FilterStats(2, 0, 0)
    with pytest.raises(DataError, match="max_len"):
        clean_pairs(pairs, max_len=0)


def test_split_holdout_is_seeded_disjoint_and_ordered() -> None:
    pairs = [(f"s{i}", f"t{i}") for i in range(100)]
    rest, held = split_holdout(pairs, 10, seed=1)
    assert len(held) == 10 and len(rest) == 90
    assert sorted(rest + held) == sorted(pairs)
    assert held == sorted(held, key=pairs.index)  # corpus order kept
    assert split_holdout(pairs, 10, seed=1) == (rest, held)
    assert split_holdout(pairs, 10, seed=2)[1] != held
    assert split_holdout(pairs, 0, seed=1) == (pairs, [])
    with pytest.raises(DataError, match="cannot hold out 100 of 100"):
        split_holdout(pairs, 100, seed=1)
