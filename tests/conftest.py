"""Shared fixtures: the Multi30k copy beside the repository (../shared/data/multi30k)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def multi30k_dir() -> Path:
    """Where the tests read Multi30k: $AIAYN_TEST_DATA, else ../shared/data/multi30k."""
    env = os.environ.get("AIAYN_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "multi30k"


@pytest.fixture(scope="session")
def multi30k() -> Path:
    path = multi30k_dir()
    if not (path / "train.en.gz").exists():
        raise FileNotFoundError(
            f"Multi30k test data not found in {path}: set AIAYN_TEST_DATA to a folder holding "
            "the raw Multi30k *.gz files"
        )
    return path


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
