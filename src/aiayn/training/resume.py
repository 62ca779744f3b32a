"""Where `--resume` continues: the newest step checkpoint that loads, moving damaged ones aside.

A checkpoint folder is written atomically, so a crash never leaves a half-written one; but a
disk can still fill up, a file can be truncated by a copy, or a user can edit one. Resuming must
not then be blocked by the newest folder: it falls back to the newest intact checkpoint, says
which and why, and renames the damaged ones `<name>.damaged` (kept for inspection, ignored by
everything else), so that they are not tried, averaged or pruned again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiayn.runs import CheckpointError, step_checkpoints

log = logging.getLogger(__name__)

DAMAGED_SUFFIX = ".damaged"


def load_newest_intact(
    root: Path, load: Callable[[Path], dict[str, Any]]
) -> tuple[Path, dict[str, Any]] | None:
    """Load the newest step checkpoint under `root` that `load` accepts.

    Args:
        root: the run's checkpoints/ folder.
        load: reads one checkpoint folder (weights into the model, trainer state returned);
            raises CheckpointError for a damaged one.

    Returns:
        The folder and what `load` returned, or None when there is no step checkpoint at all.

    Raises:
        CheckpointError: every step checkpoint is damaged; the message lists each with its
            problem and says which folders to remove to start the run again.
    """
    found = step_checkpoints(root)
    damaged: list[tuple[Path, str]] = []
    for path in reversed(found):
        try:
            state = load(path)
        except CheckpointError as error:
            damaged.append((path, str(error)))
            continue
        for bad, reason in damaged:
            aside = bad.with_name(bad.name + DAMAGED_SUFFIX)
            os.replace(bad, aside)
            log.warning("checkpoint %s is damaged (%s); moved it to %s", bad, reason, aside.name)
        if damaged:
            log.warning("resuming from %s, the newest intact checkpoint", path)
        return path, state
    if not damaged:
        return None
    problems = "; ".join(f"{p.name}: {reason}" for p, reason in damaged)
    raise CheckpointError(
        f"no intact checkpoint to resume from in {root} ({problems}); remove "
        f"{' '.join(str(p) for p, _ in damaged)} to train the run again from the start"
    )
