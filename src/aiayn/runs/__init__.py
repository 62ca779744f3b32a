"""aiayn.runs: the run directory on disk, shared by training (writes) and decoding (reads).

A run directory holds the config, the vocabulary, checkpoints, metrics and provenance. This
layer imports only model and data, so decoding can load a run without importing training.
"""

from aiayn.runs.atomic import atomic_write, atomic_write_json, atomic_write_text
from aiayn.runs.checkpoint import (
    CheckpointError,
    average_checkpoints,
    checkpoint_config,
    load_trainer_state,
    load_weights,
    read_meta,
    save_checkpoint,
    step_checkpoints,
)
from aiayn.runs.layout import RunDir, RunError
from aiayn.runs.retention import (
    AVERAGE_OVER,
    KINDS,
    checkpoint_kinds,
    counted_checkpoints,
    prune_checkpoints,
)

__all__ = [
    "AVERAGE_OVER",
    "KINDS",
    "CheckpointError",
    "RunDir",
    "RunError",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "average_checkpoints",
    "checkpoint_config",
    "checkpoint_kinds",
    "counted_checkpoints",
    "load_trainer_state",
    "load_weights",
    "prune_checkpoints",
    "read_meta",
    "save_checkpoint",
    "step_checkpoints",
]
