"""The multimodal-MT literature's text pipeline: lowercase, normalise punctuation, Moses-tokenise.

Papers on Multi30k report BLEU on lowercased, Moses-tokenised text, scored against the
dataset's `*.lc.norm.tok.<lang>` references with `multi-bleu.perl`. Those references were made
with the Moses Perl scripts, one line at a time:

    lowercase.perl | normalize-punctuation.perl -l LANG | tokenizer.perl -l LANG

`literature_tokenize` is that pipeline in Python (sacremoses). It reproduces the shipped
references line for line (test_2016_flickr en/de/fr/cs: 1000/1000 lines each; see
tests/test_scoring.py). Two details matter for the exact match:

- `perl_parity=True`: the Perl normaliser maps a right single quote that is not between two
  ASCII letters to a double quote (so French "coup d’œil" becomes `coup d &quot; œil`); the
  references keep that quirk.
- The trailing newline: Perl reads each line with its "\\n". The German/French rule
  `s/(\\.+)\\"(\\s*[^<])/\\"$1$2/` (move a period out of a closing quote, "but not at the end of
  the sentence") then sees the newline as a following character, so a final `."` does move.
  We normalise `text + "\\n"` to match.

Escaping is on (`'` -> `&apos;`, `"` -> `&quot;`, as in the references) and aggressive hyphen
splitting is off (the references keep "t-shirt").

sacremoses >= 0.2 is required: older versions apply `perl_parity` by editing class-level tables,
which silently changes every other `MosesPunctNormalizer` in the process.
"""

from __future__ import annotations

import re
from functools import lru_cache

from sacremoses import MosesPunctNormalizer, MosesTokenizer


@lru_cache(maxsize=16)
def _moses(lang: str) -> tuple[MosesPunctNormalizer, MosesTokenizer]:
    """One normaliser and tokenizer per language (building them loads regex tables)."""
    return MosesPunctNormalizer(lang=lang, perl_parity=True), MosesTokenizer(lang=lang)


def literature_tokenize(text: str, lang: str) -> str:
    """Lowercase, Moses-normalise and Moses-tokenise one sentence, as the Multi30k references are.

    Args:
        text: one detokenised sentence (e.g. a system's output), without newlines.
        lang: language code for the Moses rules ("en", "de", "fr", "cs", ...).

    Returns:
        The tokenised sentence: tokens separated by single spaces, XML-escaped.

    Raises:
        ValueError: if `text` holds a line break (the pipeline is defined per line).
    """
    if "\n" in text or "\r" in text:
        raise ValueError(f"literature_tokenize expects one line, got a line break in {text!r}")
    normalizer, tokenizer = _moses(lang)
    # Lowercase first, as lowercase.perl ran first; the "\n" mirrors Perl (see the module doc).
    normalized = normalizer.normalize(text.lower() + "\n")
    return tokenizer.tokenize(
        normalized, escape=True, aggressive_dash_splits=False, return_str=True
    )


# tensor2tensor's get_ende_bleu.sh splits compounds with `perl -ple 's{(\S)-(\S)}{...}g'` on
# bytes: \S is any byte but ASCII white space. Left to right, without overlap, so "a-b-c"
# becomes "a ##AT##-##AT## b-c", as in Perl.
_COMPOUND = re.compile(r"([^ \t\n\r\f\v])-([^ \t\n\r\f\v])")


@lru_cache(maxsize=16)
def _cased_moses(lang: str) -> tuple[MosesPunctNormalizer, MosesTokenizer]:
    return MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)


def split_compounds(tokenized: str) -> str:
    """Put hyphenated compounds in the ##AT## form: ``rich-text`` -> ``rich ##AT##-##AT## text``.

    Args:
        tokenized: one Moses-tokenised sentence.

    Returns:
        The sentence with every ``X-Y`` (X, Y not white space) split as get_ende_bleu.sh does.
    """
    return _COMPOUND.sub(r"\1 ##AT##-##AT## \2", tokenized)


def compound_split_tokenize(text: str, lang: str) -> str:
    """The WMT14 en-de papers' BLEU tokenisation (tensor2tensor's get_ende_bleu.sh), cased.

    ``replace-unicode-punctuation.perl | tokenizer.perl -l LANG`` (escaping on, no aggressive
    hyphen splitting), then `split_compounds`. "Attention Is All You Need" and the papers it
    compares with (GNMT, ConvS2S) report multi-bleu.perl on this form of hypotheses and
    references.

    Args:
        text: one detokenised sentence, without newlines.
        lang: language code for the Moses rules.

    Returns:
        The tokenised, compound-split sentence.

    Raises:
        ValueError: if `text` holds a line break.
    """
    if "\n" in text or "\r" in text:
        raise ValueError(f"compound_split_tokenize expects one line, got a line break in {text!r}")
    normalizer, tokenizer = _cased_moses(lang)
    replaced = normalizer.replace_unicode_punct(text)
    tokens = tokenizer.tokenize(
        replaced, escape=True, aggressive_dash_splits=False, return_str=True
    )
    return split_compounds(tokens)
