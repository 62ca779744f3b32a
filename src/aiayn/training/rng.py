"""Snapshots of every random generator training uses, for exact resumption."""

from __future__ import annotations

import random
from typing import Any

import torch


def rng_state() -> dict[str, Any]:
    """Every random generator training uses (dropout on CPU/CUDA, Python's random)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank `rank`'s random generators: `seed` itself on rank 0, distinct elsewhere.

    Under torchrun every rank builds the model from the same seed (DDP also broadcasts rank 0's
    weights), then reseeds with this, so that dropout masks differ between ranks: with one seed
    every rank would drop the same units of its own batch. Rank 0 keeps `seed`, so a run on one
    process is the same with or without this step.
    """
    if rank == 0:
        return seed
    # A large odd multiplier keeps (seed, rank) pairs of nearby seeds apart.
    return (seed + rank * 0x9E3779B97F4A7C15) % 2**63
