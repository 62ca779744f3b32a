"""A small stand-in for the WMT14 download host, made of Multi30k text.

`make_fake_wmt14` lays Multi30k out as the five WMT archives are laid out (same URL paths,
same member names, decoy members of other language pairs beside the de-en ones): its training
pairs split over europarl / commoncrawl / news-commentary, its val split as newstest2013 and
test_2016_flickr as newstest2014, both in WMT's SGM form with a few characters escaped.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

import aiayn.data.wmt14 as wmt14
from aiayn.data import Pair, load_multi30k

ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def sgm(sentences: list[str], lang: str, kind: str = "src", per_doc: int = 7) -> bytes:
    """WMT's fake SGML: documents of `per_doc` segments whose ids restart at 1."""
    tag = "srcset" if kind == "src" else "refset"
    lines = [f'<{tag} setid="fake" srclang="any" trglang="{lang}">']
    for start in range(0, len(sentences), per_doc):
        lines.append(f'<doc docid="doc{start}" genre="news" origlang="{lang}">')
        for i, text in enumerate(sentences[start : start + per_doc], start=1):
            escaped = "".join(ESCAPES.get(c, c) for c in text)
            lines.append(f'<seg id="{i}">{escaped}</seg>')
        lines.append("</doc>")
    lines.append(f"</{tag}>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def tgz(path: Path, members: dict[str, bytes]) -> None:
    """Write a gzipped tar with these members (name -> bytes), in this order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _lines(sentences: list[str]) -> bytes:
    return "".join(s + "\n" for s in sentences).encode("utf-8")


def normalised(text: str) -> str:
    """A sentence as the SGM reader gives it back: whitespace runs made one space."""
    return " ".join(text.split())


class FakeWmt14:
    """The archives under `root` (as the host serves them) and what they hold, de-en."""

    def __init__(self, multi30k: Path, root: Path, n_train: int, n_test: int | None = None) -> None:
        self.root = root
        train = load_multi30k("train", "de", "en", data_dir=multi30k, download=False)[:n_train]
        third = len(train) // 3
        self.parts: dict[str, list[Pair]] = {
            "europarl": train[:third],
            "commoncrawl": train[third : 2 * third],
            "news-commentary": train[2 * third :],
        }
        self.newstest2013 = load_multi30k("val", "de", "en", data_dir=multi30k, download=False)
        self.newstest2014 = load_multi30k(
            "test_2016_flickr", "de", "en", data_dir=multi30k, download=False
        )[:n_test]
        for part, member in wmt14.TRAIN_PARTS.items():
            pairs = self.parts[part]
            decoy = member.replace("de-en", "fr-en").format(lang="fr")
            tgz(
                root / wmt14.ARCHIVES[part].url_path,
                {
                    decoy: b"not de-en\n",
                    member.format(lang="de"): _lines([s for s, _ in pairs]),
                    member.format(lang="en"): _lines([t for _, t in pairs]),
                },
            )
        de13, en13 = zip(*self.newstest2013, strict=True)
        tgz(
            root / wmt14.ARCHIVES["newstest2013"].url_path,
            {
                "test/newstest2013-src.de.sgm": sgm(list(de13), "de"),
                "test/newstest2013-src.en.sgm": sgm(list(en13), "en"),
                "test/newstest2013-src.fr.sgm": sgm(["pas de-en"], "fr"),
            },
        )
        de14, en14 = zip(*self.newstest2014, strict=True)
        tgz(
            root / wmt14.ARCHIVES["newstest2014"].url_path,
            {
                "test-full/newstest2014-deen-src.de.sgm": sgm(list(de14), "de"),
                "test-full/newstest2014-deen-src.en.sgm": sgm(list(en14), "en"),
                "test-full/newstest2014-deen-ref.de.sgm": sgm(list(de14), "de", "ref"),
                "test-full/newstest2014-deen-ref.en.sgm": sgm(list(en14), "en", "ref"),
            },
        )

    @property
    def train(self) -> list[Pair]:
        """All training pairs, in the corpus order (europarl, commoncrawl, news-commentary)."""
        return [p for part in wmt14.TRAIN_PARTS for p in self.parts[part]]

    def archive(self, part: str) -> Path:
        return self.root / wmt14.ARCHIVES[part].url_path

    def pin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the built-in checksums those of these archives (same algorithms as upstream)."""
        pinned = {}
        for part, archive in wmt14.ARCHIVES.items():
            digest = hashlib.new(archive.algorithm, self.archive(part).read_bytes()).hexdigest()
            pinned[part] = replace(archive, digest=digest)
        monkeypatch.setattr(wmt14, "ARCHIVES", pinned)
