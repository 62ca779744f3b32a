"""Scoring: sacreBLEU/chrF and the literature's lowercased, Moses-tokenised BLEU."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest

from aiayn.evaluation import literature_tokenize, sacrebleu_scores, tokenized_bleu

LANGS = ("en", "de", "fr", "cs")


def read_gz_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


@pytest.mark.parametrize("lang", LANGS)
def test_pipeline_reproduces_multi30k_tokenised_references(multi30k: Path, lang: str) -> None:
    raw = read_gz_lines(multi30k / f"test_2016_flickr.{lang}.gz")
    ref = read_gz_lines(multi30k / f"test_2016_flickr.lc.norm.tok.{lang}.gz")
    assert len(raw) == len(ref) == 1000
    mismatches = [
        (i, got, want)
        for i, (line, want) in enumerate(zip(raw, ref, strict=True))
        if (got := literature_tokenize(line, lang)) != want
    ]
    assert mismatches == []


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        # Escaping, and French elision split after the apostrophe.
        ("Un chien court sur l'herbe.", "fr", "un chien court sur l&apos; herbe ."),
        # The de/fr/es rule moves a final period out of the quotes; it needs Perl's newline.
        ('Il s\'appelle "32 De Neude."', "fr", "il s&apos; appelle &quot; 32 de neude &quot; ."),
        # English keeps the period inside the quotes.
        ('It says "Hi."', "en", "it says &quot; hi . &quot;"),
        # Perl parity: a right single quote not between ASCII letters becomes a double quote.
        ("Un coup d’œil.", "fr", "un coup d &quot; œil ."),
        # No aggressive hyphen splitting.
        ("A man in a T-shirt.", "en", "a man in a t-shirt ."),
    ],
)
def test_literature_tokenize_cases(text: str, lang: str, expected: str) -> None:
    assert literature_tokenize(text, lang) == expected


def test_literature_tokenize_rejects_line_breaks() -> None:
    with pytest.raises(ValueError, match="one line"):
        literature_tokenize("two\nlines", "en")


def test_references_against_themselves_score_100(multi30k: Path) -> None:
    raw = read_gz_lines(multi30k / "test_2016_flickr.de.gz")
    ref_tok = read_gz_lines(multi30k / "test_2016_flickr.lc.norm.tok.de.gz")
    assert tokenized_bleu(raw, ref_tok, "de").score == pytest.approx(100.0)
    scores = sacrebleu_scores(raw, raw)
    assert scores.bleu == pytest.approx(100.0)
    assert scores.chrf == pytest.approx(100.0)


def test_tokenized_bleu_hand_cases() -> None:
    # Precisions 4/5, 3/4, 2/3, 1/2 and no brevity penalty: BLEU = 100 * (1/5) ** (1/4).
    assert tokenized_bleu(["A b c d e"], ["a b c d f"], "en").score == pytest.approx(
        100 * 0.2**0.25
    )
    # Every n-gram matches, but the hypothesis is 6 tokens against 7: BP = exp(1 - 7/6).
    score = tokenized_bleu(["The cat sat on the mat"], ["the cat sat on the mat ."], "en")
    assert score.score == pytest.approx(100 * math.exp(1 - 7 / 6))
    # No smoothing, as multi-bleu.perl: no matching 3-gram means BLEU 0.
    assert tokenized_bleu(["a b c d"], ["a b d c"], "en").score == 0.0


def test_sacrebleu_scores_fields() -> None:
    scores = sacrebleu_scores(["The cat sat on the mat."], ["The cat sat on a mat."])
    assert 0 < scores.bleu < 100
    assert 0 < scores.chrf < 100
    assert "tok:13a" in scores.bleu_signature
    assert "nc:6" in scores.chrf_signature
    assert scores.bleu_details.startswith("BLEU = ")


@pytest.mark.parametrize("score", [sacrebleu_scores, lambda h, r: tokenized_bleu(h, r, "en")])
def test_unequal_counts_are_an_error(score) -> None:
    with pytest.raises(ValueError, match="2 hypotheses and 3 references"):
        score(["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="0 hypotheses"):
        score([], [])
