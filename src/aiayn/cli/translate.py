"""`aiayn translate`: translate lines of text with a trained run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiayn.cli.common import add_run_options, load_translator
from aiayn.data import DataError, read_lines
from aiayn.runs import atomic_write_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "translate",
        help="translate lines of text with a trained run",
        description="Reads one sentence per line and writes one translation per line, in input "
        "order (an empty line gives an empty line). Sentences longer than the model can take "
        "are truncated with a warning.",
    )
    add_run_options(p)
    p.add_argument("--beam", type=int, help="beam size, 1 = greedy (default: the run's)")
    p.add_argument("--alpha", type=float, help="length penalty (default: the run's)")
    p.add_argument("--input", default="-", help="input file (plain or .gz), - for stdin")
    p.add_argument("--output", type=Path, help="output file (default: stdout)")
    p.add_argument("--interactive", action="store_true", help="type sentences, get translations")
    p.set_defaults(handler=run)


def read_stdin() -> list[str]:
    """Lines of standard input; invalid UTF-8 is an error naming the line."""
    lines = []
    for number, raw in enumerate(sys.stdin.buffer.read().split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as error:
            raise DataError(f"<stdin>:{number}: invalid UTF-8 ({error.reason})") from None
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return lines


def run(args: argparse.Namespace) -> int:
    """Translate a file, standard input, or typed sentences."""
    translator = load_translator(args)
    if args.interactive:
        print("Type a sentence and press Enter (Ctrl-D to quit).", file=sys.stderr)
        while True:
            try:
                line = input("> ")
            except EOFError:
                return 0
            print(translator.translate([line], beam_size=args.beam, alpha=args.alpha)[0])
    lines = read_stdin() if args.input == "-" else read_lines(args.input)
    translations = translator.translate(lines, beam_size=args.beam, alpha=args.alpha)
    text = "".join(t + "\n" for t in translations)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
