"""`aiayn attention`: draw the attention of a trained model on one sentence."""

from __future__ import annotations

import argparse
from pathlib import Path

from aiayn.cli.common import add_run_options, load_translator
from aiayn.errors import UsageError
from aiayn.evaluation.attention_plot import KINDS, plot_attention


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "attention", help="heatmaps of every layer's and head's attention for one sentence"
    )
    add_run_options(p)
    p.add_argument("--text", required=True, help="the source sentence")
    p.add_argument("--output", required=True, type=Path, help="PNG file to write")
    p.add_argument(
        "--kinds",
        nargs="+",
        choices=KINDS,
        default=["cross"],
        help="which attentions to draw (default: cross)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Translate the sentence, then draw its attention."""
    if not args.text.strip():
        raise UsageError("--text is empty: give the sentence whose attention to draw")
    translator = load_translator(args)
    weights, src_pieces, tgt_pieces = translator.attention(args.text)
    path = plot_attention(weights, src_pieces, tgt_pieces, args.output, args.kinds)
    print(f"source subwords:      {' '.join(src_pieces)}")
    print(f"translation subwords: {' '.join(tgt_pieces[1:])}")
    print(f"attention written to {path}")
    return 0
