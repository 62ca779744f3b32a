"""The `aiayn` command: parses options, calls the library, prints. Nothing else prints.

Each sub-command lives in its own module with `add_parser(subparsers)` and a `run(args)`.
An error the user can cause (`aiayn.errors.AiaynError`, or an OSError naming a file) prints as
one line and exits with 2; Ctrl-C exits with 130; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from aiayn import __version__
from aiayn.cli import (
    attention,
    average,
    demo,
    evaluate,
    export,
    import_hf,
    prepare,
    serve,
    train,
    translate,
    tune,
)
from aiayn.errors import AiaynError

COMMANDS = (
    train, prepare, translate, evaluate, tune, attention, average, demo, export, import_hf, serve
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="aiayn", description="The Transformer of 'Attention Is All You Need', from scratch."
    )
    parser.add_argument("--version", action="version", version=f"aiayn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `aiayn` console script."""
    logging.basicConfig(level=logging.WARNING, format="aiayn: %(levelname)s: %(message)s")
    # Ctrl-C must reach training (which saves a checkpoint first) even when the shell that
    # started us ignored SIGINT, as background jobs inherit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    # Errors a user can cause (a bad value, option or file) print as one line; anything else is
    # a bug in aiayn and keeps its traceback.
    try:
        return args.handler(args)
    except AiaynError as error:
        return user_error(args.command, error)
    except OSError as error:
        if error.filename is None:  # not about a path the user gave
            raise
        return user_error(args.command, error)
    except KeyboardInterrupt:
        print(f"aiayn {args.command}: interrupted", file=sys.stderr)
        return 130


def user_error(command: str, error: Exception) -> int:
    """Print a user's error as one line; the exit status for it."""
    print(f"aiayn {command}: error: {error}", file=sys.stderr)
    return 2
