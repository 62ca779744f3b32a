"""`aiayn translate`: translate lines of text with a trained run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiayn.cli.common import (
    add_quantization_option,
    add_run_options,
    add_search_options,
    load_translator,
)
from aiayn.data import DataError, read_lines
from aiayn.decoding.translator import Translator
from aiayn.errors import UsageError
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
    add_search_options(p)
    add_quantization_option(p)
    p.add_argument("--input", help="input file (plain or .gz); default or -: standard input")
    p.add_argument("--output", type=Path, help="output file (default: stdout)")
    p.add_argument(
        "--interactive",
        action="store_true",
        help="type sentences, get translations (reads the terminal, prints each translation)",
    )
    p.set_defaults(handler=run)


def decode_line(raw: bytes, number: int) -> str:
    """One line of standard input as text, without its line break.

    Raises:
        DataError: the line is not valid UTF-8 (naming its number).
    """
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise DataError(f"<stdin>:{number}: invalid UTF-8 ({error.reason})") from None


def read_stdin() -> list[str]:
    """Lines of standard input; invalid UTF-8 is an error naming the line."""
    lines = sys.stdin.buffer.read().split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # after the newline that ends the last line
    return [decode_line(raw, number) for number, raw in enumerate(lines, start=1)]


def interactive(translator: Translator, args: argparse.Namespace) -> int:
    """Translate each line as it is typed; a line that is not UTF-8 is reported and skipped.

    Standard input is read as bytes and decoded here, so a bad line is one message rather than
    the end of the session. Prompts go to stderr, translations to stdout.
    """
    print("Type a sentence and press Enter (Ctrl-D to quit).", file=sys.stderr)
    number = 0
    while True:
        print("> ", end="", file=sys.stderr, flush=True)
        raw = sys.stdin.buffer.readline()
        if not raw:
            print(file=sys.stderr)
            return 0
        number += 1
        try:
            line = decode_line(raw, number)
        except DataError as error:
            print(f"aiayn translate: error: {error}; line skipped", file=sys.stderr)
            continue
        print(
            translator.translate(
                [line],
                beam_size=args.beam,
                alpha=args.alpha,
                stopping=args.stopping,
                workers=args.workers,
            )[0],
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    """Translate a file, standard input, or typed sentences."""
    if args.interactive and (args.input is not None or args.output is not None):
        option = "--input" if args.input is not None else "--output"
        raise UsageError(
            f"--interactive cannot be combined with {option}: it reads standard input and "
            "prints to standard output"
        )
    translator = load_translator(args, args.quantization)
    if args.interactive:
        return interactive(translator, args)
    lines = read_stdin() if args.input in (None, "-") else read_lines(args.input)
    translations = translator.translate(
        lines, beam_size=args.beam, alpha=args.alpha, stopping=args.stopping, workers=args.workers
    )
    text = "".join(t + "\n" for t in translations)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
