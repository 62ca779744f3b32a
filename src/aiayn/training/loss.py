"""Label-smoothed cross-entropy (paper section 5.4), summed so the trainer can normalise it."""

from __future__ import annotations

from torch import Tensor


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
    log_probs = logits.float().log_softmax(dim=-1)  # (N, V); float32 even under autocast
    nll = -log_probs.gather(-1, target[:, None]).squeeze(-1)  # (N,)
    nll_sum = nll.sum()
    if epsilon == 0.0:
        return nll_sum, nll_sum.detach()
    smooth = -log_probs.mean(dim=-1)  # (N,)
    loss = (1.0 - epsilon) * nll_sum + epsilon * smooth.sum()
    return loss, nll_sum.detach()
