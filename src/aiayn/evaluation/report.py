"""Score a set of translations both ways papers do: sacreBLEU/chrF and tokenised lowercased BLEU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiayn.evaluation.bleu import Scores, sacrebleu_scores, tokenized_bleu
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
    """

    sacre: Scores
    bleu_tok_lc: float
    tok_reference: str
    sentences: int

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI."""
        return [
            f"sentences: {self.sentences}",
            f"BLEU (tokenised, lowercased, {self.tok_reference} refs): {self.bleu_tok_lc:.2f}",
            f"sacreBLEU: {self.sacre.bleu:.2f}   {self.sacre.bleu_signature}",
            f"chrF:      {self.sacre.chrf:.2f}   {self.sacre.chrf_signature}",
        ]


def evaluate_translations(
    hypotheses: Sequence[str],
    references: Sequence[str],
    lang: str,
    tokenized_references: Sequence[str] | None = None,
) -> EvaluationReport:
    """Score detokenised hypotheses against raw references (and tokenised ones if given).

    Args:
        hypotheses: the system's output, one detokenised sentence per reference.
        references: raw, cased references.
        lang: target language (for Moses normalisation and tokenisation).
        tokenized_references: the `*.lc.norm.tok.*` references; built from `references` with
            the same pipeline when None.

    Raises:
        DataError: unequal numbers of hypotheses and references, or none.
    """
    sacre = sacrebleu_scores(hypotheses, references)
    source = "shipped"
    if tokenized_references is None:
        tokenized_references = [literature_tokenize(r, lang) for r in references]
        source = "built"
    tok = tokenized_bleu(hypotheses, tokenized_references, lang)
    return EvaluationReport(sacre, tok.score, source, len(hypotheses))
