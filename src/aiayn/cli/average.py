"""`aiayn average`: average the last K checkpoints of a run (the paper's checkpoint averaging).

It counts the checkpoints the run's `train.average_over` names: epoch-end checkpoints by
default, periodic ones with `average_over: updates` (see aiayn.runs.retention).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiayn.config import RunConfig
from aiayn.errors import UsageError
from aiayn.runs import RunDir, RunError, average_checkpoints, counted_checkpoints, step_checkpoints
from aiayn.runs.retention import describe_kind


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser("average", help="average the last K checkpoints of a run")
    p.add_argument("--run", required=True, type=Path, help="run directory")
    p.add_argument(
        "--last",
        type=int,
        default=5,
        help="how many of the newest epoch-end checkpoints (periodic ones for a run with "
        "train.average_over: updates)",
    )
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
    if args.last < 1:
        raise UsageError(f"--last must be at least 1, got {args.last}")
    average_over = RunConfig.load(run_dir.config_file).train.average_over
    found = counted_checkpoints(run_dir.checkpoints, average_over)
    if len(found) < args.last:
        raise RunError(
            f"{run_dir.path} has {len(found)} {describe_kind(average_over)} checkpoints, fewer "
            f"than --last {args.last} (of {len(step_checkpoints(run_dir.checkpoints))} step "
            "checkpoints in all)"
        )
    chosen = found[-args.last :]
    out = average_checkpoints(chosen, run_dir.checkpoints / "average")
    if not args.no_default:
        run_dir.set_default_checkpoint(out)
    print(f"averaged {', '.join(p.name for p in chosen)} -> {out}")
    return 0
