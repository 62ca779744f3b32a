"""Options and loading shared by the sub-commands that use a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path

from aiayn.decoding.translator import Translator
from aiayn.pipeline import resolve_device


def add_run_options(p: argparse.ArgumentParser) -> None:
    """--run, --checkpoint and --device: which trained model, on which device."""
    p.add_argument("--run", required=True, type=Path, help="run directory from `aiayn train`")
    p.add_argument("--checkpoint", type=Path, help="checkpoint folder (default: the run's)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")


def load_translator(args: argparse.Namespace) -> Translator:
    """The run's translator from the options of `add_run_options`."""
    return Translator.from_run(args.run, args.checkpoint, device=resolve_device(args.device))
