"""`aiayn evaluate`: translate a run's test data and score it (sacreBLEU, chrF, tokenised BLEU).

A run is scored on what it was trained for (see aiayn.evaluation.scoring_data): a Multi30k run
on test_2016_flickr unless `--split` names another split that has its two languages; a WMT14
run on newstest2014 (the full 3,003 sentences), also when trained from a dataset prepared from
them (`aiayn train --prepared`); any other run (synthetic task, your files, TSV)
on its own validation data, which the output says; any run on your own aligned files with
`--src-file/--ref-file`. Synthetic tasks also report exact match. The translations go into the
run's translations/ folder.

Beside sacreBLEU and chrF (report these) come two tokenised BLEUs for comparing with papers:
lowercased Moses tokens (the Multi30k literature's), and with `--compound-split` (on by default
for a WMT14 run) cased Moses tokens with hyphenated compounds split `a ##AT##-##AT## b`, as
tensor2tensor's get_ende_bleu.sh scores: the BLEU of "Attention Is All You Need" (27.3 base,
28.4 big on newstest2014 en-de).

Examples:
    aiayn evaluate --run runs/en-de                              # Multi30k test_2016_flickr
    aiayn evaluate --run runs/en-de --split test_2017_flickr
    aiayn evaluate --run runs/quickstart                         # the task's validation data
    aiayn evaluate --run runs/mine --src-file test.de --ref-file test.en
    aiayn evaluate --run runs/en-de --quantization int8         # int8 linear layers (CPU)
    aiayn evaluate --run runs/wmt14-base                         # newstest2014, paper's BLEU too
"""

from __future__ import annotations

import argparse

from aiayn.cli.common import (
    add_quantization_option,
    add_run_options,
    add_search_options,
    load_translator,
)
from aiayn.config import RunConfig
from aiayn.data import SPLITS
from aiayn.errors import UsageError
from aiayn.evaluation.prepared_source import scoring_config
from aiayn.evaluation.scoring_data import evaluation_data
from aiayn.runs import RunDir, atomic_write_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "evaluate",
        help="score a run on its test set (or its validation data): BLEU, chrF",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p)
    p.add_argument(
        "--split",
        choices=SPLITS,
        help="Multi30k split, for a Multi30k run whose languages it has (default for a "
        "Multi30k run: test_2016_flickr; other runs default to their validation data)",
    )
    p.add_argument(
        "--data-dir", help="folder with the Multi30k or WMT14 files (default: the run's)"
    )
    p.add_argument("--src-file", help="your own source file (with --ref-file)")
    p.add_argument("--ref-file", help="your own reference file, aligned with --src-file")
    p.add_argument(
        "--lang",
        help="language whose Moses rules tokenise for tokenised BLEU, for your own files or a "
        "non-Multi30k run (default: the run's data.tgt_lang)",
    )
    p.add_argument(
        "--compound-split",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also report the paper's WMT14 BLEU: cased Moses tokens with hyphenated compounds "
        "split (##AT##-##AT##, tensor2tensor's get_ende_bleu.sh); default: on for a WMT14 run",
    )
    add_search_options(p)
    add_quantization_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Choose the data, translate, score, print, and save the hypotheses."""
    if args.beam is not None and args.beam < 1:
        raise UsageError(f"--beam must be at least 1, got {args.beam}")
    if args.alpha is not None and args.alpha < 0:
        raise UsageError(f"--alpha must be >= 0, got {args.alpha}")
    run_dir = RunDir(args.run)
    run_dir.info()  # a clear error if this is not a run
    # A run trained from a prepared dataset is tested as one trained on its source corpus.
    data_config = scoring_config(RunConfig.load(run_dir.config_file).data)
    compound_split = args.compound_split
    if compound_split is None:
        compound_split = data_config.corpus == "wmt14"
    data = evaluation_data(
        data_config,
        split=args.split,
        src_file=args.src_file,
        ref_file=args.ref_file,
        lang=args.lang,
        data_dir=args.data_dir,
    )
    if data.run_validation:
        print(f"no test set given: scoring on the run's validation data ({data.description})")
    translator = load_translator(args, args.quantization)
    hypotheses = translator.translate(
        data.sources,
        beam_size=args.beam,
        alpha=args.alpha,
        stopping=args.stopping,
        workers=args.workers,
    )
    scores = data.score(hypotheses, compound_split=compound_split)
    # int8 translations go beside the float32 ones rather than over them.
    suffix = "" if args.quantization == "none" else f".{args.quantization}"
    out = run_dir.path / "translations" / f"{data.name}{suffix}.hyp"
    atomic_write_text(out, "".join(h + "\n" for h in hypotheses))
    beam = args.beam or translator.decode.beam_size
    weights = "" if args.quantization == "none" else f", {args.quantization} weights"
    print(
        f"{run_dir.path} on {data.description}; beam {beam}{weights}, "
        f"tokenised BLEU in {data.lang}:"
    )
    for line in scores.lines():
        print("  " + line)
    print(f"translations written to {out}")
    return 0
