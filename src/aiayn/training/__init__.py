"""aiayn.training: loss, schedule, the training loop, precision and distributed set-up.

Joins model and data; knows nothing of search or scoring (those come in as validation hooks).
"""

from aiayn.training.config import TrainConfig
from aiayn.training.distributed import DistInfo
from aiayn.training.loss import label_smoothed_nll
from aiayn.training.progress import TrainResult
from aiayn.training.schedule import CosineSchedule, NoamSchedule, cosine_lr, noam_lr
from aiayn.training.step import TrainStep, UpdateResult
from aiayn.training.trainer import Trainer
from aiayn.training.validator import ValidationHook

__all__ = [
    "CosineSchedule",
    "DistInfo",
    "NoamSchedule",
    "TrainConfig",
    "TrainResult",
    "TrainStep",
    "Trainer",
    "UpdateResult",
    "ValidationHook",
    "cosine_lr",
    "label_smoothed_nll",
    "noam_lr",
]
