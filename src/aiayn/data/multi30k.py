"""Multi30k (task 1) as a named corpus: image captions in English, German, French and Czech.

Files are looked up in one folder (see ``multi30k_dir``) under their upstream names:
``<split>.<lang>.gz`` for the raw sentences and ``<split>.lc.norm.tok.<lang>`` (or the same
name + ``.gz``) for the lowercased, Moses-tokenised references that the multimodal-MT
literature scores BLEU against. A missing file is downloaded from the dataset's public GitHub
repository at a pinned commit and checked against the SHA-256 sums in ``multi30k_checksums``;
files already on disk are trusted (but must decode).
"""

from __future__ import annotations

import os
from pathlib import Path

from aiayn.data.download import DEFAULT_TIMEOUT_S, download_file
from aiayn.data.errors import DataError
from aiayn.data.multi30k_checksums import RAW_SHA256, TOK_SHA256
from aiayn.data.text_files import Pair, PathLike, read_lines, read_parallel

MULTI30K_COMMIT = "a3d2e0d26b56f3846f66a952536ffed4e401d05a"
"""The commit of the upstream repository ``multi30k/dataset`` that downloads read."""

# Read at call time, so tests (or a mirror) can point it elsewhere. Downloads append
# "/raw/<split>.<lang>.gz" or "/tok/<split>.lc.norm.tok.<lang>".
MULTI30K_BASE_URL = (
    f"https://raw.githubusercontent.com/multi30k/dataset/{MULTI30K_COMMIT}/data/task1"
)

SPLIT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "train": ("en", "de", "fr", "cs"),
    "val": ("en", "de", "fr", "cs"),
    "test_2016_flickr": ("en", "de", "fr", "cs"),
    "test_2017_flickr": ("en", "de", "fr"),
    "test_2017_mscoco": ("en", "de", "fr"),
    "test_2018_flickr": ("en", "de", "fr", "cs"),
}
"""Which languages each split has upstream."""

SPLITS: tuple[str, ...] = tuple(SPLIT_LANGUAGES)
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "cs")

DATA_DIR_ENV = "AIAYN_DATA_DIR"


def multi30k_dir(data_dir: PathLike | None = None) -> Path:
    """Where the Multi30k files live (or will be downloaded to).

    Args:
        data_dir: An explicit folder (e.g. from ``--data-dir``); wins if given.

    Returns:
        ``data_dir`` if given; else ``$AIAYN_DATA_DIR`` if set (the folder holding the files
        themselves, not a parent); else ``$XDG_CACHE_HOME/aiayn/multi30k``, with
        ``XDG_CACHE_HOME`` defaulting to ``~/.cache``.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "aiayn" / "multi30k"


def _check_split_lang(split: str, lang: str) -> None:
    if split not in SPLIT_LANGUAGES:
        raise DataError(f"unknown Multi30k split {split!r}; choose one of {', '.join(SPLITS)}")
    if lang not in SPLIT_LANGUAGES[split]:
        raise DataError(
            f"Multi30k split {split!r} has no language {lang!r}; it has "
            f"{', '.join(SPLIT_LANGUAGES[split])}"
        )


def _advice(folder: Path) -> str:
    return (
        f"download it yourself into {folder} or pass --data-dir pointing to a folder with the "
        "Multi30k files"
    )


def _raw_file(split: str, lang: str, folder: Path, download: bool) -> Path:
    """The path of ``<split>.<lang>.gz``, downloading it if it is missing and allowed."""
    name = f"{split}.{lang}.gz"
    path = folder / name
    if path.exists():
        return path
    if not download:
        raise DataError(f"{name} not found in {folder}; allow downloading or {_advice(folder)}")
    return download_file(
        f"{MULTI30K_BASE_URL}/raw/{name}",
        path,
        RAW_SHA256[name],
        timeout=DEFAULT_TIMEOUT_S,
        advice=_advice(folder),
    )


def load_multi30k(
    split: str,
    src_lang: str,
    tgt_lang: str,
    data_dir: PathLike | None = None,
    download: bool = True,
) -> list[Pair]:
    """Load one split of Multi30k as aligned (source, target) sentence pairs.

    The sentences are returned exactly as in the files (only line ends removed); use
    ``clean_pairs`` before training.

    Args:
        split: One of ``SPLITS`` (``train``, ``val``, ``test_2016_flickr``, ...).
        src_lang: Source language: ``en``, ``de``, ``fr`` or ``cs`` (not every split has all).
        tgt_lang: Target language, as ``src_lang``.
        data_dir: The folder holding the files; see ``multi30k_dir`` for the default.
        download: Download missing files from the pinned upstream commit.

    Returns:
        The split's pairs, in corpus order (e.g. 29000 for ``train``).

    Raises:
        DataError: For an unknown split, a language the split lacks (the message lists those
            it has), a missing file that may not or could not be downloaded, a failed checksum,
            or files that do not decode or do not align.
    """
    _check_split_lang(split, src_lang)
    _check_split_lang(split, tgt_lang)
    folder = multi30k_dir(data_dir)
    src = _raw_file(split, src_lang, folder, download)
    tgt = _raw_file(split, tgt_lang, folder, download)
    return read_parallel(src, tgt)


def load_multi30k_tok_reference(
    split: str,
    lang: str,
    data_dir: PathLike | None = None,
    download: bool = True,
) -> list[str] | None:
    """Load the tokenised reference of a split: lowercased, punctuation-normalised, Moses-tokenised.

    These are the references of the literature's "tokenised BLEU" on Multi30k. Looks for
    ``<split>.lc.norm.tok.<lang>`` and then the same name with ``.gz``.

    Args:
        split: One of ``SPLITS``.
        lang: A language the split has.
        data_dir: The folder holding the files; see ``multi30k_dir`` for the default.
        download: Download the (plain-text) reference if neither file is present.

    Returns:
        One reference line per sentence of the split, or None if the reference is not on disk
        and ``download`` is False (it is optional: scoring can fall back to detokenised BLEU).

    Raises:
        DataError: For an unknown split or language, or a download that fails.
    """
    _check_split_lang(split, lang)
    folder = multi30k_dir(data_dir)
    name = f"{split}.lc.norm.tok.{lang}"
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return read_lines(candidate)
    if not download:
        return None
    path = download_file(
        f"{MULTI30K_BASE_URL}/tok/{name}",
        folder / name,
        TOK_SHA256[name],
        timeout=DEFAULT_TIMEOUT_S,
        advice=_advice(folder),
    )
    return read_lines(path)
