"""Speed tricks: the one place where the model departs from the plain code of the paper.

`attention.py`, `layers.py` and `transformer.py` are written to read beside the paper. Where
they run faster than the code a learner would write, they call into this module, so the paper-
shaped files show *that* a trick is used (`fast.Dropout`, `fast.sdpa_attention`, ...) and this
file shows *how*. Every trick here:

- computes what a plain version computes (named in its docstring), so deleting the trick and
  calling the plain version changes no result, only the speed;
- names the test that proves the two agree.

How much each trick wins, on which machine, is in docs/benchmarks.md, not here: the figures
depend on the CPU and the torch release, the equivalences do not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aiayn.model.masks import causal_mask, key_mask

# ----------------------------------------------------------------------------------- dropout


def keep_mask(x: Tensor, p: float) -> Tensor:
    """Boolean mask, True with probability 1 - p (to 1/65536), from 16 random bits per element.

    Plain version: `torch.rand_like(x) >= p`. One 64-bit random word gives four elements their
    16-bit draw, a quarter of the generator calls of `rand_like`, whose serial CPU generator is
    what dropout's time goes to.

    Proof: tests/test_model_dropout.py::test_keep_mask_is_bernoulli (keep rate per 16-bit lane,
    independence of neighbouring lanes, fresh draws per call).
    """
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
    words.random_(-(2**63), None)  # every bit uniform (the default range leaves the sign bit 0)
    threshold = round(p * 65536) - 32768  # int16 draws are uniform in [-32768, 32767]
    return (words.view(torch.int16)[:n] >= threshold).view(x.shape)


class Dropout(nn.Dropout):
    """`nn.Dropout` (zero each element with probability p, scale the rest by 1 / (1 - p)), with
    its CPU mask drawn 16 bits at a time by `keep_mask`.

    Plain version: `nn.Dropout(p)`, whose CPU mask comes from `bernoulli_`, one element at a
    time, and whose backward keeps a float mask (this one keeps a boolean mask, a quarter of the
    memory). p is resolved to 1/65536 (0.1 -> 0.100006). Other devices run `nn.Dropout` itself.

    Proof: tests/test_model_dropout.py: the keep rate and independence of the mask
    (`test_keep_mask_is_bernoulli`), the scaling, gradient and reproducibility under a seed
    (`test_dropout_scales_kept_values_and_backpropagates_through_the_mask`).
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        return torch.where(keep_mask(x, self.p), x * (1.0 / (1.0 - self.p)), 0.0)


# --------------------------------------------------------------------------------- attention

# "auto" on a CPU runs the explicit kernel only for one query per row (a cached decoding step)
# over at most this many keys, SDPA for everything else: the fused kernel wins at training
# shapes and the two tie only when a single query attends to a handful of keys
# (`python -m benchmarks.kernels`; docs/benchmarks.md has the crossover).
AUTO_EXPLICIT_MAX_KEYS = 16


def sdpa_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    causal: bool = False,
    dropout_p: float = 0.0,
) -> Tensor:
    """The paper's attention through PyTorch's fused kernel (flash / memory-efficient / CPU).

    Plain version: `attention.explicit_attention`, softmax(Q K^T / sqrt(d_k)) V written out.
    Args and shapes as there; no weights are returned.

    Proof: tests/test_model_kernels.py::test_kernels_agree_in_values_and_gradients (values and
    gradients, with and without the causal mask, square and cached shapes) and
    `test_model_kernels_agree_and_the_chosen_kernel_runs` (a whole model, both kernels).
    """
    q_len, k_len = q.shape[-2], k.shape[-2]
    is_causal = False
    if causal:
        if mask is None and q_len == k_len:
            is_causal = True  # square: SDPA's top-left alignment equals ours
        else:
            tri = causal_mask(q_len, k_len, q.device)
            mask = tri if mask is None else mask & tri
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal
    )
    if mask is not None and q.device.type != "cpu":
        # The CPU kernel returns zeros for fully masked rows; not every GPU kernel promises it.
        out = out.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    return out


def choose_kernel(kernel: str, k_len: int, device: torch.device, q_len: int = 1) -> str:
    """Resolve the "auto" attention kernel to "explicit" or "sdpa" (others pass through).

    On a CPU, one query per row (a cached decoding step) over at most
    `AUTO_EXPLICIT_MAX_KEYS` keys runs the explicit kernel; everything else runs SDPA. Both
    kernels compute the same attention (see `sdpa_attention`), so the choice changes no result.

    Proof: tests/test_model_kernels.py::test_auto_kernel_picks_by_length_on_cpu.
    """
    if kernel != "auto":
        return kernel
    if device.type == "cpu" and q_len == 1 and k_len <= AUTO_EXPLICIT_MAX_KEYS:
        return "explicit"
    return "sdpa"


def fold_beams(q: Tensor, sentences: int) -> Tensor:
    """Beam search's queries as extra queries of their sentence: (R, H, T, Dh) ->
    (B, H, R / B x T, Dh), rows being `R / B` consecutive beams per sentence.

    Cross-attention keys and values depend on the source alone, so the beams of a sentence
    attend to the same ones. Plain version: copy the sentence's keys and values once per beam
    (`k.repeat_interleave(R // B, 0)`) and attend row by row; folded, the beams share one
    product with the keys, which are never copied. `unfold_beams` undoes it on the output.

    Proof: tests/test_model_cache.py,
    `test_beams_share_their_sentence_source_side_and_decode_as_copies_do`: decoding with a copy
    per beam and with shared keys gives the same logits.
    """
    rows, h, t, dh = q.shape
    beams = rows // sentences
    return q.view(sentences, beams, h, t, dh).transpose(1, 2).reshape(sentences, h, beams * t, dh)


def unfold_beams(out: Tensor, rows: int) -> Tensor:
    """The attention output of `fold_beams`' queries back to one row per beam.

    Shape:
        (B, R / B x T, D) -> (R, T, D)
    """
    return out.reshape(rows, -1, out.shape[-1])


# ------------------------------------------------------------------------------------- masks


def target_key_mask(tgt_mask: Tensor) -> Tensor | None:
    """The decoder self-attention's padding mask for a full (teacher-forced) pass, or None.

    Plain version: `key_mask(tgt_mask)`. Right-padded targets (real tokens, then only padding,
    as the Collator builds them) need no key mask: causality already hides every later (pad)
    key from every real position. Without a mask the fused kernel takes its causal-only path.
    Real positions get the same outputs either way; only padded positions, which the loss
    ignores, may differ. Left padding or holes get the key mask.

    The check reads one flag on the host, which on a GPU waits for the device.

    Proof: tests/test_model_forward.py, `test_right_padded_target_needs_no_key_mask` (same
    outputs at real positions as with the key mask) and `test_left_padded_target_uses_the_key_mask`.
    """
    right_padded = bool((tgt_mask.cummin(dim=1).values == tgt_mask).all())
    return None if right_padded else key_mask(tgt_mask)
