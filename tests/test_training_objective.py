"""Label smoothing and the learning-rate schedule, against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from aiayn.training import NoamSchedule, label_smoothed_nll, noam_lr


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
