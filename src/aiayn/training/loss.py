"""Label-smoothed cross-entropy (paper section 5.4), summed so the trainer can normalise it."""

from __future__ import annotations

import torch
from torch import Tensor


class _SmoothedCrossEntropy(torch.autograd.Function):
    """Summed smoothed loss and NLL keeping one (N, V) tensor, the log-probabilities.

    log_softmax is one fused kernel that works a row at a time (the row stays in cache), so the
    log-probabilities cost about one read of the logits and one write; the logits themselves can
    then be freed. nll = -logp[gold] and mean_v(-log p_v) = -mean_v(logp). The gradient of the
    smoothed loss is softmax - (1 - epsilon) * onehot(gold) - epsilon / V: exp of the saved
    log-probabilities, written in place. (Autograd through log_softmax/gather/mean keeps
    several (N, V) tensors alive instead; a logsumexp-based forward passes over the (N, V)
    logits several times: both measured slower, docs/benchmarks.md.)
    """

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
        log_probs = torch.log_softmax(logits, dim=-1)  # (N, V)
        nll_sum = -log_probs.gather(-1, target[:, None]).sum()
        loss = (1.0 - epsilon) * nll_sum - epsilon * log_probs.mean(dim=-1).sum()
        ctx.save_for_backward(log_probs, target)
        ctx.epsilon = epsilon
        return loss, nll_sum

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_nll: Tensor) -> tuple[Tensor, None, None]:
        log_probs, target = ctx.saved_tensors
        epsilon = ctx.epsilon
        grad = log_probs.exp_()  # (N, V) softmax, in the saved buffer (backward runs once)
        gold = torch.full_like(grad[:, :1], -(1.0 - epsilon))
        grad.scatter_add_(-1, target[:, None], gold)
        if epsilon:
            grad.sub_(epsilon / grad.shape[-1])
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
