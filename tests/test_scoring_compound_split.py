"""The paper's WMT14 BLEU: cased Moses tokens, compounds split ##AT##-##AT##, multi-bleu.

Expected scores are computed here from hypotheses and references split by hand (what
tensor2tensor's get_ende_bleu.sh produces for them), scored by sacreBLEU on whitespace tokens;
the code under test tokenises and splits the raw sentences itself.
"""

from __future__ import annotations

import math

import pytest
from sacrebleu.metrics import BLEU

from aiayn.data import DataError
from aiayn.evaluation import (
    compound_split_bleu,
    compound_split_tokenize,
    split_compounds,
    tokenized_bleu,
)
from aiayn.evaluation.report import evaluate_translations


def multi_bleu_by_hand(hyps: list[str], refs: list[str]) -> float:
    """sacreBLEU on already split strings, unsmoothed: multi-bleu.perl's number."""
    return BLEU(tokenize="none", smooth_method="none", force=True).corpus_score(hyps, [refs]).score


@pytest.mark.parametrize(
    ("tokenized", "expected"),
    [
        ("rich-text format", "rich ##AT##-##AT## text format"),
        ("10-11 Uhr", "10 ##AT##-##AT## 11 Uhr"),
        # Left to right without overlap, as Perl's s///g: the middle letter is used up.
        ("a-b-c", "a ##AT##-##AT## b-c"),
        ("Rich-Text-Format", "Rich ##AT##-##AT## Text ##AT##-##AT## Format"),
        # A dash with white space on either side is not inside a compound.
        ("a - b -5 x- --", "a - b -5 x- --"),
        ("---", "- ##AT##-##AT## -"),
    ],
)
def test_split_compounds_as_get_ende_bleu(tokenized: str, expected: str) -> None:
    assert split_compounds(tokenized) == expected


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        # Cased; punctuation split off; compounds split after tokenising.
        (
            "Das Rich-Text-Format ist gut.",
            "de",
            "Das Rich ##AT##-##AT## Text ##AT##-##AT## Format ist gut .",
        ),
        # replace-unicode-punctuation turns curly quotes into '"', which Moses escapes.
        ("Er sagt: “Hallo”.", "de", "Er sagt : &quot; Hallo &quot; ."),
        (
            "It’s a well-known e-mail.",
            "en",
            "It &apos;s a well ##AT##-##AT## known e ##AT##-##AT## mail .",
        ),
    ],
)
def test_compound_split_tokenize_cases(text: str, lang: str, expected: str) -> None:
    assert compound_split_tokenize(text, lang) == expected


def test_compound_split_bleu_equals_multi_bleu_of_hand_split_text() -> None:
    hyps = ["Das Rich-Text Format ist gut.", "Wir treffen uns um 10-11 Uhr im Büro."]
    refs = ["Das Rich-Text-Format ist gut.", "Wir treffen uns von 10-11 Uhr im Büro."]
    hyps_split = [
        "Das Rich ##AT##-##AT## Text Format ist gut .",
        "Wir treffen uns um 10 ##AT##-##AT## 11 Uhr im Büro .",
    ]
    refs_split = [
        "Das Rich ##AT##-##AT## Text ##AT##-##AT## Format ist gut .",
        "Wir treffen uns von 10 ##AT##-##AT## 11 Uhr im Büro .",
    ]
    expected = multi_bleu_by_hand(hyps_split, refs_split)
    assert compound_split_bleu(hyps, refs, "de").score == pytest.approx(expected)
    # Splitting is what gives the near-miss compound its partial credit: unsplit, the same
    # text scores lower (same tokeniser, compounds kept whole).
    unsplit = multi_bleu_by_hand(
        [h.replace(" ##AT##-##AT## ", "-") for h in hyps_split],
        [r.replace(" ##AT##-##AT## ", "-") for r in refs_split],
    )
    assert unsplit < expected


def test_compound_split_bleu_is_cased_and_unsmoothed() -> None:
    ref = ["Der Hund-Halter kam."]
    assert compound_split_bleu(ref, ref, "de").score == pytest.approx(100.0)
    # Lowercasing the first of six tokens ("der Hund ##AT##-##AT## Halter kam ."): it breaks
    # the one n-gram of each order that starts there, so the precisions are 5/6, 4/5, 3/4,
    # 2/3 with no brevity penalty: BLEU = 100 * (1/3) ** (1/4).
    hyp = ["der Hund-Halter kam."]
    p = [5 / 6, 4 / 5, 3 / 4, 2 / 3]
    expected = 100 * math.exp(sum(math.log(x) for x in p) / 4)
    assert compound_split_bleu(hyp, ref, "de").score == pytest.approx(expected)
    # The lowercased literature BLEU does not see the case difference.
    assert tokenized_bleu(hyp, ["der hund-halter kam ."], "de").score == pytest.approx(100.0)
    # multi-bleu has no smoothing: no matching 4-gram means 0.
    assert compound_split_bleu(["a b c d"], ["a b d c"], "en").score == 0.0
    with pytest.raises(DataError, match="one reference per hypothesis"):
        compound_split_bleu(["a"], [], "en")


def test_the_report_shows_it_only_when_asked() -> None:
    hyps, refs = ["Das Rich-Text Format ist gut."], ["Das Rich-Text-Format ist gut."]
    plain = evaluate_translations(hyps, refs, "de")
    assert plain.bleu_compound_split is None
    assert not any("compounds split" in line for line in plain.lines())
    report = evaluate_translations(hyps, refs, "de", compound_split=True)
    assert report.bleu_compound_split == pytest.approx(compound_split_bleu(hyps, refs, "de").score)
    line = next(line for line in report.lines() if "compounds split" in line)
    assert line.endswith(f"{report.bleu_compound_split:.2f}")
    assert report.bleu_tok_lc == plain.bleu_tok_lc  # the other scores are unchanged
