"""aiayn.data: text in, batches of ids out.

Corpora (Multi30k, WMT14 en-de, any parallel text files, synthetic tasks), cleaning, subword
and symbol vocabularies, length-bucketed token batching and collation. Imports no model code.

Typical use::

    pairs = load_multi30k("train", "de", "en")
    pairs, stats = clean_pairs(pairs, max_len=100)
    vocabs = build_vocabularies(pairs, vocab_size=8000, joint=True)
    examples = encode_pairs(pairs, vocabs)
    sampler = TokenBatchSampler([(len(s), len(t)) for s, t in examples], max_tokens=4096)
    loader = DataLoader(examples, batch_sampler=sampler, collate_fn=Collator())
"""

from aiayn.data.cleaning import FilterStats, clean_pairs, len_in_whitespace_tokens, split_holdout
from aiayn.data.collate import Batch, Collator
from aiayn.data.corpus import CORPORA, IMPORTED, Corpus, DataConfig, load_corpus
from aiayn.data.download import download_file
from aiayn.data.errors import DataError
from aiayn.data.marian_tokenizer import MarianTokenizer
from aiayn.data.multi30k import (
    LANGUAGES,
    MULTI30K_BASE_URL,
    MULTI30K_COMMIT,
    SPLIT_LANGUAGES,
    SPLITS,
    load_multi30k,
    load_multi30k_tok_reference,
    multi30k_dir,
)
from aiayn.data.sampler import TokenBatchSampler, pair_lengths
from aiayn.data.sentencepiece_tokenizer import SentencePieceTokenizer
from aiayn.data.sgm import read_sgm
from aiayn.data.symbol_tokenizer import SymbolTokenizer
from aiayn.data.synthetic import TASKS, make_task
from aiayn.data.text_files import (
    Pair,
    count_lines,
    iter_lines,
    iter_tsv,
    read_lines,
    read_parallel,
    read_tsv,
)
from aiayn.data.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_IDS,
    SPECIAL_PIECES,
    UNK_ID,
    Tokenizer,
)
from aiayn.data.vocab import (
    IdPair,
    Vocabularies,
    build_vocabularies,
    default_vocab_size,
    encode_pairs,
    load_tokenizer,
)
from aiayn.data.wmt14 import WMT14_LANGUAGES, WMT14_SPLITS, load_wmt14, wmt14_dir

__all__ = [
    "BOS_ID",
    "CORPORA",
    "EOS_ID",
    "IMPORTED",
    "LANGUAGES",
    "MULTI30K_BASE_URL",
    "MULTI30K_COMMIT",
    "PAD_ID",
    "SPECIAL_IDS",
    "SPECIAL_PIECES",
    "SPLITS",
    "SPLIT_LANGUAGES",
    "TASKS",
    "UNK_ID",
    "WMT14_LANGUAGES",
    "WMT14_SPLITS",
    "Batch",
    "Collator",
    "Corpus",
    "DataConfig",
    "DataError",
    "FilterStats",
    "IdPair",
    "MarianTokenizer",
    "Pair",
    "SentencePieceTokenizer",
    "SymbolTokenizer",
    "TokenBatchSampler",
    "Tokenizer",
    "Vocabularies",
    "build_vocabularies",
    "clean_pairs",
    "count_lines",
    "default_vocab_size",
    "download_file",
    "encode_pairs",
    "iter_lines",
    "iter_tsv",
    "len_in_whitespace_tokens",
    "load_corpus",
    "load_multi30k",
    "load_multi30k_tok_reference",
    "load_tokenizer",
    "load_wmt14",
    "make_task",
    "multi30k_dir",
    "pair_lengths",
    "read_lines",
    "read_parallel",
    "read_sgm",
    "read_tsv",
    "split_holdout",
    "wmt14_dir",
]
