"""WMT14: the SGM reader, archive extraction, verified downloads from a local stand-in host."""

from __future__ import annotations

import hashlib
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.http_helpers import serve
from tests.wmt_helpers import FakeWmt14, normalised, tgz

import aiayn.data.wmt14 as wmt14
from aiayn.data import (
    DataConfig,
    DataError,
    encode_pairs,
    load_corpus,
    load_wmt14,
    read_sgm,
    wmt14_dir,
)
from aiayn.data.archives import extract_members
from aiayn.data.sgm import parse_sgm_lines
from aiayn.errors import ConfigError
from aiayn.evaluation.prepared_source import scoring_config
from aiayn.evaluation.scoring_data import evaluation_data, tuning_data, validation_data
from aiayn.preparing import prepare_dataset

N_TRAIN = 600


def test_sgm_reader_keeps_order_unescapes_and_normalises(tmp_path: Path) -> None:
    text = (
        '<srcset setid="newstest2014" srclang="any">\n'
        '<doc docid="a" genre="news" origlang="de">\n'
        '<seg id="1">Standard & Poor&apos;s  sagt &quot;Hallo&quot; &lt;b&gt;</seg>\n'
        '<seg id="2">  Zweiter&#160;Satz &#x263A; &amp;amp; </seg>\n'
        "</doc>\n"
        '<doc docid="b" genre="news" origlang="en">\n'
        '<seg id="1">Dritter Satz: &bogus; &#1114112; bleiben</seg>\n'
        "</doc>\n"
        "</srcset>\n"
    )
    path = tmp_path / "x.sgm"
    path.write_text(text, encoding="utf-8")
    assert read_sgm(path) == [
        'Standard & Poor\'s sagt "Hallo" <b>',  # a bare & stays, entities unescaped
        "Zweiter Satz \u263a &amp;",  # &#160; is a space, then runs of spaces become one
        "Dritter Satz: &bogus; &#1114112; bleiben",  # not entities we know: kept as written
    ]


def test_sgm_reader_names_the_bad_line() -> None:
    with pytest.raises(DataError, match=r"f\.sgm:2: expected <seg id=\"N\">text</seg>"):
        parse_sgm_lines(["<doc>", '<seg id="1">no end', "</doc>"], "f.sgm")
    with pytest.raises(DataError, match=r"f\.sgm:1: expected"):
        parse_sgm_lines(['<seg id="x">text</seg>'], "f.sgm")  # the id is a number
    with pytest.raises(DataError, match=r"f\.sgm: no <seg> lines"):
        parse_sgm_lines(["just text"], "f.sgm")


def test_extract_members_names_a_missing_member(tmp_path: Path) -> None:
    archive = tmp_path / "a.tgz"
    tgz(archive, {"training/europarl-v7.de-en.de": b"x\n", "training/other.txt": b"y\n"})
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        extract_members(
            archive,
            {
                "training/europarl-v7.de-en.de": out / "de",
                "training/europarl-v7.de-en.en": out / "en",
            },
            advice="pass --data-dir",
        )
    message = str(info.value)
    assert "has no member training/europarl-v7.de-en.en" in message
    assert "training/other.txt" in message and message.endswith("; pass --data-dir")
    assert (out / "de").read_bytes() == b"x\n"  # what was there is complete
    assert sorted(p.name for p in out.iterdir()) == ["de"]  # no temporary files
    tgz(archive, {"./training/europarl-v7.de-en.en": b"z\n"})  # a "./" prefix is the same name
    extract_members(archive, {"training/europarl-v7.de-en.en": out / "en"})
    assert (out / "en").read_bytes() == b"z\n"
    (tmp_path / "bad.tgz").write_bytes(b"\x1f\x8bnot a tar")
    with pytest.raises(DataError, match="not a readable tar archive"):
        extract_members(tmp_path / "bad.tgz", {"x": out / "x"})


@pytest.fixture
def fake(multi30k: Path, tmp_path: Path) -> FakeWmt14:
    return FakeWmt14(multi30k, tmp_path / "host", N_TRAIN)


@pytest.fixture
def host(fake: FakeWmt14, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWmt14]:
    """The fake archives served over HTTP, the loader pointed at them (checksums not pinned)."""
    with serve(fake.root) as url:
        monkeypatch.setattr(wmt14, "WMT14_BASE_URL", url)
        yield fake


