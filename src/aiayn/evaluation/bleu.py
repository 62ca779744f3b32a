"""Corpus-level translation scores: sacreBLEU/chrF, and the literature's tokenised BLEU.

Two ways to score the same translations, for two audiences:

- `sacrebleu_scores`: BLEU and chrF on detokenised, cased text with sacreBLEU's own
  tokenisation, plus the signature strings that make the numbers reproducible. Report these.
- `tokenized_bleu`: the multimodal-MT literature's number, BLEU of lowercased, Moses-tokenised
  hypotheses against Multi30k's `*.lc.norm.tok.<lang>` references on whitespace tokens, as
  `multi-bleu.perl` computes it. Use it to compare with published Multi30k tables.
- `compound_split_bleu`: the WMT14 en-de papers' number ("Attention Is All You Need", GNMT,
  ConvS2S), cased BLEU of Moses-tokenised text with hyphenated compounds split
  (`##AT##-##AT##`), as tensor2tensor's get_ende_bleu.sh computes it. Use it to compare with
  the paper's 27.3 / 28.4.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF, BLEUScore

from aiayn.data import DataError
from aiayn.evaluation.literature_tok import compound_split_tokenize, literature_tokenize


@dataclass(frozen=True)
class Scores:
    """sacreBLEU corpus scores of one system output.

    Attributes:
        bleu: corpus BLEU, 0-100.
        chrf: corpus chrF, 0-100.
        bleu_signature: sacreBLEU's signature of the BLEU settings (version, tokeniser, ...).
        chrf_signature: the same for chrF.
        bleu_details: sacreBLEU's one-line BLEU summary (n-gram precisions, brevity penalty,
            lengths).
    """

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    bleu_details: str


def _check_counts(hyps: Sequence[str], refs: Sequence[str]) -> None:
    """Raise DataError unless there is one reference per hypothesis, and at least one pair.

    (Empty or mismatched files reach here from `aiayn evaluate` and `aiayn tune`.)
    """
    if len(hyps) != len(refs):
        raise DataError(
            f"need one reference per hypothesis: got {len(hyps)} hypotheses and "
            f"{len(refs)} references"
        )
    if not hyps:
        raise DataError("nothing to score: got 0 hypotheses and 0 references")


def sacrebleu_scores(hyps: Sequence[str], refs: Sequence[str]) -> Scores:
    """Corpus BLEU and chrF with sacreBLEU's defaults, on detokenised, cased text.

    Args:
        hyps: system outputs, one detokenised sentence each.
        refs: the references, one per hypothesis, in the same order.

    Returns:
        The scores and their signatures.

    Raises:
        DataError: if the counts differ or both are empty.
    """
    _check_counts(hyps, refs)
    bleu = BLEU()
    chrf = CHRF()
    bleu_score = bleu.corpus_score(list(hyps), [list(refs)])
    chrf_score = chrf.corpus_score(list(hyps), [list(refs)])
    return Scores(
        bleu=bleu_score.score,
        chrf=chrf_score.score,
        bleu_signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
        bleu_details=bleu_score.format(),
    )


def tokenized_bleu(hyps: Sequence[str], refs_tok: Sequence[str], lang: str) -> BLEUScore:
    """The literature's BLEU: tokenise the hypotheses like the references, then multi-bleu.

    Each hypothesis goes through `literature_tokenize` (lowercase, Moses punctuation
    normalisation, Moses tokenisation with escaping). BLEU is then computed on whitespace tokens
    (sacreBLEU with `tokenize="none"`) without smoothing, which matches `multi-bleu.perl`: a
    corpus with no matching n-grams of some order scores 0.

    Args:
        hyps: system outputs, detokenised and cased (as a translator produces them).
        refs_tok: already tokenised references, e.g. the lines of
            `test_2016_flickr.lc.norm.tok.de`.
        lang: the target language code, which selects the Moses rules.

    Returns:
        sacreBLEU's score object: `.score` (0-100), `.precisions`, `.bp`, `.format()`.

    Raises:
        DataError: if the counts differ or both are empty.
    """
    _check_counts(hyps, refs_tok)
    hyps_tok = [literature_tokenize(h, lang) for h in hyps]
    return multi_bleu(hyps_tok, refs_tok)


def compound_split_bleu(hyps: Sequence[str], refs: Sequence[str], lang: str) -> BLEUScore:
    """The paper's WMT14 BLEU: cased, Moses-tokenised, compounds split, then multi-bleu.

    Hypotheses and references both go through `compound_split_tokenize` (as get_ende_bleu.sh
    treats the decodes and the tokenised gold targets); BLEU is then `multi_bleu`.

    Args:
        hyps: system outputs, detokenised and cased.
        refs: raw, cased references (e.g. newstest2014's), one per hypothesis.
        lang: the target language code, which selects the Moses rules.

    Returns:
        sacreBLEU's score object: `.score` (0-100), `.precisions`, `.bp`, `.format()`.

    Raises:
        DataError: if the counts differ or both are empty.
    """
    _check_counts(hyps, refs)
    return multi_bleu(
        [compound_split_tokenize(h, lang) for h in hyps],
        [compound_split_tokenize(r, lang) for r in refs],
    )


def multi_bleu(hyps_tok: Sequence[str], refs_tok: Sequence[str]) -> BLEUScore:
    """Corpus BLEU on whitespace tokens, unsmoothed and cased, as `multi-bleu.perl` computes it.

    A corpus with no matching n-grams of some order scores 0.
    """
    # force=True: the input is tokenised on purpose; don't warn that it looks tokenised.
    bleu = BLEU(tokenize="none", smooth_method="none", force=True)
    return bleu.corpus_score(list(hyps_tok), [list(refs_tok)])
