"""Small runs for the training tests: the copy task, a few hundred pairs, seconds per run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiayn.config import RunConfig


def copy_config(**train: Any) -> RunConfig:
    """The copy task on 300 pairs (about 16 updates per epoch at 256 tokens), no BLEU, fp32."""
    config = RunConfig().replace("data", task="copy", task_train_size=300, task_valid_size=20)
    settings = dict(max_tokens=256, progress=False, precision="fp32", valid_bleu=0, warmup=20)
    return config.replace("train", **{**settings, **train})


def records(run: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The run's metrics.jsonl records (of one kind, if given)."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    found = [json.loads(line) for line in lines if line.strip()]
    return [r for r in found if kind is None or r["kind"] == kind]


def meta(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's meta.json."""
    return json.loads((checkpoint / "meta.json").read_text())
