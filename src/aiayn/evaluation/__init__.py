"""aiayn.evaluation: scoring translations (sacreBLEU, the literature's tokenised BLEU)."""

from aiayn.evaluation.bleu import Scores, sacrebleu_scores, tokenized_bleu
from aiayn.evaluation.literature_tok import literature_tokenize

__all__ = ["Scores", "literature_tokenize", "sacrebleu_scores", "tokenized_bleu"]
