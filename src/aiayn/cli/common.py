"""Options and loading shared by the sub-commands that use a trained run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from aiayn.decoding.beam import STOPPING_RULES
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


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number of `kind` that is > 0."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def add_search_options(p: argparse.ArgumentParser) -> None:
    """--beam, --alpha, --stopping and --workers: the run's decode settings, overridden for one
    command."""
    p.add_argument("--beam", type=int, help="beam size, 1 = greedy (default: the run's)")
    p.add_argument("--alpha", type=float, help="length penalty (default: the run's)")
    p.add_argument(
        "--stopping",
        choices=STOPPING_RULES,
        help="when beam search stops a sentence: exact (no live beam can still win) or "
        "k-finished (once beam-size hypotheses have finished, as fairseq and CTranslate2: "
        "fewer steps, may miss a longer winner); default: the run's decode.stopping",
    )
    p.add_argument(
        "--workers",
        type=positive(int),
        help="batches decoded at once, each on a thread of its own, torch's threads shared "
        "out among them (CTranslate2's inter_threads; faster on several cores); default: the "
        "run's decode.workers",
    )


def load_translator(args: argparse.Namespace, quantization: str = "none") -> Translator:
    """The run's translator from the options of `add_run_options`, with its weights quantized
    as `--quantization` says where the command has that option."""
    return Translator.from_run(
        args.run, args.checkpoint, device=resolve_device(args.device), quantization=quantization
    )
