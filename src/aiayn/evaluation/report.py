"""Score a set of translations both ways papers do: sacreBLEU/chrF and tokenised lowercased BLEU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiayn.evaluation.bleu import Scores, compound_split_bleu, sacrebleu_scores, tokenized_bleu
from aiayn.evaluation.literature_tok import literature_tokenize


@dataclass(frozen=True)
class EvaluationReport:
    """Scores of one test set.

    Attributes:
        sacre: sacreBLEU and chrF on detokenised, cased text, with signatures.
        bleu_tok_lc: BLEU on lowercased, Moses-normalised and -tokenised text (the multimodal-MT
            literature's convention for Multi30k).
        tok_reference: where the tokenised references came from ("shipped" Multi30k
            `*.lc.norm.tok.*` files, or "built" from the raw references by the same pipeline).
        sentences: number of sentences scored.
        bleu_compound_split: cased BLEU of Moses-tokenised text with compounds split
            (`##AT##-##AT##`), the WMT14 en-de papers' number; None when not asked for.
    """

    sacre: Scores
    bleu_tok_lc: float
    tok_reference: str
    sentences: int
    bleu_compound_split: float | None = None

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI."""
        lines = [
            f"sentences: {self.sentences}",
            f"BLEU (tokenised, lowercased, {self.tok_reference} refs): {self.bleu_tok_lc:.2f}",
            f"sacreBLEU: {self.sacre.bleu:.2f}   {self.sacre.bleu_signature}",
            f"chrF:      {self.sacre.chrf:.2f}   {self.sacre.chrf_signature}",
        ]
        if self.bleu_compound_split is not None:
            lines.insert(
                2,
                "BLEU (tokenised, cased, compounds split ##AT##-##AT##, as the paper): "
                f"{self.bleu_compound_split:.2f}",
            )
        return lines


@dataclass(frozen=True)
class Scorecard:
    """The scores of one set of translations.

    Attributes:
        report: sacreBLEU, chrF and tokenised BLEU.
        exact_match: percentage of translations identical to their reference.
        show_exact_match: whether exact match is worth showing (synthetic tasks).
    """

    report: EvaluationReport
    exact_match: float
    show_exact_match: bool

    def metrics(self) -> dict[str, float]:
        """The numbers by name: bleu_tok_lc, sacrebleu, chrf, exact_match (all 0-100), and
        bleu_compound_split when it was computed."""
        metrics = {
            "bleu_tok_lc": self.report.bleu_tok_lc,
            "sacrebleu": self.report.sacre.bleu,
            "chrf": self.report.sacre.chrf,
            "exact_match": self.exact_match,
        }
        if self.report.bleu_compound_split is not None:
            metrics["bleu_compound_split"] = self.report.bleu_compound_split
        return metrics

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI."""
        lines = self.report.lines()
        if self.show_exact_match:
            lines.insert(1, f"exact match: {self.exact_match:.2f}%")
        return lines


def evaluate_translations(
    hypotheses: Sequence[str],
    references: Sequence[str],
    lang: str,
    tokenized_references: Sequence[str] | None = None,
    compound_split: bool = False,
) -> EvaluationReport:
    """Score detokenised hypotheses against raw references (and tokenised ones if given).

    Args:
        hypotheses: the system's output, one detokenised sentence per reference.
        references: raw, cased references.
        lang: target language (for Moses normalisation and tokenisation).
        tokenized_references: the `*.lc.norm.tok.*` references; built from `references` with
            the same pipeline when None.
        compound_split: also compute `compound_split_bleu` (the WMT14 papers' BLEU).

    Raises:
        DataError: unequal numbers of hypotheses and references, or none.
    """
    sacre = sacrebleu_scores(hypotheses, references)
    source = "shipped"
    if tokenized_references is None:
        tokenized_references = [literature_tokenize(r, lang) for r in references]
        source = "built"
    tok = tokenized_bleu(hypotheses, tokenized_references, lang)
    split = compound_split_bleu(hypotheses, references, lang).score if compound_split else None
    return EvaluationReport(sacre, tok.score, source, len(hypotheses), split)
