"""Checkpoints: safetensors weights plus the trainer's state, written atomically as one folder.

Layout of one checkpoint folder (e.g. `checkpoints/step-00001200/`):

    model.safetensors   the weights (tied tables stored once)
    trainer.pt          optimizer, schedule, update/epoch counters, data position, RNG states
                        (tensors and plain values only: loaded with weights_only=True)
    meta.json           model config, step, epoch, validation metrics, time

The folder is written under a temporary name and renamed into place, so a crash or Ctrl-C never
leaves a half-written checkpoint where `--resume` would find it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from aiayn.errors import AiaynError
from aiayn.model import ModelConfig
from aiayn.runs.atomic import write_folder

WEIGHTS = "model.safetensors"
STATE = "trainer.pt"
META = "meta.json"
STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(AiaynError, RuntimeError):
    """A checkpoint that is missing, corrupt, truncated or made for another model."""


def step_dir_name(step: int) -> str:
    """Folder name of the checkpoint after `step` updates."""
    return f"step-{step:08d}"


def save_checkpoint(
    directory: Path,
    model: nn.Module,
    config: ModelConfig,
    trainer_state: dict[str, Any] | None,
    meta: dict[str, Any],
) -> Path:
    """Write a checkpoint folder atomically.

    Args:
        directory: the final folder, e.g. `run/checkpoints/step-00001200`.
        model: the (unwrapped) model.
        config: its config, stored so a mismatched model is refused on load.
        trainer_state: optimizer/schedule/data/RNG state, or None for weights only.
        meta: extra JSON-able facts (step, epoch, metrics).

    Returns:
        The folder.
    """
    info = {"model_config": config.to_dict(), "saved_at": time.time(), **meta}

    def write(tmp: Path) -> None:
        save_model(model, str(tmp / WEIGHTS))
        if trainer_state is not None:
            torch.save(trainer_state, tmp / STATE)
        (tmp / META).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    return write_folder(Path(directory), write)


def read_meta(directory: Path) -> dict[str, Any]:
    """The checkpoint's meta.json."""
    path = Path(directory) / META
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"{directory} is not a checkpoint folder: {META} is missing"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint metadata {path} is corrupt: {error}") from None


def checkpoint_config(directory: Path) -> ModelConfig:
    """The model config a checkpoint was saved with."""
    try:
        return ModelConfig.from_dict(read_meta(directory)["model_config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {directory} has an invalid model config: {error}"
        ) from None


def load_weights(directory: Path, model: nn.Module, config: ModelConfig | None = None) -> None:
    """Load a checkpoint's weights into `model` (on whatever device the model is on).

    Args:
        directory: checkpoint folder.
        model: the model to fill.
        config: the model's config; if given, it must equal the checkpoint's.

    Raises:
        CheckpointError: missing, corrupt or truncated file, or a model of another shape.
    """
    directory = Path(directory)
    path = directory / WEIGHTS
    if not path.exists():
        raise CheckpointError(f"checkpoint weights {path} not found")
    if config is not None:
        saved = checkpoint_config(directory)
        if saved != config:
            diff = {
                k: (v, config.to_dict()[k])
                for k, v in saved.to_dict().items()
                if config.to_dict()[k] != v
            }
            raise CheckpointError(
                f"checkpoint {directory} was made for another model config (saved vs now: {diff})"
            )
    device = next(model.parameters()).device
    try:
        missing, unexpected = load_model(model, str(path), strict=False, device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint weights {path} are corrupt or truncated: {error}"
        ) from None
    except RuntimeError as error:  # shape mismatch
        raise CheckpointError(f"checkpoint weights {path} do not fit this model: {error}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint weights {path} do not fit this model: missing {sorted(missing)}, "
            f"unexpected {sorted(unexpected)}"
        )


def load_trainer_state(directory: Path) -> dict[str, Any]:
    """The optimizer/schedule/data/RNG state of a checkpoint (loaded on the CPU).

    Loaded with `torch.load(weights_only=True)`: only tensors and plain containers and values
    are rebuilt, so a crafted `trainer.pt` cannot run code; anything else is refused unread.

    Raises:
        CheckpointError: the file is missing, damaged, or holds other objects.
    """
    path = Path(directory) / STATE
    if not path.exists():
        raise CheckpointError(f"{path} not found: this checkpoint holds weights only")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises several types for a damaged or foreign file
        # torch's own message is pages long and suggests weights_only=False: not repeated here.
        raise CheckpointError(
            f"trainer state {path} is corrupt, truncated, or holds objects other than tensors "
            "and plain values (refused without running anything in it)"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"trainer state {path} is not a dict of training state")
    return state


def step_checkpoints(root: Path) -> list[Path]:
    """The `step-*` checkpoint folders under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def average_checkpoints(directories: list[Path], output: Path) -> Path:
    """Average the weights of several checkpoints (the paper's checkpoint averaging).

    Args:
        directories: checkpoint folders of the same model.
        output: folder to write the averaged weights (and the first one's meta) to.

    Returns:
        The output folder.
    """
    if not directories:
        raise CheckpointError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    for directory in directories:
        path = Path(directory) / WEIGHTS
        try:
            weights = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"checkpoint weights {path} are corrupt: {error}") from None
        if total and weights.keys() != total.keys():
            raise CheckpointError(f"{path} holds other tensors than {directories[0]}")
        for name, value in weights.items():
            total[name] = total.get(name, 0) + value.double()
    averaged = {k: (v / len(directories)).float() for k, v in total.items()}
    meta = read_meta(directories[-1])
    meta.update(averaged_from=[Path(d).name for d in directories])
    meta.pop("kinds", None)  # an average is no step checkpoint of any kind

    def write(tmp: Path) -> None:
        save_file(averaged, str(tmp / WEIGHTS))
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    return write_folder(Path(output), write)
