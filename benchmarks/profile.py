"""Top operators of our small training step on the Multi30k batches, by `torch.profiler`.

    python -m benchmarks.profile [--batches 4] [--rows 20] [--nn]

`--nn` profiles the nn.Transformer baseline instead. Self CPU time per operator, summed over
one training step per batch (after one untimed warm-up pass).
"""

from __future__ import annotations

import argparse
import warnings

import torch
from torch.profiler import ProfilerActivity, profile

from aiayn.model import ModelConfig
from benchmarks import data, training


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument(
        "--nn", action="store_true", help="profile nn.Transformer (same TrainStep) instead"
    )
    args = parser.parse_args(argv)
    torch.set_flush_denormal(True)
    warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
    workload = data.multi30k_workload(args.batches)
    config = ModelConfig.small(workload.vocab_size, workload.vocab_size)
    torch.manual_seed(0)
    if args.nn:
        run = training.baseline_same_step(config, workload.batches)  # like for like
    else:
        run = training.ours_step(config, workload.batches)
    run()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    print(workload.describe())
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
