"""Multi30k: loading from the shared copy, folder resolution, and verified downloads."""

from __future__ import annotations

import gzip
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.http_helpers import QuietHandler, serve

import aiayn.data.multi30k as m30k
from aiayn.data import (
    SPLITS,
    DataError,
    load_multi30k,
    load_multi30k_tok_reference,
    multi30k_dir,
)


@pytest.mark.parametrize(
    ("split", "n"), [("train", 29000), ("val", 1014), ("test_2016_flickr", 1000)]
)
def test_load_splits_from_fixture(multi30k: Path, split: str, n: int) -> None:
    pairs = load_multi30k(split, "de", "en", data_dir=multi30k, download=False)
    assert len(pairs) == n
    assert all(isinstance(s, str) and isinstance(t, str) for s, t in pairs)


def test_first_train_pair_is_what_the_files_say(multi30k: Path) -> None:
    src, tgt = load_multi30k("train", "de", "en", data_dir=multi30k, download=False)[0]
    assert src == "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."
    assert tgt == "Two young, White males are outside near many bushes."
    with gzip.open(multi30k / "train.de.gz", "rt", encoding="utf-8") as f:
        assert f.readline().rstrip("\n") == src
    # Direction is respected: en-de swaps the sides.
    assert load_multi30k("train", "en", "de", data_dir=multi30k, download=False)[0] == (tgt, src)


def test_missing_language_names_the_split_languages(multi30k: Path) -> None:
    with pytest.raises(
        DataError, match="'test_2017_mscoco' has no language 'cs'; it has en, de, fr"
    ):
        load_multi30k("test_2017_mscoco", "cs", "en", data_dir=multi30k)
    with pytest.raises(DataError, match="has no language 'xx'"):
        load_multi30k("train", "de", "xx", data_dir=multi30k)
    with pytest.raises(DataError, match="unknown Multi30k split 'test'; choose one of train, val"):
        load_multi30k("test", "de", "en", data_dir=multi30k)


def test_missing_file_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"val\.de\.gz not found in .*--data-dir"):
        load_multi30k("val", "de", "en", data_dir=tmp_path, download=False)
    assert load_multi30k_tok_reference("val", "de", data_dir=tmp_path, download=False) is None


def test_tok_reference_from_fixture(multi30k: Path) -> None:
    ref = load_multi30k_tok_reference("test_2016_flickr", "de", data_dir=multi30k, download=False)
    assert ref is not None and len(ref) == 1000
    assert ref[0] == ref[0].lower()  # lowercased references


def test_multi30k_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIAYN_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert multi30k_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert multi30k_dir() == tmp_path / "env"
    monkeypatch.delenv("AIAYN_DATA_DIR")
    assert multi30k_dir() == tmp_path / "xdg" / "aiayn" / "multi30k"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert multi30k_dir() == tmp_path / "home" / ".cache" / "aiayn" / "multi30k"


def test_every_split_language_has_checksums() -> None:
    for split in SPLITS:
        for lang in m30k.SPLIT_LANGUAGES[split]:
            assert len(m30k.RAW_SHA256[f"{split}.{lang}.gz"]) == 64
            assert len(m30k.TOK_SHA256[f"{split}.lc.norm.tok.{lang}"]) == 64


# --- downloads, from a local stand-in for the upstream repository ---------------------------


class _TruncatingHandler(QuietHandler):
    """Promises more bytes than it sends, then hangs up: a download cut off midway."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"x" * 5000)


@pytest.fixture
def upstream(multi30k: Path, tmp_path: Path) -> Path:
    """A folder laid out like upstream's data/task1: raw/*.gz and plain tok/* references."""
    root = tmp_path / "upstream"
    (root / "raw").mkdir(parents=True)
    (root / "tok").mkdir()
    for name in ("val.de.gz", "val.en.gz"):
        shutil.copy(multi30k / name, root / "raw" / name)
    with gzip.open(multi30k / "test_2016_flickr.lc.norm.tok.en.gz", "rb") as f:
        (root / "tok" / "test_2016_flickr.lc.norm.tok.en").write_bytes(f.read())
    return root


@pytest.fixture
def serve_upstream(upstream: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with serve(upstream) as url:
        monkeypatch.setattr(m30k, "MULTI30K_BASE_URL", url)
        yield upstream


def test_download_verifies_and_loads(multi30k: Path, serve_upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cache"
    pairs = load_multi30k("val", "de", "en", data_dir=dest)
    assert pairs == load_multi30k("val", "de", "en", data_dir=multi30k, download=False)
    assert sorted(p.name for p in dest.iterdir()) == ["val.de.gz", "val.en.gz"]  # no leftovers
    ref = load_multi30k_tok_reference("test_2016_flickr", "en", data_dir=dest)
    expected = load_multi30k_tok_reference("test_2016_flickr", "en", data_dir=multi30k)
    assert ref == expected and ref is not None and len(ref) == 1000
    assert (dest / "test_2016_flickr.lc.norm.tok.en").exists()
    # Present files are used as they are: a second load needs no server.
    (serve_upstream / "raw" / "val.de.gz").unlink()
    assert load_multi30k("val", "de", "en", data_dir=dest) == pairs


def test_download_http_error(serve_upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match=r"could not download val\.fr\.gz .*HTTP Error 404"):
        load_multi30k("val", "fr", "en", data_dir=dest)
    assert list(dest.iterdir()) == []


def test_download_checksum_mismatch_leaves_nothing(serve_upstream: Path, tmp_path: Path) -> None:
    (serve_upstream / "raw" / "val.de.gz").write_bytes(gzip.compress(b"tampered\n"))
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match=r"checksum mismatch for val\.de\.gz") as info:
        load_multi30k("val", "de", "en", data_dir=dest)
    assert m30k.RAW_SHA256["val.de.gz"] in str(info.value)
    assert list(dest.iterdir()) == []


def test_download_cut_off_midway_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(tmp_path, _TruncatingHandler) as url:
        monkeypatch.setattr(m30k, "MULTI30K_BASE_URL", url)
        dest = tmp_path / "cache"
        with pytest.raises(DataError, match=r"could not download val\.de\.gz .*more expected"):
            load_multi30k("val", "de", "en", data_dir=dest)
        assert list(dest.iterdir()) == []


def test_offline_error_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # find a port, then close it: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(m30k, "MULTI30K_BASE_URL", f"http://127.0.0.1:{port}")
    dest = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        load_multi30k("train", "de", "en", data_dir=dest)
    message = str(info.value)
    assert message.startswith("could not download train.de.gz from http://127.0.0.1:")
    assert "refused" in message.lower()
    assert message.endswith(
        f"download it yourself into {dest} or pass --data-dir pointing to a folder with the "
        "Multi30k files"
    )
    assert list(dest.iterdir()) == []
