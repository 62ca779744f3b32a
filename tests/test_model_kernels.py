"""The fused SDPA kernel equals the explicit one, in values and gradients; we know which ran."""

import pytest
import torch
from tests.helpers import padded_batch, tiny_model
from torch.profiler import ProfilerActivity, profile

from aiayn.model import explicit_attention, sdpa_attention
from aiayn.model.fast import choose_kernel
from aiayn.model.masks import causal_mask, key_mask


def ops_run(fn) -> set[str]:
    """Names of the aten ops a call ran."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key for e in prof.key_averages()}


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("q_len", "k_len"), [(7, 7), (1, 9), (4, 9)])
def test_kernels_agree_in_values_and_gradients(causal: bool, q_len: int, k_len: int) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(3, 2, q_len, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 2, k_len, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 2, k_len, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = key_mask(torch.arange(k_len)[None, :] < torch.tensor([[k_len], [k_len - 2], [3]]))
    out_e, _ = explicit_attention(q, k, v, mask, causal=causal)
    grads_e = torch.autograd.grad(out_e.square().sum(), (q, k, v))
    out_s = sdpa_attention(q, k, v, mask, causal=causal)
    grads_s = torch.autograd.grad(out_s.square().sum(), (q, k, v))
    torch.testing.assert_close(out_s, out_e, atol=1e-10, rtol=0)
    for gs, ge in zip(grads_s, grads_e, strict=True):
        torch.testing.assert_close(gs, ge, atol=1e-10, rtol=0)


def test_fully_masked_rows_are_zero_in_both_kernels() -> None:
    q, k, v = torch.randn(2, 1, 3, 4), torch.randn(2, 1, 5, 4), torch.randn(2, 1, 5, 4)
    mask = key_mask(torch.tensor([[True] * 5, [False] * 5]))
    out_e, weights = explicit_attention(q, k, v, mask)
    out_s = sdpa_attention(q, k, v, mask)
    for out in (out_e, out_s):
        assert torch.isfinite(out).all() and (out[1] == 0).all() and (out[0] != 0).any()
    assert (weights[1] == 0).all()


def test_causal_mask_is_right_aligned() -> None:
    m = causal_mask(2, 5)
    assert m.tolist() == [[True] * 4 + [False], [True] * 5]


def test_model_kernels_agree_and_the_chosen_kernel_runs() -> None:
    model = tiny_model()
    model.train()  # gradients through dropout-free training mode (tiny has dropout 0)
    src, src_mask = padded_batch([9, 5, 7], 40)
    tgt, tgt_mask = padded_batch([6, 8, 3], 50)

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        logits = model(src, tgt, src_mask, tgt_mask)
        logits[tgt_mask].logsumexp(-1).sum().backward()
        return logits.detach(), [p.grad.clone() for p in model.parameters()]

    results = {}
    for kernel in ("sdpa", "explicit"):
        with model.use_kernel(kernel):
            results[kernel] = loss_and_grads()
            ran = ops_run(lambda: model(src, tgt, src_mask, tgt_mask))
        used_sdpa = any("scaled_dot_product" in name for name in ran)
        used_softmax = "aten::softmax" in ran or "aten::_softmax" in ran
        assert used_sdpa == (kernel == "sdpa"), sorted(ran)
        assert used_softmax == (kernel == "explicit"), sorted(ran)
    (lo_s, g_s), (lo_e, g_e) = results["sdpa"], results["explicit"]
    torch.testing.assert_close(lo_s[tgt_mask], lo_e[tgt_mask], atol=1e-5, rtol=0)
    for a, b in zip(g_s, g_e, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert model.encoder_layers[0].self_attn.kernel == "sdpa"  # restored after the context


def test_auto_kernel_picks_by_length_on_cpu() -> None:
    cpu = torch.device("cpu")
    assert choose_kernel("auto", 16, cpu) == "explicit"
    assert choose_kernel("auto", 128, cpu) == "sdpa"
    assert choose_kernel("auto", 16, torch.device("cuda")) == "sdpa"
    assert choose_kernel("explicit", 512, cpu) == "explicit"
