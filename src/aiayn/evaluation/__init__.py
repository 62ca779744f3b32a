"""aiayn.evaluation: scoring translations (sacreBLEU, the literature's tokenised BLEU)."""

from aiayn.evaluation.bleu import Scores, compound_split_bleu, sacrebleu_scores, tokenized_bleu
from aiayn.evaluation.literature_tok import (
    compound_split_tokenize,
    literature_tokenize,
    split_compounds,
)

__all__ = [
    "Scores",
    "compound_split_bleu",
    "compound_split_tokenize",
    "literature_tokenize",
    "sacrebleu_scores",
    "split_compounds",
    "tokenized_bleu",
]
