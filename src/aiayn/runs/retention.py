"""Which step checkpoints count, which are kept, which are averaged.

Every step checkpoint records in its meta.json why it was written, as a list of kinds:

- ``epoch``: the end of an epoch (its validation metrics, when validated, are in the meta);
- ``periodic``: every ``train.save_every`` updates;
- ``final``: where ``train.max_steps`` stopped training inside an epoch;
- ``interrupt``: where Ctrl-C (or SIGTERM) stopped training.

One folder can have several kinds (an epoch that ends on a multiple of ``save_every`` is both).
Averaging the last K checkpoints (``train.average_last``, ``aiayn average --last``) and keeping
the last K (``train.keep_last``) count the checkpoints of the run's ``train.average_over``:
epoch-end checkpoints by default, or periodic ones (and the final one) with ``updates``, as the
paper's recipes average checkpoints written at fixed intervals. Checkpoints of other kinds never
push counted ones out; up to ``keep_last`` of them are kept apart (the newest is where
``--resume`` continues).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from aiayn.runs.checkpoint import META, step_checkpoints

KINDS = ("epoch", "periodic", "final", "interrupt")
AVERAGE_OVER = ("epochs", "updates")
COUNTED_KINDS = {"epochs": frozenset({"epoch"}), "updates": frozenset({"periodic", "final"})}


def checkpoint_kinds(directory: Path) -> frozenset[str]:
    """The kinds a step checkpoint was written as (empty if its meta.json is unreadable).

    Checkpoints written before kinds were recorded count as epoch checkpoints, which is what
    they were unless `save_every` was used.
    """
    try:
        meta = json.loads((Path(directory) / META).read_text())
    except (OSError, ValueError):
        return frozenset()
    return frozenset(meta.get("kinds", ["epoch"]))


def counted_checkpoints(root: Path, average_over: str) -> list[Path]:
    """The step checkpoints under `root` that averaging and `keep_last` count, oldest first.

    Args:
        root: the run's checkpoints/ folder.
        average_over: "epochs" (epoch-end checkpoints) or "updates" (periodic and final).
    """
    counted = COUNTED_KINDS[average_over]
    return [p for p in step_checkpoints(root) if checkpoint_kinds(p) & counted]


def prune_checkpoints(root: Path, keep_last: int, average_over: str = "epochs") -> list[Path]:
    """Keep the newest `keep_last` counted checkpoints and the newest `keep_last` others.

    Args:
        root: the run's checkpoints/ folder.
        keep_last: how many of each group to keep (at least 1).
        average_over: which checkpoints are counted (see `counted_checkpoints`).

    Returns:
        The folders deleted.
    """
    counted = COUNTED_KINDS[average_over]
    ours, others = [], []
    for path in step_checkpoints(root):
        (ours if checkpoint_kinds(path) & counted else others).append(path)
    doomed = ours[:-keep_last] + others[:-keep_last]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return sorted(doomed)


def describe_kind(average_over: str) -> str:
    """How the counted checkpoints are called in messages."""
    return "epoch-end" if average_over == "epochs" else "periodic"
