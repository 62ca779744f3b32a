"""The `aiayn` command: parses options, calls the library, prints. Nothing else prints.

Each sub-command lives in its own module with `add_parser(subparsers)` and a `run(args)`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from aiayn import __version__
from aiayn.cli import attention, average, demo, evaluate, train, translate, tune
from aiayn.data import DataError
from aiayn.runs import CheckpointError, RunError

COMMANDS = (train, translate, evaluate, tune, attention, average, demo)

# Errors a user can cause (bad input, missing files): one line on stderr, no traceback.
USER_ERRORS = (ValueError, FileNotFoundError, OSError, DataError, CheckpointError, RunError)


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
    try:
        return args.handler(args)
    except USER_ERRORS as error:
        print(f"aiayn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"aiayn {args.command}: interrupted", file=sys.stderr)
        return 130
