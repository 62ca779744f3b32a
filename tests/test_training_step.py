"""`TrainStep`, the one update function: `Trainer.fit` runs it for every update, the benchmark
times it, and it leaves the losses on the device (no per-batch wait for the device)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aiayn.config import RunConfig
from aiayn.data import Collator, DataConfig
from aiayn.model import ModelConfig, Transformer, fast
from aiayn.pipeline import train
from aiayn.training import NoamSchedule, TrainConfig, TrainStep
from aiayn.training.optim import make_optimizer

CPU = torch.device("cpu")


def tiny_batches(n: int = 3) -> list:
    g = torch.Generator().manual_seed(0)
    collate = Collator()
    batches = []
    for _ in range(n):
        pairs = [
            (torch.randint(4, 20, (int(s),), generator=g).tolist(),
             torch.randint(4, 20, (int(t),), generator=g).tolist())
            for s, t in zip(torch.randint(2, 7, (4,), generator=g),
                            torch.randint(2, 7, (4,), generator=g), strict=True)
        ]  # fmt: skip
        batches.append(collate(pairs))
    return batches


def make_step(model: Transformer, config: TrainConfig) -> TrainStep:
    optimizer = make_optimizer(model, config, CPU)
    schedule = NoamSchedule(optimizer, model.config.d_model, config.warmup)
    return TrainStep(
        model, optimizer, schedule, label_smoothing=config.label_smoothing,
        clip_norm=config.clip_norm, precision="fp32", device=CPU,
    )  # fmt: skip


def test_fit_runs_train_step_once_per_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = TrainStep.__call__

    def counted(self, batches, stop_requested=lambda: False):  # type: ignore[no-untyped-def]
        calls.append(len(batches))
        return original(self, batches, stop_requested)

    monkeypatch.setattr(TrainStep, "__call__", counted)
    config = RunConfig(
        model={"preset": "tiny"},
        data=DataConfig(task="sort", task_train_size=200, task_valid_size=10),
        train=TrainConfig(max_steps=3, max_tokens=256, warmup=4, update_freq=2, progress=False,
                          precision="fp32"),
    )  # fmt: skip
    _, result = train(config, tmp_path / "run")
    assert result.steps == 3 and calls == [2, 2, 2]


def test_an_update_leaves_the_losses_on_the_device_and_reads_no_tensor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    model = Transformer(ModelConfig.tiny(20, 20))
    step = make_step(model, TrainConfig(clip_norm=1.0))
    batches = tiny_batches()
    before = [p.detach().clone() for p in model.parameters()]

    def host_read(*args: object, **kwargs: object) -> object:
        raise AssertionError("the update read a tensor on the host")

    # The model's own right-padding check reads a flag (the model's business, not the
    # update's); Collator batches are right-padded.
    monkeypatch.setattr(fast, "target_key_mask", lambda mask: None)
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, host_read)
    result = step(batches, lambda: False)
    monkeypatch.undo()

    assert isinstance(result.loss, torch.Tensor) and isinstance(result.nll, torch.Tensor)
    assert result.loss.dtype == torch.float64 and not result.stop
    assert result.tokens == sum(b.n_tgt_tokens for b in batches)
    assert float(result.loss) > float(result.nll) > 0  # smoothing adds to the NLL
    assert step.schedule.step_count == 1
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


def test_the_stop_request_is_read_after_the_batches() -> None:
    model = Transformer(ModelConfig.tiny(20, 20))
    step = make_step(model, TrainConfig())
    seen: list[int] = []

    def asked() -> bool:
        seen.append(step.schedule.step_count)  # before the optimizer step of this update
        return True

    assert step(tiny_batches(2), asked).stop and seen == [0]
