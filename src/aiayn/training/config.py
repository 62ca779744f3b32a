"""Training hyper-parameters: a frozen dataclass whose fields are the YAML keys of `train:`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aiayn.errors import ConfigError
from aiayn.runs.retention import AVERAGE_OVER
from aiayn.training.precision import PRECISIONS
from aiayn.training.schedule import DECAYS
from aiayn.typed_config import check_types


@dataclass(frozen=True)
class TrainConfig:
    """How to train: batches, optimizer, schedule, length, checkpoints and logging."""

    max_tokens: int = 4096  # tokens per batch per process (padded, max of source and target)
    max_sentences: int | None = None  # optional cap on sentences per batch
    update_freq: int = 1  # batches accumulated per update (gradient accumulation)
    lr_factor: float = 1.0  # the schedule's factor: lr = factor * d^-0.5 * min(...)
    warmup: int = 4000  # warmup updates of the paper's schedule
    lr_decay: str = "inverse_sqrt"  # after warmup: "inverse_sqrt" (the paper) or "cosine" (to
    #   lr_floor x the peak at the last planned update: max_steps, else max_epochs' updates;
    #   max_minutes may end training before it)
    lr_floor: float = 0.0  # the cosine decay's final learning rate as a fraction of the peak
    adam_beta1: float = 0.9  # Adam beta1 (paper: 0.9)
    adam_beta2: float = 0.98  # Adam beta2 (paper: 0.98)
    adam_eps: float = 1e-9  # Adam epsilon (paper: 1e-9)
    weight_decay: float = 0.0  # decoupled weight decay (AdamW) when > 0
    label_smoothing: float = 0.1  # epsilon of label smoothing (paper: 0.1)
    token_dropout: float = 0.0  # replace each real input token (source, and decoder input
    #   after BOS) by <unk> with this probability in training; labels unchanged; 0 = off
    clip_norm: float = 0.0  # gradient-norm clipping; 0 = off
    max_steps: int = 0  # stop after this many updates; 0 = no limit
    max_epochs: int = 10  # stop after this many epochs; 0 = no limit
    max_minutes: float = 0.0  # also stop at the first epoch end after this many minutes of
    #   training (resumed sessions and validation included), then end as at max_epochs
    #   (validation, final checkpoint, averaging); 0 = no limit
    seed: int = 1  # seeds the model init, dropout and batch order
    precision: str = "auto"  # "auto" (bf16 where native), "fp32" or "bf16"
    compile: bool = False  # wrap the model in torch.compile
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    save_every: int = 0  # also checkpoint every N updates; 0 = at the end of each epoch only
    keep_last: int = 5  # step checkpoints kept on disk (best and averaged kept apart)
    average_last: int = 0  # average the last N counted checkpoints when training ends; 0 = no
    average_over: str = "epochs"  # what keep_last/average_last count: "epochs" (epoch-end
    #   checkpoints) or "updates" (the periodic ones of save_every, as the paper averages)
    best_metric: str = "loss"  # choose the best checkpoint by "loss" (val NLL) or "bleu"
    validate_every: int = 1  # validate every N epochs
    valid_bleu: int = 500  # validation sentences translated (greedy) for BLEU after each
    #   validation by `aiayn train`'s hook; 0 = loss only (the trainer itself never translates)
    log_every: int = 50  # log training metrics every N updates
    progress: bool = True  # show a progress bar
    dist_timeout: float = 1800.0  # under torchrun: seconds a rank waits for the others in a
    #   collective before it stops with an error (a hung rank; a dead one is seen at once).
    #   Must exceed the longest time rank 0 works alone: validation BLEU, checkpoint writes

    def __post_init__(self) -> None:
        check_types(self, "train")
        positive = (
            "max_tokens",
            "update_freq",
            "warmup",
            "keep_last",
            "validate_every",
            "log_every",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in (
            "max_steps",
            "max_epochs",
            "max_minutes",
            "save_every",
            "average_last",
            "clip_norm",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_sentences is not None and self.max_sentences < 1:
            raise ConfigError(
                f"train.max_sentences must be at least 1 or null, got {self.max_sentences}"
            )
        if self.dist_timeout <= 0:
            raise ConfigError(f"train.dist_timeout must be > 0 seconds, got {self.dist_timeout}")
        if self.valid_bleu < 0:
            raise ConfigError(f"train.valid_bleu must be >= 0, got {self.valid_bleu}")
        if self.average_over not in AVERAGE_OVER:
            raise ConfigError(
                f"train.average_over must be one of {AVERAGE_OVER}, got {self.average_over!r}"
            )
        if self.average_over == "updates" and not self.save_every:
            raise ConfigError(
                "train.average_over 'updates' averages the periodic checkpoints: set "
                "train.save_every too"
            )
        if self.max_steps == 0 and self.max_epochs == 0:
            raise ConfigError(
                "train.max_steps and train.max_epochs are both 0: training never ends"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(
                f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}"
            )
        if not 0.0 <= self.token_dropout < 1.0:
            raise ConfigError(f"train.token_dropout must be in [0, 1), got {self.token_dropout}")
        if self.lr_decay not in DECAYS:
            raise ConfigError(f"train.lr_decay must be one of {DECAYS}, got {self.lr_decay!r}")
        if not 0.0 <= self.lr_floor < 1.0:
            raise ConfigError(f"train.lr_floor must be in [0, 1), got {self.lr_floor}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"train.precision must be one of {PRECISIONS}, got {self.precision!r}"
            )
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise ConfigError(
                    f"train.device must be auto or a torch device (cpu, cuda, cuda:1, ...), "
                    f"got {self.device!r}"
                ) from None
        if self.best_metric not in ("loss", "bleu"):
            raise ConfigError(
                f"train.best_metric must be 'loss' or 'bleu', got {self.best_metric!r}"
            )
        if self.average_last > self.keep_last:
            raise ConfigError(
                f"train.average_last ({self.average_last}) needs train.keep_last >= it "
                f"(got {self.keep_last})"
            )
