"""The `aiayn` command: parses options, calls the library, prints. Nothing else prints."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import torch

from aiayn import __version__
from aiayn.model import PRESETS, ModelConfig, Transformer


def cmd_demo(args: argparse.Namespace) -> int:
    """The tutorial thread's example forward pass: batch 32, source 128, target 64."""
    torch.manual_seed(args.seed)
    config = ModelConfig.preset(args.preset, args.vocab, args.vocab)
    model = Transformer(config).eval()
    src = torch.randint(4, args.vocab, (args.batch, args.src_len))
    tgt_in = torch.randint(4, args.vocab, (args.batch, args.tgt_len))
    start = time.perf_counter()
    with torch.no_grad():
        logits = model(src, tgt_in)
    seconds = time.perf_counter() - start
    print(f"aiayn {__version__}: Transformer preset {args.preset!r}")
    print(
        f"  d_model={config.d_model} heads={config.n_heads} d_ff={config.d_ff} "
        f"layers={config.n_encoder_layers}+{config.n_decoder_layers} "
        f"parameters={model.num_parameters():,}"
    )
    print(
        f"  src {tuple(src.shape)} + tgt_in {tuple(tgt_in.shape)} -> logits {tuple(logits.shape)}"
    )
    print(
        f"  forward pass took {seconds * 1000:.1f} ms on {torch.backends.cpu.get_cpu_capability()}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="aiayn", description="The Transformer of 'Attention Is All You Need', from scratch."
    )
    parser.add_argument("--version", action="version", version=f"aiayn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the tutorial's example forward pass and describe it")
    demo.add_argument("--preset", choices=PRESETS, default="small", help="model size")
    demo.add_argument("--vocab", type=int, default=1000, help="vocabulary size (both sides)")
    demo.add_argument("--batch", type=int, default=32, help="sentences per batch")
    demo.add_argument("--src-len", type=int, default=128, help="source length")
    demo.add_argument("--tgt-len", type=int, default=64, help="target length")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `aiayn` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"aiayn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
