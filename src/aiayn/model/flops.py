"""Matmul FLOPs a Transformer needs for given sentence lengths (for MFU in the benchmarks).

Counts 2 FLOPs per multiply-add of every matmul at real (non-pad) positions only: projections,
feed-forward, attention scores and weighted sums (causal self-attention counts the
T(T+1)/2 query-key pairs it needs), the cross-attention K/V projection once per source token and
the generator. Norms, softmax and element-wise work are left out, as is usual for MFU.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiayn.model.config import ModelConfig


def forward_flops(
    config: ModelConfig, src_lengths: Sequence[int], tgt_lengths: Sequence[int]
) -> float:
    """Forward-pass matmul FLOPs for a batch of sentence pairs of these real lengths.

    A training step (forward + backward) costs three times this.

    Args:
        config: the model's shape.
        src_lengths: real source tokens per sentence.
        tgt_lengths: real decoder positions per sentence.

    Returns:
        FLOPs as a float.
    """
    d, ff = config.d_model, config.d_ff
    total = 0.0
    for s, t in zip(src_lengths, tgt_lengths, strict=True):
        enc_layer = s * (2 * 4 * d * d + 2 * 2 * d * ff) + 2 * 2 * s * s * d
        dec_layer = (
            t * (2 * 4 * d * d + 2 * 2 * d * d + 2 * 2 * d * ff)  # self QKV+out, cross Q+out, FFN
            + s * 2 * 2 * d * d  # cross-attention K and V of the source
            + 2 * 2 * d * t * (t + 1) / 2  # causal self-attention scores and sums
            + 2 * 2 * d * t * s  # cross-attention scores and sums
        )
        total += config.n_encoder_layers * enc_layer + config.n_decoder_layers * dec_layer
        total += t * 2 * d * config.tgt_vocab_size  # generator
    return total
