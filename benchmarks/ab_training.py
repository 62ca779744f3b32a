"""The training step of a recipe, this source tree against another revision of it.

    python -m benchmarks.ab_training --base REV [--config configs/multi30k_en_de.yaml]
        [--rounds 5] [--threads N] [--batches 10] [--pairs 6000] [--json FILE]

Answers "did this change make training faster" with the revision before it: `git worktree`
checks `REV` out into a temporary folder, and each round runs one fresh process per tree (in
alternating order), each timing the trainer's own update (`TrainStep`, via
`benchmarks.training.ours_step`) on the same Multi30k batches of the config (its model and
`max_tokens`, the first `--pairs` training pairs, a vocabulary learnt on them). Fresh processes
make each tree import its own `aiayn`; alternating them cancels the machine's drift.

Prints real target tokens/s of each tree (median over rounds; each round's figure is its
fastest of 3 passes over the batches) and the paired speed-up (median and range of the
per-round ratios this tree / base).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(config_path: Path, batches: int, pairs: int) -> dict[str, float]:
    """In a fresh process whose `aiayn` is the tree under test: tokens/s of its step."""
    import torch

    import aiayn
    from aiayn.config import RunConfig
    from benchmarks.data import bucketed_batches, recipe_examples
    from benchmarks.training import ours_step

    torch.set_flush_denormal(True)
    config = RunConfig.load(config_path)
    model, examples = recipe_examples(config, max_pairs=pairs)
    work = bucketed_batches(examples, config.train.max_tokens, batches)
    tokens = sum(b.n_tgt_tokens for b in work)
    torch.manual_seed(0)
    run = ours_step(model, work)
    run()  # warm-up
    passes = []
    for _ in range(3):
        clock = time.perf_counter()
        run()
        passes.append(time.perf_counter() - clock)
    return {"tokens_per_s": tokens / min(passes), "aiayn": str(Path(aiayn.__file__).parent)}


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab_training", description=__doc__)
    p.add_argument("--base", help="the git revision to compare against (e.g. HEAD~1)")
    p.add_argument("--config", type=Path, default=REPO / "configs" / "multi30k_en_de.yaml")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--batches", type=int, default=10, help="batches per timed pass")
    p.add_argument("--pairs", type=int, default=6000, help="training pairs read")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        result = child(args.config.resolve(), args.batches, args.pairs)
        print(json.dumps(result))
        return result
    if not args.base:
        p.error("--base REV is required")
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    times: dict[str, list[float]] = {"this": [], "base": []}
    with tempfile.TemporaryDirectory(prefix="aiayn-ab-") as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(base_tree),
             args.base],
            check=True,
        )  # fmt: skip
        try:
            trees = {"this": REPO, "base": base_tree}
            for r in range(args.rounds):
                order = ["this", "base"] if r % 2 == 0 else ["base", "this"]
                for name in order:
                    command = [
                        sys.executable, "-m", "benchmarks.ab_training", "--child",
                        "--config", str(args.config.resolve()), "--batches", str(args.batches),
                        "--pairs", str(args.pairs),
                    ]  # fmt: skip
                    child_env = {**env, "PYTHONPATH": f"{trees[name] / 'src'}{os.pathsep}{REPO}"}
                    out = subprocess.run(
                        command, cwd=REPO, env=child_env, capture_output=True, text=True
                    )
                    if out.returncode != 0:
                        raise SystemExit(f"{name} tree failed:\n{out.stderr[-3000:]}")
                    measured = json.loads(out.stdout.splitlines()[-1])
                    if Path(measured["aiayn"]) != trees[name] / "src" / "aiayn":
                        raise SystemExit(f"{name} imported aiayn from {measured['aiayn']}")
                    times[name].append(measured["tokens_per_s"])
                    print(f"round {r + 1} {name:4s} {times[name][-1]:8.0f} tokens/s", flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base_tree)],
                check=False,
            )
    ratios = [t / b for t, b in zip(times["this"], times["base"], strict=True)]
    result = {
        "base": args.base,
        "config": str(args.config),
        "threads": args.threads,
        "tokens_per_s": {name: statistics.median(v) for name, v in times.items()},
        "speedup_median": statistics.median(ratios),
        "speedup_range": [min(ratios), max(ratios)],
        "rounds": times,
    }
    print(
        f"this {result['tokens_per_s']['this']:.0f} / base {result['tokens_per_s']['base']:.0f} "
        f"tokens/s: {result['speedup_median']:.3f}x ({min(ratios):.3f}-{max(ratios):.3f}) "
        f"over {args.rounds} rounds"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