def test_download_extract_and_load_both_directions(
    host: FakeWmt14, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host.pin(monkeypatch)
    dest = tmp_path / "cache"
    assert load_wmt14("train", "de", "en", data_dir=dest) == host.train
    assert len(host.train) == N_TRAIN
    valid = load_wmt14("newstest2013", "de", "en", data_dir=dest)
    assert valid == [(normalised(s), normalised(t)) for s, t in host.newstest2013]
    test = load_wmt14("newstest2014", "en", "de", data_dir=dest)
    assert test == [(normalised(t), normalised(s)) for s, t in host.newstest2014]
    assert len(valid) == 1014 and len(test) == 1000
    # The archives are cached, and only the de-en members (and the en-de test ones) came out.
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [
        "commoncrawl.de-en.de",
        "commoncrawl.de-en.en",
        "test-full.tgz",
        "test-full/newstest2014-deen-ref.de.sgm",
        "test-full/newstest2014-deen-src.en.sgm",
        "test.tgz",
        "test/newstest2013-src.de.sgm",
        "test/newstest2013-src.en.sgm",
        "training-parallel-commoncrawl.tgz",
        "training-parallel-europarl-v7.tgz",
        "training-parallel-nc-v9.tgz",
        "training/europarl-v7.de-en.de",
        "training/europarl-v7.de-en.en",
        "training/news-commentary-v9.de-en.de",
        "training/news-commentary-v9.de-en.en",
    ]
    # Files on disk are used as they are: the host is no longer needed.
    shutil.rmtree(host.root)
    assert load_wmt14("train", "en", "de", data_dir=dest) == [(t, s) for s, t in host.train]


def test_checksum_mismatch_is_refused_and_leaves_nothing(host: FakeWmt14, tmp_path: Path) -> None:
    dest = tmp_path / "cache"  # the built-in (real) checksums cannot match the fake archives
    with pytest.raises(DataError) as info:
        load_wmt14("train", "de", "en", data_dir=dest)
    message = str(info.value)
    assert "checksum mismatch for training-parallel-europarl-v7.tgz" in message
    assert wmt14.ARCHIVES["europarl"].digest in message
    assert "--data-dir" in message
    assert list(dest.iterdir()) == []
    with pytest.raises(DataError, match=r"checksum mismatch for test-full\.tgz.*expected md5"):
        load_wmt14("newstest2014", "de", "en", data_dir=dest)
    assert list(dest.iterdir()) == []


def test_a_pinned_sha256_replaces_the_built_in_check(host: FakeWmt14, tmp_path: Path) -> None:
    real = hashlib.sha256(host.archive("newstest2014").read_bytes()).hexdigest()
    pins = tmp_path / "SHA256SUMS"
    pins.write_text(f"# mine\n{real}  test-full.tgz\n", encoding="utf-8")
    dest = tmp_path / "cache"
    pairs = load_wmt14("newstest2014", "de", "en", data_dir=dest, checksum_file=pins)
    assert pairs == [(normalised(s), normalised(t)) for s, t in host.newstest2014]
    pins.write_text(f"{'0' * 64}  test.tgz\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"checksum mismatch for test\.tgz .*expected sha256 0+,"):
        load_wmt14("newstest2013", "de", "en", data_dir=dest, checksum_file=pins)
    pins.write_text(f"{real}  test-fool.tgz\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"SHA256SUMS:1: test-fool\.tgz is not a WMT14 archive"):
        load_wmt14("newstest2013", "de", "en", data_dir=dest, checksum_file=pins)


def test_an_archive_without_the_member_names_it(
    host: FakeWmt14, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tgz(host.archive("commoncrawl"), {"commoncrawl.de-en.de": b"Hallo\n"})
    host.pin(monkeypatch)
    with pytest.raises(DataError) as info:
        load_wmt14("train", "de", "en", data_dir=tmp_path / "cache")
    message = str(info.value)
    assert "training-parallel-commoncrawl.tgz has no member commoncrawl.de-en.en" in message
    assert "--data-dir" in message


def test_local_archives_and_unpacked_files_need_no_host(fake: FakeWmt14, tmp_path: Path) -> None:
    archives = tmp_path / "archives"  # the archives downloaded by hand, side by side
    archives.mkdir()
    for part in wmt14.ARCHIVES:
        shutil.copy(fake.archive(part), archives)
    assert load_wmt14("train", "de", "en", data_dir=archives, download=False) == fake.train
    load_wmt14("newstest2013", "de", "en", data_dir=archives, download=False)  # unpacks test/
    unpacked = tmp_path / "unpacked"  # the files unpacked (as by tar xzf), no archive
    shutil.copytree(archives / "test", unpacked / "test")
    pairs = load_wmt14("newstest2013", "en", "de", data_dir=unpacked, download=False)
    assert pairs == [(normalised(t), normalised(s)) for s, t in fake.newstest2013]
    with pytest.raises(DataError) as info:
        load_wmt14("newstest2014", "de", "en", data_dir=unpacked, download=False)
    assert "test-full/newstest2014-deen-src.de.sgm not found in" in str(info.value)
    assert "nor test-full.tgz" in str(info.value) and "--data-dir" in str(info.value)


def test_an_unresponsive_host_times_out_with_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        monkeypatch.setattr(
            wmt14, "WMT14_BASE_URL", f"http://127.0.0.1:{listener.getsockname()[1]}"
        )
        monkeypatch.setattr(wmt14, "DOWNLOAD_TIMEOUT_S", 0.5)
        dest = tmp_path / "cache"
        start = time.monotonic()
        with pytest.raises(DataError) as info:
            load_wmt14("newstest2013", "de", "en", data_dir=dest)
        assert time.monotonic() - start < 10
    message = str(info.value)
    assert message.startswith("could not download test.tgz from http://127.0.0.1:")
    assert "timed out" in message
    assert message.endswith(
        f"yourself into {dest}, or pass --data-dir (data.data_dir) pointing to a folder with "
        "the WMT14 archives or the files unpacked from them"
    )
    assert list(dest.iterdir()) == []


def test_the_wmt14_corpus_of_a_data_config(fake: FakeWmt14, tmp_path: Path) -> None:
    folder = tmp_path / "wmt14"
    folder.mkdir()
    for part in wmt14.ARCHIVES:
        shutil.copy(fake.archive(part), folder)
    config = DataConfig(corpus="wmt14", src_lang="en", tgt_lang="de", data_dir=str(folder))
    assert config.name == "wmt14:en-de"
    corpus = load_corpus(config)
    assert corpus.stats.total == N_TRAIN and len(corpus.train) == corpus.stats.kept > 0
    assert corpus.valid[0] == tuple(normalised(x) for x in reversed(fake.newstest2013[0]))
    with pytest.raises(ConfigError, match="'wmt14' is de-en or en-de, got fr-en"):
        DataConfig(corpus="wmt14", src_lang="fr", tgt_lang="en")
    with pytest.raises(DataError, match="unknown WMT14 split 'dev'"):
        load_wmt14("dev", "de", "en", data_dir=folder)


def test_wmt14_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert wmt14_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert wmt14_dir() == tmp_path / "xdg" / "aiayn" / "wmt14"


def test_every_archive_is_pinned() -> None:
    lengths = {"sha256": 64, "md5": 32}
    for archive in wmt14.ARCHIVES.values():
        assert len(archive.digest) == lengths[archive.algorithm]
        assert int(archive.digest, 16) >= 0 and archive.published_by
    assert [a.algorithm for a in wmt14.ARCHIVES.values()].count("sha256") == 3


def test_a_wmt14_run_is_scored_on_newstest2014_and_validated_on_newstest2013(
    fake: FakeWmt14, tmp_path: Path
) -> None:
    folder = tmp_path / "wmt14"
    folder.mkdir()
    for part in ("newstest2013", "newstest2014"):  # no training archives: none are read
        shutil.copy(fake.archive(part), folder)
    config = DataConfig(corpus="wmt14", data_dir=str(folder), max_valid_pairs=100)
    test = evaluation_data(config)
    assert (test.name, len(test), test.run_validation) == ("newstest2014.de-en", 1000, False)
    assert test.references[0] == normalised(fake.newstest2014[0][1])
    valid = validation_data(config)
    assert (valid.name, len(valid), valid.run_validation) == ("newstest2013.de-en", 100, True)
    assert "at most 100 by data.max_valid_pairs" in valid.description
    assert tuning_data(config).sources == valid.sources
    moved = tmp_path / "moved"
    folder.rename(moved)
    assert len(evaluation_data(config, data_dir=moved)) == 1000  # --data-dir applies to WMT14


def test_prepare_streams_wmt14_and_validates_on_newstest2013(
    fake: FakeWmt14, tmp_path: Path
) -> None:
    folder = tmp_path / "wmt14"
    folder.mkdir()
    for part in wmt14.ARCHIVES:
        shutil.copy(fake.archive(part), folder)
    config = DataConfig(
        corpus="wmt14",
        src_lang="en",
        tgt_lang="de",
        data_dir=str(folder),
        vocab_size=500,
        max_len=20,  # some pairs dropped, as training drops them
        max_train_pairs=500,  # the limit crosses from the second corpus into the third
        max_valid_pairs=50,
    )
    dataset = prepare_dataset(config, tmp_path / "prepared", workers=1, chunk=70)
    corpus = load_corpus(config)
    assert 0 < len(corpus.train) < 500
    # newstest2013 (the first 50), not a held-out slice of the training pairs.
    assert dataset.valid_text == corpus.valid
    assert corpus.valid[0] == tuple(normalised(x) for x in reversed(fake.newstest2013[0]))
    assert dataset.manifest["notes"] == []
    assert list(dataset.train) == encode_pairs(corpus.train, dataset.vocabularies())
    assert dataset.manifest["filtered"] == str(corpus.stats)
    # A run trained from it is tested as a WMT14 run: on newstest2014.
    run_data = DataConfig(corpus="prepared", prepared_dir=str(tmp_path / "prepared"))
    assert validation_data(run_data).sources == [s for s, _ in corpus.valid]
    source = scoring_config(run_data)
    assert (source.corpus, source.data_dir) == ("wmt14", str(folder))
    test = evaluation_data(source)
    assert (test.name, len(test)) == ("newstest2014.en-de", 1000)
    assert scoring_config(config) is config
