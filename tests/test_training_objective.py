"""Label smoothing and the learning-rate schedule, against hand-computed values."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from aiayn.errors import ConfigError
from aiayn.training import (
    CosineSchedule,
    NoamSchedule,
    TrainConfig,
    cosine_lr,
    label_smoothed_nll,
    noam_lr,
)


def test_label_smoothing_matches_a_hand_computed_case() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    target = torch.tensor([0])
    eps = 0.1
    log_z = math.log(math.exp(2.0) + math.exp(0.0) + math.exp(-1.0))
    log_p = [2.0 - log_z, 0.0 - log_z, -1.0 - log_z]
    # target distribution: 1 - eps + eps/3 on class 0, eps/3 on the others
    expected = -((1 - eps + eps / 3) * log_p[0] + eps / 3 * log_p[1] + eps / 3 * log_p[2])
    loss, nll = label_smoothed_nll(logits, target, eps)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert nll.item() == pytest.approx(-log_p[0], abs=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_has_cross_entropy_semantics(eps: float) -> None:
    logits = torch.randn(13, 29, requires_grad=True)
    target = torch.randint(0, 29, (13,))
    loss, nll = label_smoothed_nll(logits, target, eps)
    ref = F.cross_entropy(logits, target, label_smoothing=eps, reduction="sum")
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, F.cross_entropy(logits, target, reduction="sum"))
    (grad,) = torch.autograd.grad(loss, logits)
    (ref_grad,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(grad, ref_grad)


def test_schedule_values_at_one_warmup_and_twice_warmup() -> None:
    d, w = 512, 4000
    assert noam_lr(1, d, w) == pytest.approx(d**-0.5 * w**-1.5)
    assert noam_lr(w, d, w) == pytest.approx(d**-0.5 * w**-0.5)  # the peak, both branches meet
    assert noam_lr(2 * w, d, w) == pytest.approx(d**-0.5 * (2 * w) ** -0.5)
    assert noam_lr(w, d, w) > noam_lr(w - 1, d, w) and noam_lr(w, d, w) > noam_lr(w + 1, d, w)
    assert noam_lr(10, d, w, factor=2.0) == pytest.approx(2 * noam_lr(10, d, w))
    with pytest.raises(ValueError, match="from 1"):
        noam_lr(0, d, w)


def test_schedule_sets_the_optimizer_lr_and_round_trips() -> None:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
    schedule = NoamSchedule(opt, d_model=256, warmup=10)
    for _ in range(3):
        lr = schedule.step()
    assert opt.param_groups[0]["lr"] == lr == pytest.approx(noam_lr(3, 256, 10))
    other = NoamSchedule(opt, 256, 10)
    other.load_state_dict(schedule.state_dict())
    assert other.step() == pytest.approx(noam_lr(4, 256, 10))


def test_cosine_warms_up_like_the_paper_then_falls_to_its_floor() -> None:
    d, w, total, floor = 128, 100, 1100, 0.1
    peak = noam_lr(w, d, w)
    for step in (1, 50, w):  # the warmup is the paper's
        assert cosine_lr(step, d, w, total, floor=floor) == pytest.approx(noam_lr(step, d, w))
    assert cosine_lr(w + 500, d, w, total, floor=floor) == pytest.approx(peak * (1 + floor) / 2)
    assert cosine_lr(total, d, w, total, floor=floor) == pytest.approx(peak * floor)
    assert cosine_lr(total + 50, d, w, total, floor=floor) == pytest.approx(peak * floor)
    after = [cosine_lr(s, d, w, total, floor=floor) for s in range(w, total + 1)]
    assert all(a > b for a, b in itertools.pairwise(after))  # strictly falling
    # below the paper's curve by the end: what the decay is for
    assert cosine_lr(total - 100, d, w, total) < noam_lr(total - 100, d, w)
    assert cosine_lr(total, d, w, total, factor=2.0) == 0.0


def test_cosine_schedule_asks_its_length_once_and_round_trips() -> None:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
    asked = []
    schedule = CosineSchedule(opt, 64, 5, lambda: asked.append(1) or 20, floor=0.5)
    assert asked == []  # not at construction: the trainer's epoch length may not be known yet
    lrs = [schedule.step() for _ in range(20)]
    assert asked == [1] and lrs[-1] == pytest.approx(0.5 * noam_lr(5, 64, 5))
    other = CosineSchedule(opt, 64, 5, 20, floor=0.5)
    other.load_state_dict({"step_count": 10})
    assert other.step() == pytest.approx(lrs[10])


@pytest.mark.parametrize(
    ("field", "value"), [("lr_decay", "linear"), ("lr_floor", 1.0), ("lr_floor", -0.1)]
)
def test_bad_decay_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"train.{field}"):
        TrainConfig(**{field: value})
