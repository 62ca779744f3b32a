"""Options and loading shared by the sub-commands that use a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path

from aiayn.decoding.quantization import QUANTIZATIONS
from aiayn.decoding.translator import Translator
from aiayn.pipeline import resolve_device


def add_run_options(p: argparse.ArgumentParser, run_required: bool = True) -> None:
    """--run, --checkpoint and --device: which trained model, on which device (--run may be
    optional where the command has another source of a model, as serve's --model)."""
    p.add_argument(
        "--run", required=run_required, type=Path, help="run directory from `aiayn train`"
    )
    p.add_argument("--checkpoint", type=Path, help="checkpoint folder (default: the run's)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")


def add_quantization_option(p: argparse.ArgumentParser) -> None:
    """--quantization: int8 linear layers for faster CPU inference."""
    p.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        default="none",
        help="int8: int8 weights in the linear layers, for faster decoding on the CPU "
        "(default: none, the trained float32 weights)",
    )


def load_translator(args: argparse.Namespace, quantization: str = "none") -> Translator:
    """The run's translator from the options of `add_run_options`, with its weights quantized
    as `--quantization` says where the command has that option."""
    return Translator.from_run(
        args.run, args.checkpoint, device=resolve_device(args.device), quantization=quantization
    )
