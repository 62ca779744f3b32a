"""The data a run is scored on: which sentences, which references, which language's rules.

A run is scored on what it was trained for. `evaluation_data` (for `aiayn evaluate`) and
`tuning_data` (for `aiayn tune`) pick, from a run's `DataConfig` and the user's options:

- the user's own aligned files (`--src-file` / `--ref-file`), for any run;
- a named Multi30k split (`--split`), only for a Multi30k run whose two languages the split has;
  a Multi30k run is evaluated on test_2016_flickr unless told otherwise;
- otherwise the run's own validation data, exactly as training validated on it (the synthetic
  task generated again from its seed, the validation files, or the held-out slice of the
  training text; `data.max_valid_pairs` applies). `tune` always uses validation data: it
  refuses Multi30k test splits (a file is not policed by its name: tuning on test data is the
  user's decision, and it spoils the test score).

A run made by `aiayn import-hf` has no data of its own: it is scored on the user's files only.
Any other combination raises `UsageError` with a one-line reason. `ScoringData.score` then
scores translations: sacreBLEU, chrF and the literature's tokenised BLEU (Moses rules of the
target language, against Multi30k's shipped tokenised references when they are on disk), and
exact match, which synthetic tasks report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiayn.data import (
    IMPORTED,
    SPLIT_LANGUAGES,
    SPLITS,
    DataConfig,
    DataError,
    Pair,
    clean_pairs,
    load_corpus,
    load_multi30k,
    load_multi30k_tok_reference,
    load_wmt14,
    read_lines,
)
from aiayn.data.prepared import valid_text
from aiayn.errors import UsageError
from aiayn.evaluation.report import Scorecard, evaluate_translations
from aiayn.evaluation.validation import exact_match

DEFAULT_TEST_SPLIT = "test_2016_flickr"
"""The Multi30k split `evaluate` scores a Multi30k run on unless given another."""
WMT14_TEST_SET, WMT14_VALID_SET = "newstest2014", "newstest2013"
"""What `evaluate` scores a WMT14 run on, and what it validated (and `tune` tunes) on."""


@dataclass(frozen=True)
class ScoringData:
    """Source sentences to translate and the references to score the translations against.

    Attributes:
        name: a short name, safe in a file name (e.g. "test_2016_flickr.en-de").
        description: what the data is, for people (e.g. "Multi30k val en-de, 1014 pairs").
        sources: the sentences to translate.
        references: one raw, cased reference per source.
        lang: the target language whose Moses rules tokenise for tokenised BLEU.
        tok_references: Multi30k's shipped tokenised references when on disk; else None and
            they are built from `references` by the same pipeline.
        run_validation: True when this is the run's own validation data.
        show_exact_match: report exact match (synthetic tasks, whose outputs are exact).
    """

    name: str
    description: str
    sources: list[str]
    references: list[str]
    lang: str
    tok_references: list[str] | None = None
    run_validation: bool = False
    show_exact_match: bool = False

    def __len__(self) -> int:
        return len(self.sources)

    def head(self, n: int) -> ScoringData:
        """The first `n` sentences (all of them if there are fewer)."""
        tok = self.tok_references[:n] if self.tok_references is not None else None
        return dataclasses.replace(
            self, sources=self.sources[:n], references=self.references[:n], tok_references=tok
        )

    def score(self, hypotheses: Sequence[str], compound_split: bool = False) -> Scorecard:
        """Score translations of `sources`, one per source, in order.

        Args:
            hypotheses: one detokenised translation per source.
            compound_split: also compute the WMT14 papers' compound-split BLEU.

        Raises:
            ValueError: if the number of hypotheses differs from the number of references.
        """
        report = evaluate_translations(
            hypotheses, self.references, self.lang, self.tok_references, compound_split
        )
        return Scorecard(report, exact_match(hypotheses, self.references), self.show_exact_match)


def evaluation_data(
    config: DataConfig,
    *,
    split: str | None = None,
    src_file: str | Path | None = None,
    ref_file: str | Path | None = None,
    lang: str | None = None,
    data_dir: str | Path | None = None,
) -> ScoringData:
    """What `aiayn evaluate` scores a run on.

    Args:
        config: the run's data config (config.yaml's `data:`).
        split: a Multi30k split; only for a Multi30k run whose languages it has. Default:
            test_2016_flickr for a Multi30k run, newstest2014 (full) for a WMT14 run, the
            run's validation data for any other.
        src_file: your own source file (with `ref_file`).
        ref_file: its references, aligned line by line.
        lang: target language for tokenised BLEU (default: the run's `data.tgt_lang`);
            Multi30k references fix it to the run's target language.
        data_dir: the folder of the Multi30k or WMT14 files (default: the run's).

    Returns:
        The sentences, references and scoring language.

    Raises:
        UsageError: options that do not fit the run (the message says why).
        DataError: files that are missing, unreadable or not aligned.
    """
    config = _checked(config, split, src_file, ref_file, data_dir)
    if split is None and src_file is None and config.corpus == "multi30k":
        split = DEFAULT_TEST_SPLIT
    if split is None and src_file is None and config.corpus == "wmt14":
        _check_lang(config, lang)
        return _wmt14(config, WMT14_TEST_SET, limit=None, validation=False)
    return _select(config, split, src_file, ref_file, lang)


def tuning_data(
    config: DataConfig,
    *,
    split: str | None = None,
    src_file: str | Path | None = None,
    ref_file: str | Path | None = None,
    lang: str | None = None,
    data_dir: str | Path | None = None,
) -> ScoringData:
    """What `aiayn tune` chooses decoding settings on: validation data, never a test split.

    Args:
        config: the run's data config.
        split: a Multi30k split other than a test split, for a Multi30k run whose languages it
            has. Default: the run's validation data (for Multi30k, its `data.valid_split`).
        src_file: your own validation source file (with `ref_file`). Its name is not checked:
            tune on data you will not report a test score on.
        ref_file: its references, aligned line by line.
        lang: target language for tokenised BLEU, as in `evaluation_data`.
        data_dir: the folder of the Multi30k files (default: the run's).

    Returns:
        The sentences, references and scoring language.

    Raises:
        UsageError: a test split, or options that do not fit the run.
        DataError: files that are missing, unreadable or not aligned.
    """
    if split is not None and split.startswith("test"):
        raise UsageError(
            f"--split {split}: tune chooses settings on validation data, never on a test set "
            "(score the test set with `aiayn evaluate` once tuning is done)"
        )
    config = _checked(config, split, src_file, ref_file, data_dir)
    return _select(config, split, src_file, ref_file, lang)


def validation_data(config: DataConfig, lang: str | None = None) -> ScoringData:
    """The run's own validation pairs, as `load_corpus(config).valid` gives them.

    For Multi30k only the validation split is read (not the training set) and its shipped
    tokenised references are used when on disk; for WMT14 only newstest2013; other corpora go
    through `load_corpus` (no vocabulary is built).

    Args:
        config: the run's data config.
        lang: target language for tokenised BLEU (default: `config.tgt_lang`).

    Raises:
        UsageError: a `lang` other than a Multi30k run's target language.
        DataError: missing or unreadable data.
    """
    limit = config.max_valid_pairs
    if config.corpus == "multi30k":
        _check_lang(config, lang)
        return _multi30k(config, config.valid_split, limit=limit, clean=True, validation=True)
    if config.corpus == "wmt14":
        _check_lang(config, lang)
        return _wmt14(config, WMT14_VALID_SET, limit=limit, validation=True)
    prepared = config.corpus == "prepared" and config.prepared_dir
    pairs = valid_text(config.prepared_dir) if prepared else load_corpus(config).valid
    if config.corpus == "task":
        name = f"valid.task-{config.task}"
        what = f"the {config.task} task's generated validation set"
    elif prepared:
        name = "valid.prepared"
        what = f"the validation split of the prepared dataset {config.prepared_dir}"
    elif config.valid_src_file and config.valid_tgt_file:
        name = Path(config.valid_src_file).name
        what = f"{config.valid_src_file} / {config.valid_tgt_file}"
    else:
        name = "valid.held-out"
        what = (
            f"held out of {config.tsv or config.src_file} (data.valid_holdout "
            f"{config.valid_holdout}, data.seed {config.seed})"
        )
    return ScoringData(
        name=name,
        description=_described(what, len(pairs), limit),
        sources=[s for s, _ in pairs],
        references=[t for _, t in pairs],
        lang=lang or config.tgt_lang,
        run_validation=True,
        show_exact_match=config.corpus == "task",
    )


def multi30k_split_data(config: DataConfig, split: str, lang: str | None = None) -> ScoringData:
    """A whole Multi30k split, as published, in the languages of a Multi30k run.

    Args:
        config: the run's data config; must be a Multi30k run.
        split: one of `SPLITS`, having both of the run's languages.
        lang: must be None or the run's target language (the references are in it).

    Raises:
        UsageError: a run that is not Multi30k, or a split without the run's languages.
        DataError: missing files that cannot be downloaded.
    """
    if config.corpus != "multi30k":
        raise UsageError(
            f"--split {split}: this run was trained on {config.name}, not Multi30k; score it "
            "on its own validation data (no --split) or on your files (--src-file/--ref-file)"
        )
    if split not in SPLIT_LANGUAGES:
        raise UsageError(f"--split {split}: no such Multi30k split; choose one of {SPLITS}")
    missing = [x for x in (config.src_lang, config.tgt_lang) if x not in SPLIT_LANGUAGES[split]]
    if missing:
        raise UsageError(
            f"--split {split}: this run translates {config.src_lang}-{config.tgt_lang} but "
            f"{split} has no {' or '.join(missing)} (it has "
            f"{', '.join(SPLIT_LANGUAGES[split])})"
        )
    _check_lang(config, lang)
    return _multi30k(config, split, limit=None, clean=False, validation=False)


def file_data(
    src_file: str | Path, ref_file: str | Path, lang: str, show_exact_match: bool = False
) -> ScoringData:
    """Your own aligned source and reference files (plain or .gz).

    Raises:
        DataError: unreadable files, or files of different lengths.
    """
    sources, references = read_lines(src_file), read_lines(ref_file)
    if len(sources) != len(references):
        raise DataError(
            f"{src_file} has {len(sources)} lines but {ref_file} has {len(references)}: "
            "give one reference line per source line"
        )
    return ScoringData(
        name=Path(src_file).name,
        description=_described(f"{src_file} / {ref_file}", len(sources), None),
        sources=sources,
        references=references,
        lang=lang,
        show_exact_match=show_exact_match,
    )


def _checked(
    config: DataConfig,
    split: str | None,
    src_file: str | Path | None,
    ref_file: str | Path | None,
    data_dir: str | Path | None,
) -> DataConfig:
    """Refuse options that contradict each other; apply --data-dir to the config."""
    if (src_file is None) != (ref_file is None):
        raise UsageError("give both --src-file and --ref-file, or neither")
    if src_file is not None and split is not None:
        raise UsageError(f"--split {split} and --src-file: score on one or the other")
    if data_dir is None:
        return config
    if config.corpus not in ("multi30k", "wmt14"):
        raise UsageError(
            f"--data-dir: this run was trained on {config.name}, which reads no Multi30k or "
            "WMT14 files"
        )
    if src_file is not None:
        raise UsageError("--data-dir is where Multi30k splits are; it does not apply to --src-file")
    return dataclasses.replace(config, data_dir=str(data_dir))


def _select(
    config: DataConfig,
    split: str | None,
    src_file: str | Path | None,
    ref_file: str | Path | None,
    lang: str | None,
) -> ScoringData:
    if src_file is not None and ref_file is not None:
        return file_data(src_file, ref_file, lang or config.tgt_lang, config.corpus == "task")
    if config.corpus == IMPORTED:
        raise UsageError(
            "this run was imported (aiayn import-hf) and has no test or validation data of its "
            "own: give --src-file and --ref-file"
        )
    if split is not None:
        return multi30k_split_data(config, split, lang)
    return validation_data(config, lang)


def _check_lang(config: DataConfig, lang: str | None) -> None:
    if lang is not None and lang != config.tgt_lang:
        raise UsageError(
            f"--lang {lang}: the {config.corpus} references of this run are in "
            f"{config.tgt_lang}; --lang applies to your own files (--src-file/--ref-file)"
        )


def _multi30k(
    config: DataConfig, split: str, *, limit: int | None, clean: bool, validation: bool
) -> ScoringData:
    """One Multi30k split, with its shipped tokenised references when they are on disk."""
    src, tgt = config.src_lang, config.tgt_lang
    pairs: list[Pair] = load_multi30k(split, src, tgt, data_dir=config.data_dir)
    # No download for the tokenised references: the scorer builds them the same way (proven
    # line for line on test_2016 in tests/test_scoring.py).
    tok = load_multi30k_tok_reference(split, tgt, data_dir=config.data_dir, download=False)
    if tok is not None and len(tok) != len(pairs):
        raise DataError(
            f"Multi30k {split}: {split}.lc.norm.tok.{tgt} has {len(tok)} lines but "
            f"{split}.{tgt}.gz has {len(pairs)}; remove the tokenised file to build it instead"
        )
    keep = list(range(len(pairs) if limit is None else min(limit, len(pairs))))
    if clean:
        # As load_corpus cleans validation pairs: strip, drop pairs with an empty side.
        keep = [i for i in keep if pairs[i][0].strip() and pairs[i][1].strip()]
        pairs = [(pairs[i][0].strip(), pairs[i][1].strip()) for i in range(len(pairs))]
    return ScoringData(
        name=f"{split}.{src}-{tgt}",
        description=_described(f"Multi30k {split} {src}-{tgt}", len(keep), limit),
        sources=[pairs[i][0] for i in keep],
        references=[pairs[i][1] for i in keep],
        lang=tgt,
        tok_references=[tok[i] for i in keep] if tok is not None else None,
        run_validation=validation,
    )


def _wmt14(config: DataConfig, split: str, *, limit: int | None, validation: bool) -> ScoringData:
    """A WMT14 test set from its SGM files; as training validated on it when `validation`."""
    src, tgt = config.src_lang, config.tgt_lang
    load = dict(data_dir=config.data_dir, checksum_file=config.checksum_file)
    pairs = load_wmt14(split, src, tgt, **load)
    limit = limit if validation else None
    if validation:  # as load_corpus: the first data.max_valid_pairs, then cleaned
        pairs, _ = clean_pairs(pairs[:limit] if limit is not None else pairs)
    return ScoringData(
        name=f"{split}.{src}-{tgt}",
        description=_described(f"WMT14 {split} {src}-{tgt}", len(pairs), limit),
        sources=[s for s, _ in pairs],
        references=[t for _, t in pairs],
        lang=tgt,
        run_validation=validation,
    )


def _described(what: str, n: int, limit: int | None) -> str:
    """'Multi30k val en-de: 1014 pairs', naming data.max_valid_pairs when it applies."""
    return f"{what}: {n} pairs" + (
        f", at most {limit} by data.max_valid_pairs" if limit is not None else ""
    )
