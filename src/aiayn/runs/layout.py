"""The layout of a run directory, and `run.json`: what a trained run tells its users.

run/
  config.yaml          the RunConfig the run was started with (YAML keys = dataclass fields)
  run.json             model config, tuned decoding settings, default checkpoint
  provenance.json      package version, git commit, command line, torch, hardware
  tokenizer/           the subword vocabulary (see aiayn.data.Vocabularies)
  checkpoints/         step-XXXXXXXX/, best/, average/ (see checkpoint.py)
  metrics.jsonl        one JSON record per log line; tensorboard/ mirrors it
  curves.png           loss (and BLEU) curves, drawn when training ends
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aiayn.errors import AiaynError
from aiayn.model import ModelConfig
from aiayn.runs.atomic import atomic_write_json
from aiayn.runs.checkpoint import step_checkpoints


class RunError(AiaynError, ValueError):
    """A run directory that is missing or incomplete."""


@dataclass(frozen=True)
class RunDir:
    """Paths and metadata of one run directory."""

    path: Path

    @property
    def config_file(self) -> Path:
        """The run's config.yaml."""
        return self.path / "config.yaml"

    @property
    def info_file(self) -> Path:
        """run.json: model config, decoding settings, default checkpoint."""
        return self.path / "run.json"

    @property
    def provenance_file(self) -> Path:
        """provenance.json: what produced the run."""
        return self.path / "provenance.json"

    @property
    def checkpoints(self) -> Path:
        """Folder of the checkpoints."""
        return self.path / "checkpoints"

    @property
    def metrics_file(self) -> Path:
        """metrics.jsonl."""
        return self.path / "metrics.jsonl"

    @property
    def curves_file(self) -> Path:
        """curves.png."""
        return self.path / "curves.png"

    def info(self) -> dict[str, Any]:
        """The contents of run.json."""
        if not self.path.is_dir():
            raise RunError(f"run directory {self.path} does not exist")
        try:
            info = json.loads(self.info_file.read_text())
        except FileNotFoundError:
            raise RunError(
                f"{self.path} is not a run directory (no run.json); train one with `aiayn train`"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RunError(f"{self.info_file} is corrupt: {error}") from None
        if not isinstance(info, dict):
            raise RunError(f"{self.info_file} is corrupt: expected a JSON object")
        return info

    def update_info(self, **values: Any) -> None:
        """Merge `values` into run.json (atomically)."""
        info = self.info() if self.info_file.exists() else {}
        info.update(values)
        atomic_write_json(self.info_file, info)

    def model_config(self) -> ModelConfig:
        """The model config recorded in run.json."""
        values = self.info().get("model_config")
        if not isinstance(values, dict):
            raise RunError(f"{self.info_file} has no model_config object")
        try:
            return ModelConfig.from_dict(values)
        except ValueError as error:
            raise RunError(f"{self.info_file}: model_config: {error}") from None

    def default_checkpoint(self) -> Path:
        """The checkpoint decoding uses unless told otherwise (averaged, else best, else latest)."""
        name = self.info().get("default_checkpoint")
        if name and (self.path / name).is_dir():
            return self.path / name
        latest = self.latest_checkpoint()
        if latest is None:
            raise RunError(f"run {self.path} has no checkpoint yet")
        return latest

    def set_default_checkpoint(self, checkpoint: Path | None) -> None:
        """Record the checkpoint decoding uses by default: relative to the run when inside it."""
        name = None
        if checkpoint is not None:
            path, root = checkpoint.resolve(), self.path.resolve()
            name = str(path.relative_to(root) if path.is_relative_to(root) else path)
        self.update_info(default_checkpoint=name)

    def latest_checkpoint(self) -> Path | None:
        """The newest step checkpoint, or None."""
        found = step_checkpoints(self.checkpoints)
        return found[-1] if found else None


def git_commit(start: Path) -> str | None:
    """The git commit of the folder holding `start` (our source tree), if it is a repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=start,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(device_description: str) -> dict[str, Any]:
    """What produced a run: versions, command line, hardware."""
    from aiayn import __version__

    return {
        "aiayn_version": __version__,
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "command": sys.argv,
        "cwd": os.getcwd(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": device_description,
        "host": platform.node(),
    }
