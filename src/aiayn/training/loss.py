"""Label-smoothed cross-entropy (paper section 5.4), summed so the trainer can normalise it."""

from __future__ import annotations

import torch
from torch import Tensor


class _SmoothedCrossEntropy(torch.autograd.Function):
    """Summed smoothed loss and NLL with one (N, V) temporary, in backward only.

    With lse = logsumexp(logits), nll = lse - logits[gold] and mean_v(-log p_v) = lse -
    mean_v(logits), so the forward needs no (N, V) log-probabilities; the gradient of the
    smoothed loss is softmax - (1 - epsilon) * onehot(gold) - epsilon / V, written in place into
    the one softmax buffer. Autograd through log_softmax/gather/mean keeps several (N, V)
    tensors alive instead, and the generator's output is the largest activation of the step.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
        lse = torch.logsumexp(logits, dim=-1)  # (N,)
        gold = logits.gather(-1, target[:, None]).squeeze(-1)  # (N,)
        nll_sum = (lse - gold).sum()
        loss = nll_sum + epsilon * (gold - logits.mean(dim=-1)).sum()
        ctx.save_for_backward(logits, target, lse)
        ctx.epsilon = epsilon
        return loss, nll_sum

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_nll: Tensor) -> tuple[Tensor, None, None]:
        logits, target, lse = ctx.saved_tensors
        epsilon = ctx.epsilon
        grad = (logits - lse[:, None]).exp_()  # (N, V) softmax, the one temporary
        grad.scatter_add_(-1, target[:, None], torch.full_like(lse[:, None], -(1.0 - epsilon)))
        if epsilon:
            grad.sub_(epsilon / logits.shape[-1])
        return grad.mul_(grad_loss), None, None


def label_smoothed_nll(logits: Tensor, target: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
    """Summed label-smoothed loss and summed NLL over the given positions.

    Semantics of `F.cross_entropy(logits, target, label_smoothing=epsilon, reduction="sum")`:
    the target distribution puts 1 - epsilon on the gold token and spreads epsilon uniformly over
    all V classes (the gold one included), so

        loss = (1 - epsilon) * nll + epsilon * mean_v(-log p_v)

    Only pass real positions (the trainer selects non-pad targets before the generator, so no
    ignore_index is needed). Both sums are returned because perplexity and checkpoint selection
    use the unsmoothed NLL.

    Args:
        logits: scores over the vocabulary at N positions.
        target: gold ids at those positions.
        epsilon: label smoothing in [0, 1).

    Returns:
        (smoothed loss summed over N, NLL summed over N), both scalars.

    Shape:
        logits: (N, V), target: (N,)
    """
    # float32 even under autocast: the sums over V lose too much in bf16.
    loss, nll_sum = _SmoothedCrossEntropy.apply(logits.float(), target, float(epsilon))
    return loss, nll_sum.detach()
