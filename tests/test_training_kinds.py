"""Checkpoint kinds: averaging and keep_last count epoch-end checkpoints unless told otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.run_helpers import copy_config, meta

from aiayn import ModelConfig, Transformer
from aiayn.cli import main
from aiayn.pipeline import train
from aiayn.runs import counted_checkpoints, prune_checkpoints, save_checkpoint, step_checkpoints


def _names(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_periodic_checkpoints_neither_count_as_epochs_nor_push_them_out(tmp_path: Path) -> None:
    run = tmp_path / "run"
    # ~16 updates per epoch; a periodic checkpoint every 5 updates.
    prepared, result = train(
        copy_config(max_epochs=4, save_every=5, keep_last=2, average_last=2), run
    )
    per_epoch = len(prepared.trainer.sampler)
    kept = step_checkpoints(run / "checkpoints")
    kinds = {p.name: meta(p)["kinds"] for p in kept}
    epochs = [p for p in kept if "epoch" in kinds[p.name]]
    # The last two epochs' checkpoints survive the many periodic ones written after them.
    assert [meta(p)["epoch"] for p in epochs] == [3, 4], kinds
    assert [meta(p)["step"] for p in epochs] == [3 * per_epoch, 4 * per_epoch]
    others = [p for p in kept if "epoch" not in kinds[p.name]]
    assert others and len(others) <= 2
    assert all(kinds[p.name] == ["periodic"] for p in others)
    # The average is made of exactly those two epoch-end checkpoints.
    average = meta(run / "checkpoints" / "average")
    assert average["averaged_from"] == _names(epochs)
    assert result.epochs == 4


def test_an_epoch_end_on_the_periodic_grid_is_one_checkpoint_of_both_kinds(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepared, _ = train(copy_config(max_epochs=1, keep_last=5), tmp_path / "probe")
    per_epoch = len(prepared.trainer.sampler)
    train(copy_config(max_epochs=2, save_every=per_epoch, keep_last=5), run)
    found = {p.name: meta(p)["kinds"] for p in step_checkpoints(run / "checkpoints")}
    assert found == {
        f"step-{per_epoch:08d}": ["epoch", "periodic"],
        f"step-{2 * per_epoch:08d}": ["epoch", "periodic"],
    }


def test_average_over_updates_averages_the_periodic_checkpoints(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(
        copy_config(
            max_steps=23, max_epochs=0, save_every=5, keep_last=3, average_last=3,
            average_over="updates",
        ),
        run,
    )  # fmt: skip
    average = meta(run / "checkpoints" / "average")
    # Periodic at 15 and 20, and where max_steps stopped (23, inside the second epoch).
    assert average["averaged_from"] == ["step-00000015", "step-00000020", "step-00000023"]
    assert meta(run / "checkpoints" / "step-00000023")["kinds"] == ["final"]


def test_aiayn_average_counts_epoch_end_checkpoints(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(copy_config(max_epochs=2, save_every=4, keep_last=3), run)
    epochs = [p for p in step_checkpoints(run / "checkpoints") if "epoch" in meta(p)["kinds"]]
    assert len(epochs) == 2
    assert main(["average", "--run", str(run), "--last", "2"]) == 0
    assert meta(run / "checkpoints" / "average")["averaged_from"] == _names(epochs)
    # Three step checkpoints of other kinds are on disk, but only two epoch-end ones.
    assert main(["average", "--run", str(run), "--last", "3"]) == 2


def test_prune_keeps_each_group_apart(tmp_path: Path) -> None:
    model = Transformer(ModelConfig.tiny(20, 20))
    kinds = {1: ["epoch"], 2: ["periodic"], 3: ["epoch"], 4: ["periodic"], 5: ["interrupt"]}
    for step, kind in kinds.items():
        meta_ = {"step": step, "kinds": kind}
        save_checkpoint(tmp_path / f"step-{step:08d}", model, model.config, None, meta_)
    deleted = prune_checkpoints(tmp_path, keep_last=1, average_over="epochs")
    assert _names(deleted) == ["step-00000001", "step-00000002", "step-00000004"]
    assert _names(step_checkpoints(tmp_path)) == ["step-00000003", "step-00000005"]
    assert _names(counted_checkpoints(tmp_path, "epochs")) == ["step-00000003"]
    assert counted_checkpoints(tmp_path, "updates") == []


def test_average_over_updates_needs_periodic_checkpoints() -> None:
    with pytest.raises(ValueError, match="save_every"):
        copy_config(average_over="updates")
