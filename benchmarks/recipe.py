"""Training throughput of a run config's own model on its own data, float32 against bf16.

Answers "which precision should this recipe train in on this machine" before an hour-long run:
the config's model and batch size, batches drawn from its corpus the way the trainer buckets
them, our training step (benchmarks/training.py) timed interleaved in both precisions.

    python -m benchmarks.recipe --config configs/multi30k_en_de.yaml [--max-tokens 2048 4096]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from aiayn.config import RunConfig
from benchmarks.data import bucketed_batches, recipe_examples
from benchmarks.machine import machine
from benchmarks.timing import interleaved
from benchmarks.training import OursOptions, ours_step


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipe", description=__doc__)
    p.add_argument("--config", required=True, type=Path, help="a run config (YAML)")
    p.add_argument("--max-tokens", type=int, nargs="+", help="batch sizes (default: the config's)")
    p.add_argument("--batches", type=int, default=6, help="batches per timed round")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (median reported)")
    args = p.parse_args(argv)
    torch.set_flush_denormal(True)
    config = RunConfig.load(args.config)
    model, examples = recipe_examples(config)
    info = machine()
    flags = " ".join(info["cpu_flags_of_note"])
    print(f"{args.config}: {info['cpu_model']}, capability {info['cpu_capability']} ({flags}), "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"{'max_tokens':>10} {'precision':>9} {'tokens/s':>9}  (real target tokens/s, median)")
    for max_tokens in args.max_tokens or [config.train.max_tokens]:
        batches = bucketed_batches(examples, max_tokens, args.batches)
        tokens = sum(b.n_tgt_tokens for b in batches)
        runs = {
            precision: ours_step(model, batches, OursOptions(precision=precision))
            for precision in ("fp32", "bf16")
        }
        samples = interleaved(runs, repeats=args.repeats)
        for precision, s in samples.items():
            print(f"{max_tokens:>10} {precision:>9} {tokens / s.median:>9.0f}")


if __name__ == "__main__":
    main()
