"""`aiayn demo`: the tutorial thread's example forward pass (batch 32, source 128, target 64)."""

from __future__ import annotations

import argparse
import time

import torch

from aiayn.data import SPECIAL_IDS
from aiayn.errors import UsageError
from aiayn.model import PRESETS, ModelConfig, Transformer

# The random sentences use only ordinary token ids, those above the special ones (PAD, BOS, ...).
FIRST_WORD_ID = max(SPECIAL_IDS) + 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser("demo", help="run the tutorial's example forward pass and describe it")
    p.add_argument("--preset", choices=PRESETS, default="small", help="model size")
    p.add_argument("--vocab", type=int, default=1000, help="vocabulary size (both sides)")
    p.add_argument("--batch", type=int, default=32, help="sentences per batch")
    p.add_argument("--src-len", type=int, default=128, help="source length")
    p.add_argument("--tgt-len", type=int, default=64, help="target length")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(handler=run)


def check_options(args: argparse.Namespace) -> None:
    """Refuse a shape the forward pass cannot have, naming the option.

    Raises:
        UsageError: a vocabulary with no ordinary token, or an empty batch or sentence.
    """
    if args.vocab <= FIRST_WORD_ID:
        raise UsageError(
            f"--vocab must exceed the {len(SPECIAL_IDS)} special ids (PAD, UNK, BOS, EOS): "
            f"at least {FIRST_WORD_ID + 1}, got {args.vocab}"
        )
    lengths = {"--batch": args.batch, "--src-len": args.src_len, "--tgt-len": args.tgt_len}
    for option, value in lengths.items():
        if value < 1:
            raise UsageError(f"{option} must be at least 1, got {value}")


def run(args: argparse.Namespace) -> int:
    """Build a random model and run one forward pass."""
    check_options(args)
    torch.manual_seed(args.seed)
    config = ModelConfig.preset(args.preset, args.vocab, args.vocab)
    model = Transformer(config).eval()
    src = torch.randint(FIRST_WORD_ID, args.vocab, (args.batch, args.src_len))
    tgt_in = torch.randint(FIRST_WORD_ID, args.vocab, (args.batch, args.tgt_len))
    start = time.perf_counter()
    with torch.no_grad():
        logits = model(src, tgt_in)
    seconds = time.perf_counter() - start
    print(f"Transformer preset {args.preset!r}")
    print(
        f"  d_model={config.d_model} heads={config.n_heads} d_ff={config.d_ff} "
        f"layers={config.n_encoder_layers}+{config.n_decoder_layers} "
        f"parameters={model.num_parameters():,}"
    )
    print(
        f"  src {tuple(src.shape)} + tgt_in {tuple(tgt_in.shape)} -> logits {tuple(logits.shape)}"
    )
    print(
        f"  forward pass took {seconds * 1000:.1f} ms ({torch.backends.cpu.get_cpu_capability()})"
    )
    return 0
