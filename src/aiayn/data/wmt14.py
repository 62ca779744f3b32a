"""WMT14 English-German as a named corpus: the paper's 4.5M training pairs and its test sets.

What "Attention Is All You Need" trained and tested on (section 5.1), as the paper's
successors (tensor2tensor, fairseq) assemble it:

- training: europarl-v7, commoncrawl and news-commentary-v9, de-en, concatenated in that order;
- validation: newstest2013 (3,000 sentences), from WMT13's test archive;
- test: newstest2014 in its "full" release (3,003 sentences; the "filtered" one has 2,737),
  the set sacreBLEU calls ``wmt14/full``.

Each part comes from one of the archives in `ARCHIVES`, pinned by URL and checksum. Files are
looked up in one folder (see `wmt14_dir`) under the names the archives give them, so a folder
where the archives were unpacked by hand (``tar xzf``) works as it is. A missing file is taken
from its archive in the folder (only the de-en members are extracted), and a missing archive is
downloaded and verified first. Archives and files already on disk are trusted.

Checksums: the three training archives are pinned by SHA-256 as recorded by TensorFlow
Datasets (``url_checksums/wmt14_translate.txt``). For the two test archives the only published
checksums found are MD5 sums (sacreBLEU's dataset table); they are checked as such. No
SHA-256 is made up: pin one yourself with ``data.checksum_file`` (lines of ``sha256sum``
output: ``<sha256>  <archive file name>``), which replaces the built-in check of the archives
it names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from aiayn.data.archives import extract_members
from aiayn.data.download import DEFAULT_TIMEOUT_S, download_file
from aiayn.data.errors import DataError
from aiayn.data.sgm import read_sgm
from aiayn.data.text_files import Pair, PathLike, read_lines, read_parallel

# Read at call time, so tests (or a mirror) can point them elsewhere. Downloads append
# "/" + Archive.url_path.
WMT14_BASE_URL = "https://www.statmt.org"
DOWNLOAD_TIMEOUT_S = DEFAULT_TIMEOUT_S  # seconds to wait for the server at each step


@dataclass(frozen=True)
class Archive:
    """One published archive: where it is, how it is checked, which file name it gets."""

    url_path: str  # under WMT14_BASE_URL, e.g. "wmt13/training-parallel-europarl-v7.tgz"
    algorithm: str  # "sha256", or "md5" where that is all that was published
    digest: str  # hex digest of the archive's bytes
    published_by: str  # where the digest comes from

    @property
    def name(self) -> str:
        """The archive's file name, as a download by hand names it."""
        return self.url_path.rsplit("/", 1)[-1]


_TFDS = "TensorFlow Datasets url_checksums/wmt14_translate.txt"
ARCHIVES: dict[str, Archive] = {
    "europarl": Archive(
        "wmt13/training-parallel-europarl-v7.tgz",
        "sha256",
        "0224c7c710c8a063dfd893b0cc0830202d61f4c75c17eb8e31836103d27d96e7",
        _TFDS,
    ),
    "commoncrawl": Archive(
        "wmt13/training-parallel-commoncrawl.tgz",
        "sha256",
        "c7a74e2ea01ac6c920123108627e35278d4ccb5701e15428ffa34de86fa3a9e5",
        _TFDS,
    ),
    "news-commentary": Archive(
        "wmt14/training-parallel-nc-v9.tgz",
        "sha256",
        "cb8953f292298e6877ae433c98912b927cb0766b303f4540512ddd286c748485",
        _TFDS,
    ),
    "newstest2013": Archive(
        "wmt13/test.tgz", "md5", "48eca5d02f637af44e85186847141f67", "sacreBLEU (wmt13)"
    ),
    "newstest2014": Archive(
        "wmt14/test-full.tgz", "md5", "a8cd784e006feb32ac6f3d9ec7eb389a", "sacreBLEU (wmt14/full)"
    ),
}
"""The archives WMT14 en-de is made of, by part."""

TRAIN_PARTS: dict[str, str] = {
    "europarl": "training/europarl-v7.de-en.{lang}",
    "commoncrawl": "commoncrawl.de-en.{lang}",
    "news-commentary": "training/news-commentary-v9.de-en.{lang}",
}
"""Training part -> its member name in the part's archive ({lang}: de or en)."""

TEST_MEMBERS: dict[str, tuple[str, str]] = {
    # WMT13 shipped every language of newstest2013 as a "src" file.
    "newstest2013": ("test/newstest2013-src.{lang}.sgm", "test/newstest2013-src.{lang}.sgm"),
    "newstest2014": (
        "test-full/newstest2014-deen-src.{lang}.sgm",
        "test-full/newstest2014-deen-ref.{lang}.sgm",
    ),
}
"""Test set -> (source member, reference member) in its archive, as sacreBLEU reads them."""

WMT14_SPLITS = ("train", "newstest2013", "newstest2014")
WMT14_LANGUAGES = ("de", "en")


