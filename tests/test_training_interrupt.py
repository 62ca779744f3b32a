"""Ctrl-C and SIGTERM stop training between updates, with a checkpoint that agrees with itself.

The signals are sent from inside the training step (a wrapped schedule or validation hook), so
they land exactly where a real Ctrl-C can: between the schedule and the optimizer, in the middle
of a validation.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from tests.run_helpers import copy_config, meta, records

from aiayn.pipeline import prepare
from aiayn.runs import CheckpointError, load_trainer_state, step_checkpoints
from aiayn.training.interrupt import StopRequest


def test_first_signal_sets_a_flag_the_second_ctrl_c_aborts() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signal_name == "SIGTERM"
        os.kill(os.getpid(), signal.SIGTERM)  # a repeated SIGTERM stays a request
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def _signal_after_schedule_step(trainer, at_update: int, signum: int, times: int = 1) -> None:
    """Send `signum` right after the schedule advanced, before the optimizer step."""
    step = trainer.schedule.step

    def step_then_signal() -> float:
        lr = step()
        if trainer.schedule.step_count == at_update:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        return lr

    trainer.schedule.step = step_then_signal


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_an_update_stops_after_it(tmp_path: Path, signum: int) -> None:
    run = tmp_path / "run"
    prepared = prepare(copy_config(max_epochs=2, update_freq=2), run)
    _signal_after_schedule_step(prepared.trainer, 3, signum)
    result = prepared.trainer.fit()
    assert result.interrupted and result.steps == 3
    (checkpoint,) = step_checkpoints(run / "checkpoints")
    assert checkpoint.name == "step-00000003" and meta(checkpoint)["kinds"] == ["interrupt"]
    state = load_trainer_state(checkpoint)
    # Step counter, schedule and optimizer all after update 3; the data position too.
    assert state["step"] == state["schedule"]["step_count"] == 3
    adam_steps = {float(s["step"]) for s in state["optimizer"]["state"].values()}
    assert adam_steps == {3.0}
    assert state["consumed"] == 6  # update_freq 2: six batches


def test_a_second_ctrl_c_aborts_without_saving(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepared = prepare(copy_config(max_epochs=2), run)
    _signal_after_schedule_step(prepared.trainer, 3, signal.SIGINT, times=2)
    with pytest.raises(KeyboardInterrupt):
        prepared.trainer.fit()
    assert step_checkpoints(run / "checkpoints") == []


def test_ctrl_c_in_validation_is_validated_again_on_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    calls: list[int] = []

    def hook(model, epoch: int, step: int) -> dict[str, float]:
        calls.append(epoch)
        if len(calls) == 2:  # the second epoch's validation: Ctrl-C lands here
            os.kill(os.getpid(), signal.SIGINT)
        return {"bleu": float(epoch)}

    config = copy_config(max_epochs=3)
    prepared = prepare(config, run, hook_factory=lambda *_: [hook])
    result = prepared.trainer.fit()
    per_epoch = len(prepared.trainer.sampler)
    assert result.interrupted and result.epochs == 2
    interrupted = step_checkpoints(run / "checkpoints")[-1]
    assert meta(interrupted)["kinds"] == ["epoch", "interrupt"]
    assert meta(interrupted)["pending_validation"] is True
    assert [r["epoch"] for r in records(run, "valid")] == [1]

    resumed = prepare(None, run, resume=True, hook_factory=lambda *_: [hook])
    result = resumed.trainer.fit()
    assert not result.interrupted and result.epochs == 3
    # Epoch 2 was validated first thing after resuming, then epoch 3: one row per epoch.
    assert calls == [1, 2, 2, 3]
    valid = records(run, "valid")
    assert [(r["epoch"], r["step"]) for r in valid] == [(e, e * per_epoch) for e in (1, 2, 3)]
    assert [r["epoch"] for r in records(run, "epoch")] == [1, 2, 3]
    again = meta(run / "checkpoints" / f"step-{2 * per_epoch:08d}")
    assert again["kinds"] == ["epoch"] and not again["pending_validation"]
    assert again["valid"]["bleu"] == 2.0


def test_time_and_tokens_cover_every_session_of_a_resumed_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepared = prepare(copy_config(max_epochs=2, log_every=1), run)
    _signal_after_schedule_step(prepared.trainer, 5, signal.SIGINT)
    first = prepared.trainer.fit()
    resumed = prepare(None, run, resume=True)
    second = resumed.trainer.fit()
    tokens = sum(r["tokens"] for r in records(run, "train"))
    assert second.steps == len(records(run, "train"))  # every update logged exactly once
    assert second.seconds > first.seconds > 0
    assert second.tokens_per_second * second.seconds == pytest.approx(tokens)


def test_resume_falls_back_past_a_damaged_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepare(copy_config(max_epochs=1, save_every=4), run).trainer.fit()
    checkpoints = step_checkpoints(run / "checkpoints")
    newest, previous = checkpoints[-1], checkpoints[-2]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    resumed = prepare(copy_config(max_epochs=2, save_every=4), run, resume=True)
    assert resumed.trainer.step == meta(previous)["step"]
    assert not newest.exists() and newest.with_name(newest.name + ".damaged").is_dir()
    assert not resumed.trainer.fit().interrupted


def test_resume_with_every_checkpoint_damaged_names_them(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepare(copy_config(max_steps=8, max_epochs=0, save_every=4), run).trainer.fit()
    for checkpoint in step_checkpoints(run / "checkpoints"):
        (checkpoint / "trainer.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError) as caught:
        prepare(None, run, resume=True)
    message = str(caught.value)
    assert "step-00000004" in message and "step-00000008" in message and "remove" in message
