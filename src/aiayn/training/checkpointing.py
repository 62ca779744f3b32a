"""The trainer's side of the run directory: step checkpoints, the best one, resuming, averaging.

The trainer decides when to checkpoint and what its state is; this class decides where that
goes on disk (main process only), what is kept (aiayn.runs.retention), where a resumed run
continues (resume.py) and what the run's final model is (the average of the last counted
checkpoints, else the best, else the latest).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiayn.model import Transformer
from aiayn.runs import (
    RunDir,
    average_checkpoints,
    counted_checkpoints,
    load_trainer_state,
    load_weights,
    prune_checkpoints,
    read_meta,
    save_checkpoint,
)
from aiayn.runs.checkpoint import step_dir_name
from aiayn.runs.retention import describe_kind
from aiayn.training.config import TrainConfig
from aiayn.training.distributed import (
    DistInfo,
    barrier,
    broadcast_object,
    broadcast_tensors_,
    on_main,
)
from aiayn.training.metrics import plot_curves
from aiayn.training.resume import load_newest_intact
from aiayn.training.state_broadcast import broadcast_state

log = logging.getLogger(__name__)


class Checkpointer:
    """Writes and reads one run's checkpoints.

    Args:
        run: the run directory.
        model: the (unwrapped) model whose weights are saved and loaded.
        config: supplies keep_last, average_last and average_over.
        dist: this process's place; only the main process writes.
    """

    def __init__(
        self, run: RunDir, model: Transformer, config: TrainConfig, dist: DistInfo
    ) -> None:
        self.run = run
        self.model = model
        self.config = config
        self.dist = dist

    def save(
        self, step: int, state: dict[str, Any], meta: dict[str, Any], best: bool
    ) -> Path | None:
        """Write the step checkpoint (and `checkpoints/best` if `best`), then prune old ones.

        Every rank calls this (it ends with a barrier); the main process writes.

        Args:
            step: updates taken (names the folder).
            state: the trainer state (tensors and plain values).
            meta: JSON facts for meta.json (step, epoch, kinds, validation metrics).
            best: these are the best validation metrics so far.

        Returns:
            The folder on the main process, else None.
        """
        path = None
        if self.dist.is_main:
            path = self.run.checkpoints / step_dir_name(step)
            save_checkpoint(path, self.model, self.model.config, state, meta)
            prune_checkpoints(self.run.checkpoints, self.config.keep_last, self.config.average_over)
            if best:
                best_path = self.run.checkpoints / "best"
                save_checkpoint(best_path, self.model, self.model.config, None, meta)
        barrier(self.dist)
        return path

    def _load(self, path: Path) -> dict[str, Any]:
        """One checkpoint's weights into the model; its trainer state (CheckpointError if bad)."""
        state = load_trainer_state(path)
        load_weights(path, self.model, self.model.config)
        return state

    def load_latest(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Load the newest intact step checkpoint into the model (every rank the same one).

        Only the main process reads the run directory: the others receive the weights, the
        trainer state and meta.json from it, so they need not see the run directory at all.

        Returns:
            Its trainer state and meta.json, or None if the run has no step checkpoint.

        Raises:
            CheckpointError: every step checkpoint is damaged.
        """

        def read() -> tuple[dict[str, Any], dict[str, Any]] | None:
            # Only the main process reads, and moves damaged folders aside.
            found = load_newest_intact(self.run.checkpoints, self._load)
            return None if found is None else (found[1], read_meta(found[0]))

        loaded = on_main(read, self.dist)
        meta = broadcast_object(None if loaded is None else loaded[1], self.dist)
        if meta is None:
            return None
        broadcast_tensors_(list(self.model.state_dict().values()), self.dist)
        state = broadcast_state(None if loaded is None else loaded[0], self.dist)
        return state, meta

    def finish(self) -> None:
        """Average the last counted checkpoints if asked, name the default one, draw curves."""
        if not self.dist.is_main:
            return
        best = self.run.checkpoints / "best"
        default = best if best.is_dir() else self.run.latest_checkpoint()
        k = self.config.average_last
        if k:
            counted = counted_checkpoints(self.run.checkpoints, self.config.average_over)[-k:]
            if len(counted) < k:
                log.warning(
                    "train.average_last is %d but the run has only %d %s checkpoints%s",
                    k,
                    len(counted),
                    describe_kind(self.config.average_over),
                    ": averaging those" if counted else "; nothing averaged",
                )
            if counted:
                default = average_checkpoints(counted, self.run.checkpoints / "average")
        self.run.set_default_checkpoint(default)
        if self.run.metrics_file.exists():
            plot_curves(self.run.metrics_file, self.run.curves_file)
