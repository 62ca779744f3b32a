"""Training throughput of a run config's own model on its own data, float32 against bf16.

Answers "which precision should this recipe train in on this machine" before an hour-long run:
the config's model and batch size, batches drawn from its corpus the way the trainer buckets
them, our training step (benchmarks/training.py) timed interleaved in both precisions.

    python -m benchmarks.recipe --config configs/multi30k_en_de.yaml [--max-tokens 2048 4096]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from aiayn.config import RunConfig
from aiayn.data import Collator, TokenBatchSampler, build_vocabularies, encode_pairs, load_corpus
from benchmarks.data import default_data_dir
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
    data = config.data
    if data.corpus == "multi30k" and data.data_dir is None and default_data_dir() is not None:
        data = config.replace("data", data_dir=str(default_data_dir())).data
    corpus = load_corpus(data)
    vocabs = build_vocabularies(
        corpus.train, data.vocab_size, data.joint_vocab, model_type=data.subword
    )
    examples = encode_pairs(corpus.train, vocabs)
    model = config.model_config(vocabs.src.vocab_size, vocabs.tgt.vocab_size)
    info = machine()
    flags = " ".join(info["cpu_flags_of_note"])
    print(f"{args.config}: {info['cpu_model']}, capability {info['cpu_capability']} ({flags}), "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"{'max_tokens':>10} {'precision':>9} {'tokens/s':>9}  (real target tokens/s, median)")
    for max_tokens in args.max_tokens or [config.train.max_tokens]:
        sampler = TokenBatchSampler([(len(s), len(t)) for s, t in examples], max_tokens, seed=1)
        chosen = random.Random(0).sample(list(sampler.epoch_batches(0)), args.batches)
        batches = [Collator()([examples[i] for i in b]) for b in chosen]
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