def wmt14_dir(data_dir: PathLike | None = None) -> Path:
    """Where the WMT14 files live (or will be downloaded to).

    Args:
        data_dir: An explicit folder (``data.data_dir``, ``--data-dir``); wins if given.

    Returns:
        ``data_dir`` if given, else ``$XDG_CACHE_HOME/aiayn/wmt14`` (``~/.cache`` by default).
        ``$AIAYN_DATA_DIR`` is Multi30k's folder and is not used here.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "aiayn" / "wmt14"


def read_checksum_file(path: PathLike) -> dict[str, str]:
    """Pinned SHA-256 sums from a ``sha256sum``-style file: ``<64 hex>  <archive file name>``.

    Blank lines and lines starting with ``#`` are skipped; a ``*`` before the name (binary
    mode) is allowed.

    Returns:
        Archive file name -> SHA-256 hex digest (lowercase).

    Raises:
        DataError: a malformed line or a name that is none of `ARCHIVES`' file names (the
            message names the file and line).
    """
    known = {archive.name for archive in ARCHIVES.values()}
    pins: dict[str, str] = {}
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*", line)
        if match is None:
            raise DataError(f"{path}:{number}: expected '<sha256>  <archive name>', got {line!r}")
        digest, name = match.groups()
        if name not in known:
            raise DataError(f"{path}:{number}: {name} is not a WMT14 archive; use one of {known}")
        pins[name] = digest.lower()
    return pins


def load_wmt14(
    split: str,
    src_lang: str,
    tgt_lang: str,
    data_dir: PathLike | None = None,
    download: bool = True,
    checksum_file: PathLike | None = None,
) -> list[Pair]:
    """Load one split of WMT14 de-en / en-de as aligned (source, target) pairs.

    Training text is returned as in the files (use ``clean_pairs``); the test sets as the SGM
    reader gives them (unescaped, whitespace-normalised, as sacreBLEU reads them).

    Args:
        split: ``train`` (about 4.5M pairs), ``newstest2013`` (3,000) or ``newstest2014``
            (3,003).
        src_lang: ``de`` or ``en``.
        tgt_lang: the other one.
        data_dir: the folder of the files and archives; see `wmt14_dir`.
        download: download missing archives; else a missing file is an error.
        checksum_file: pinned SHA-256 sums (see `read_checksum_file`) replacing the built-in
            checks of the archives they name.

    Raises:
        DataError: an unknown split or language pair, a file that is missing and may not or
            could not be downloaded (the message says how to provide it), a failed checksum,
            an archive without the expected member, or files that do not align.
    """
    if split not in WMT14_SPLITS:
        raise DataError(f"unknown WMT14 split {split!r}; choose one of {', '.join(WMT14_SPLITS)}")
    if {src_lang, tgt_lang} != set(WMT14_LANGUAGES):
        raise DataError(f"WMT14 here is de-en or en-de, got {src_lang}-{tgt_lang}")
    if split == "train":
        pairs: list[Pair] = []
        files = wmt14_train_files(src_lang, tgt_lang, data_dir, download, checksum_file)
        for src_path, tgt_path in files:
            pairs += read_parallel(src_path, tgt_path)
        return pairs
    folder = wmt14_dir(data_dir)
    pins = read_checksum_file(checksum_file) if checksum_file else {}
    src, tgt = TEST_MEMBERS[split]
    src, tgt = src.format(lang=src_lang), tgt.format(lang=tgt_lang)
    _ensure(folder, split, [src, tgt], download, pins)
    sources, targets = read_sgm(folder / src), read_sgm(folder / tgt)
    if len(sources) != len(targets):
        raise DataError(
            f"{folder / src} has {len(sources)} segments but {folder / tgt} has {len(targets)}"
        )
    return list(zip(sources, targets, strict=True))


def wmt14_train_files(
    src_lang: str,
    tgt_lang: str,
    data_dir: PathLike | None = None,
    download: bool = True,
    checksum_file: PathLike | None = None,
) -> list[tuple[Path, Path]]:
    """The aligned (source, target) text files of WMT14's training corpora, in corpus order.

    For reading the 4.5M pairs as a stream (`aiayn prepare`) rather than as one list.

    Args:
        src_lang: ``de`` or ``en``.
        tgt_lang: the other one.
        data_dir: the folder of the files and archives; see `wmt14_dir`.
        download: download missing archives; else a missing file is an error.
        checksum_file: pinned SHA-256 sums (see `read_checksum_file`).

    Returns:
        One (source file, target file) per corpus: europarl, commoncrawl, news-commentary;
        each pair present on disk (extracted, downloaded if needed), not yet checked to align.

    Raises:
        DataError: as `load_wmt14`.
    """
    if {src_lang, tgt_lang} != set(WMT14_LANGUAGES):
        raise DataError(f"WMT14 here is de-en or en-de, got {src_lang}-{tgt_lang}")
    folder = wmt14_dir(data_dir)
    pins = read_checksum_file(checksum_file) if checksum_file else {}
    files = []
    for part, member in TRAIN_PARTS.items():
        src, tgt = member.format(lang=src_lang), member.format(lang=tgt_lang)
        _ensure(folder, part, [src, tgt], download, pins)
        files.append((folder / src, folder / tgt))
    return files


def _advice(folder: Path, archive: Archive) -> str:
    return (
        f"download {archive.name} ({WMT14_BASE_URL}/{archive.url_path}) yourself into {folder}, "
        "or pass --data-dir (data.data_dir) pointing to a folder with the WMT14 archives or "
        "the files unpacked from them"
    )


def _ensure(
    folder: Path, part: str, members: list[str], download: bool, pins: dict[str, str]
) -> None:
    """Make ``folder/<member>`` exist for each member: extract from the archive, download it."""
    missing = [m for m in members if not (folder / m).exists()]
    if not missing:
        return
    archive = ARCHIVES[part]
    path = folder / archive.name
    if not path.exists():
        if not download:
            raise DataError(
                f"{missing[0]} not found in {folder}, nor {archive.name} to take it from; "
                f"allow downloading or {_advice(folder, archive)}"
            )
        pinned = pins.get(archive.name)
        download_file(
            f"{WMT14_BASE_URL}/{archive.url_path}",
            path,
            pinned or archive.digest,
            timeout=DOWNLOAD_TIMEOUT_S,
            advice=_advice(folder, archive),
            algorithm="sha256" if pinned else archive.algorithm,
        )
    extract_members(path, {m: folder / m for m in missing}, advice=_advice(folder, archive))
