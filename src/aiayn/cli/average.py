"""`aiayn average`: average the last K checkpoints of a run (the paper's checkpoint averaging)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aiayn.errors import UsageError
from aiayn.runs import RunDir, RunError, average_checkpoints, step_checkpoints


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser("average", help="average the last K checkpoints of a run")
    p.add_argument("--run", required=True, type=Path, help="run directory")
    p.add_argument("--last", type=int, default=5, help="how many of the newest checkpoints")
    p.add_argument(
        "--no-default",
        action="store_true",
        help="do not make the average the run's default checkpoint for decoding",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Average and (unless told not to) make the result the run's default checkpoint."""
    run_dir = RunDir(args.run)
    run_dir.info()  # a clear error if this is not a run
    found = step_checkpoints(run_dir.checkpoints)
    if args.last < 1:
        raise UsageError(f"--last must be at least 1, got {args.last}")
    if len(found) < args.last:
        raise RunError(
            f"{run_dir.path} has {len(found)} step checkpoints, fewer than --last {args.last}"
        )
    chosen = found[-args.last :]
    out = average_checkpoints(chosen, run_dir.checkpoints / "average")
    if not args.no_default:
        run_dir.set_default_checkpoint(out)
    print(f"averaged {', '.join(p.name for p in chosen)} -> {out}")
    return 0
