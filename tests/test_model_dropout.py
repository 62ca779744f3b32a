"""Our CPU dropout: nn.Dropout's distribution and scaling, from 16 random bits per element."""

import pytest
import torch

from aiayn.model.fast import Dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_keep_mask_is_bernoulli(p: float) -> None:
    x = torch.empty(1001, 997)  # odd size: the last 64-bit word is only partly used
    mask = keep_mask(x, p)
    assert mask.shape == x.shape and mask.dtype == torch.bool
    n = mask.numel()
    std = (p * (1 - p) / n) ** 0.5
    assert abs(mask.float().mean().item() - (1 - p)) < 5 * std
    # Each of the four 16-bit lanes of a word and neighbouring elements are independent draws.
    lanes = mask.flatten()[: n // 4 * 4].view(-1, 4).float()
    for lane in lanes.unbind(1):
        assert abs(lane.mean().item() - (1 - p)) < 5 * std * 2
    both = (lanes[:, 0] * lanes[:, 1]).mean().item()
    assert abs(both - (1 - p) ** 2) < 0.01
    assert not torch.equal(mask, keep_mask(x, p))  # fresh draws each call


def test_dropout_scales_kept_values_and_backpropagates_through_the_mask() -> None:
    dropout = Dropout(0.3).train()
    x = torch.randn(64, 50, requires_grad=True)
    y = dropout(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.7)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.7)
    # Same seed, same mask: training runs stay reproducible and resumable.
    torch.manual_seed(5)
    a = dropout(x)
    torch.manual_seed(5)
    assert torch.equal(a, dropout(x))
    assert torch.equal(dropout.eval()(x), x)
