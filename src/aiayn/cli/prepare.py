"""`aiayn prepare`: read a parallel corpus once into a memory-mapped dataset for training.

Takes the data options of `aiayn train` (a config's `data:` section, a named corpus, text
files or a TSV), cleans the pairs as training would, learns the subword vocabulary on a random
sample, encodes on every core and writes DATA_DIR; `aiayn train --prepared DATA_DIR` then
trains from it with memory that does not grow with the corpus (see docs/scale.md).

Examples:
    aiayn prepare --src-file train.en.gz --tgt-file train.de.gz --out data/wmt --vocab-size 32000
    aiayn prepare --config configs/multi30k_de_en.yaml --out data/multi30k-de-en
    aiayn train --prepared data/wmt --config configs/multi30k_de_en.yaml --out runs/wmt
    aiayn prepare --check data/wmt     # every file's SHA-256 against the manifest

Training checks a dataset's file sizes, and hashes only files whose modification time is not
the one the manifest recorded (a copied or edited file); --check hashes them all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiayn.cli.train import add_data_options, build_config
from aiayn.data.prepared import MANIFEST, PreparedDataset
from aiayn.errors import UsageError
from aiayn.preparing import DEFAULT_CHUNK, DEFAULT_SAMPLE, prepare_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "prepare",
        help="encode a corpus once into a memory-mapped dataset (train with --prepared)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, help="dataset folder to create")
    p.add_argument(
        "--check",
        type=Path,
        metavar="DATA_DIR",
        help="instead of preparing: check every file of DATA_DIR against its manifest's SHA-256",
    )
    p.add_argument("--config", type=Path, help="YAML config; its data section is used")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="data.KEY=VALUE",
        help="override a data field, e.g. --set data.max_train_pairs=100000 (repeatable)",
    )
    p.add_argument("--workers", type=int, help="encoding processes (default: every core)")
    p.add_argument(
        "--vocab-sample",
        type=int,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"sentences the vocabulary learns from, drawn at random (default {DEFAULT_SAMPLE:,}"
        "; 0 = all)",
    )
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="pairs per encoding task")
    add_data_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset (or check one) and print what it holds."""
    if args.check is not None:
        if args.out is not None:
            raise UsageError("give --check DATA_DIR or --out DATA_DIR, not both")
        checked = PreparedDataset.open(args.check, verify="all")
        print(f"{args.check}: {len(checked.manifest['files'])} files match {MANIFEST}")
        return 0
    if args.out is None:
        raise UsageError("--out DATA_DIR is required (the dataset folder to create)")
    for name in ("workers", "vocab_sample", "chunk"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "vocab_sample" else 1):
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
    config = build_config(args).data
    dataset = prepare_dataset(
        config,
        args.out,
        workers=args.workers,
        sample=args.vocab_sample,
        chunk=args.chunk,
        report=lambda line: print(line, file=sys.stderr),
    )
    train, vocab = dataset.manifest["splits"]["train"], dataset.manifest["vocab"]
    print(
        f"prepared {args.out}: {train['pairs']:,} training pairs ({train['src_tokens']:,} + "
        f"{train['tgt_tokens']:,} tokens, {train['token_dtype']}), "
        f"{len(dataset.valid):,} validation pairs, vocabulary of {vocab['src_size']:,} ids"
    )
    print(f"  {dataset.manifest['filtered']}; sha256 {dataset.sha256[:16]}")
    print(f"train with: aiayn train --prepared {args.out} --out runs/NAME")
    return 0
