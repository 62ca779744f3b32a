"""Shapes, positional encodings, the future-leak test, padding invariance, NaN safety."""

import math

import pytest
import torch
from tests.helpers import PAD, padded_batch, tiny_model
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from aiayn import ModelConfig, Transformer
from aiayn.model import fast
from aiayn.model.embeddings import sinusoids
from aiayn.model.flops import forward_flops
from aiayn.model.layers import DecoderLayer
from aiayn.model.masks import key_mask


def test_thread_example_shapes() -> None:
    """The tutorial thread's example: batch 32, source 128, target 64."""
    model = Transformer(ModelConfig.tiny(300, 200, positional="learned", max_positions=128)).eval()
    src = torch.randint(4, 300, (32, 128))
    tgt_in = torch.randint(4, 200, (32, 64))
    logits = model(src, tgt_in)
    assert logits.shape == (32, 64, 200)
    memory = model.encode(src)
    assert memory.states.shape == (32, 128, 64)
    assert memory.src_mask.dtype == torch.bool and memory.src_mask.all()


@pytest.mark.parametrize(("pos", "dim"), [(0, 0), (0, 1), (1, 0), (7, 10), (50, 31), (99, 63)])
def test_sinusoids_follow_the_paper(pos: int, dim: int) -> None:
    d_model = 64
    table = sinusoids(100, d_model)
    i = dim // 2
    angle = pos / 10000 ** (2 * i / d_model)
    expected = math.sin(angle) if dim % 2 == 0 else math.cos(angle)
    assert table[pos, dim].item() == pytest.approx(expected, abs=1e-6)


def test_sinusoids_beyond_the_table_continue_it() -> None:
    model = tiny_model(max_positions=8)
    assert torch.allclose(model.positions(4, start=6), sinusoids(10, 64)[6:], atol=1e-6)


def test_learned_positions_refuse_long_sequences() -> None:
    model = tiny_model(positional="learned", max_positions=10)
    with pytest.raises(ValueError, match="max_positions"):
        model(torch.randint(4, 40, (2, 11)), torch.randint(4, 50, (2, 3)))


@pytest.mark.parametrize("kernel", ["sdpa", "explicit"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_no_future_leak(kernel: str, norm_first: bool) -> None:
    """Changing target tokens after t leaves logits at positions <= t unchanged."""
    model = tiny_model(attention_kernel=kernel, norm_first=norm_first)
    src, _ = padded_batch([7, 5, 9], 40)
    tgt = torch.randint(4, 50, (3, 10))
    base = model(src, tgt)
    for t in (0, 4, 8):
        changed = tgt.clone()
        changed[:, t + 1 :] = torch.randint(4, 50, changed[:, t + 1 :].shape)
        assert not torch.equal(changed, tgt)
        out = model(src, changed)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=1e-5, rtol=0)
        assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :], atol=1e-3)


@pytest.mark.parametrize("kernel", ["sdpa", "explicit"])
def test_future_leak_test_catches_a_model_without_causal_mask(
    kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_model(attention_kernel=kernel)
    forward = DecoderLayer.forward

    def without_causal_mask(self: DecoderLayer, *args: object, **kwargs: object) -> Tensor:
        return forward(self, *args, **{**kwargs, "causal": False})

    monkeypatch.setattr(DecoderLayer, "forward", without_causal_mask)
    src, _ = padded_batch([7, 5], 40)
    tgt = torch.randint(4, 50, (2, 10))
    changed = tgt.clone()
    changed[:, 5:] = (changed[:, 5:] + 1 - 4) % 46 + 4
    base, out = model(src, tgt), model(src, changed)
    assert not torch.allclose(out[:, :5], base[:, :5], atol=1e-3)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("kernel", ["sdpa", "explicit"])
def test_padding_invariance(norm_first: bool, kernel: str) -> None:
    """A padded batch gives each sentence's logits as if it ran alone; pad ids do not matter."""
    model = tiny_model(norm_first=norm_first, attention_kernel=kernel)
    gen = torch.Generator().manual_seed(1)
    src, src_mask = padded_batch([9, 4, 6], 40, gen)
    tgt, tgt_mask = padded_batch([5, 8, 2], 50, gen)
    batch = model(src, tgt)
    for i in range(3):
        s, t = int(src_mask[i].sum()), int(tgt_mask[i].sum())
        alone = model(src[i : i + 1, :s], tgt[i : i + 1, :t])
        torch.testing.assert_close(batch[i : i + 1, :t], alone, atol=1e-5, rtol=0)
    # Garbage under the padding, with the masks passed explicitly, changes nothing real.
    src2 = src.masked_fill(~src_mask, 17)
    tgt2 = tgt.masked_fill(~tgt_mask, 23)
    out = model(src2, tgt2, src_mask, tgt_mask)
    torch.testing.assert_close(out[tgt_mask], batch[tgt_mask], atol=1e-5, rtol=0)


def test_left_padded_target_uses_the_key_mask() -> None:
    """Padding in front of a target is masked as keys: what lies under it changes nothing."""
    model = tiny_model()
    src, _ = padded_batch([6, 6], 40)
    tgt = torch.randint(4, 50, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[:, :3] = False
    other = tgt.clone()
    other[:, :3] = torch.randint(4, 50, (2, 3))
    out, out_other = model(src, tgt, tgt_mask=mask), model(src, other, tgt_mask=mask)
    torch.testing.assert_close(out[:, 3:], out_other[:, 3:], atol=1e-5, rtol=0)
    unmasked = model(src, other)
    assert not torch.allclose(unmasked[:, 3:], out[:, 3:], atol=1e-3)


@pytest.mark.parametrize("kernel", ["sdpa", "explicit"])
def test_right_padded_target_needs_no_key_mask(
    kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fast.target_key_mask` drops the key mask of right-padded targets: the real positions'
    logits equal those computed with it (the plain `key_mask`)."""
    model = tiny_model(attention_kernel=kernel)
    src, _ = padded_batch([7, 5, 6], 40)
    tgt, tgt_mask = padded_batch([9, 4, 1], 50)
    assert fast.target_key_mask(tgt_mask) is None and fast.target_key_mask(~tgt_mask) is not None
    fast_logits = model(src, tgt)
    monkeypatch.setattr(fast, "target_key_mask", key_mask)
    plain_logits = model(src, tgt)
    torch.testing.assert_close(fast_logits[tgt_mask], plain_logits[tgt_mask], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kernel", ["sdpa", "explicit"])
def test_no_nan_with_fully_masked_rows_and_length_one(kernel: str) -> None:
    model = tiny_model(attention_kernel=kernel)
    model.train()
    src = torch.tensor([[5, 6, 7], [PAD, PAD, PAD], [9, PAD, PAD]])  # second source is empty
    tgt = torch.tensor([[2, 5], [2, 6], [2, PAD]])
    logits = model(src, tgt)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    one = model(torch.tensor([[8]]), torch.tensor([[2]]))
    assert one.shape == (1, 1, 50) and torch.isfinite(one).all()


def test_attention_weights_are_returned_per_layer_and_head() -> None:
    model = tiny_model()
    src, _ = padded_batch([5, 3], 40)
    tgt, _ = padded_batch([4, 4], 50)
    w = model.attention_weights(src, tgt)
    assert len(w.encoder) == 2 and w.encoder[0].shape == (2, 4, 5, 5)
    assert w.decoder_self[1].shape == (2, 4, 4, 4) and w.cross[0].shape == (2, 4, 4, 5)
    torch.testing.assert_close(w.cross[0].sum(-1), torch.ones(2, 4, 4))
    assert (w.cross[0][1, :, :, 3:] == 0).all()  # padding gets no attention
    assert (w.decoder_self[0].triu(1) == 0).all()  # no attention to the future


@pytest.mark.parametrize("tgt_vocab", [50, 1000])
def test_forward_flops_match_torchs_flop_counter(tgt_vocab: int) -> None:
    """`forward_flops` equals what torch counts, up to the masked half of decoder self-attention.

    Both count 2 FLOPs per multiply-add of every matmul (torch's counter: addmm, mm, bmm; the
    bias adds, softmax, norms and embedding lookups count 0 in both). They differ in one place:
    the explicit kernel computes the full T x T decoder self-attention scores (Q K^T) and
    weighted sums (weights @ V), then masks the future, so torch counts 2 * 2 * T * T * d_model
    FLOPs per decoder layer for them; `forward_flops` counts only the T(T+1)/2 query-key pairs a
    causal decoder needs, 2 * 2 * d_model * T(T+1)/2. The difference, T(T-1)/2 pairs per
    sentence and decoder layer, is added back before comparing. (Torch has no FLOP formula for
    the CPU SDPA kernel, hence the explicit one; an unpadded batch, because `forward_flops`
    counts real tokens only while torch counts padding too.)
    """
    config = ModelConfig.tiny(40, tgt_vocab)
    model = Transformer(config).eval()
    # S != T, so a swap shows; at these sizes every term (attention scores, cross-attention,
    # the generator, the masked half itself) is over 1% of the total, so the 0.5% tolerance
    # catches any term dropped, doubled or miscounted.
    batch, src_len, tgt_len = 2, 24, 48
    src = torch.randint(4, 40, (batch, src_len))
    tgt_in = torch.randint(4, tgt_vocab, (batch, tgt_len))
    with model.use_kernel("explicit"), FlopCounterMode(display=False) as counter:
        model(src, tgt_in).sum().backward()  # forward + backward: checks the 3x of training too
    torch_counted = counter.get_total_flops()

    masked_pairs = tgt_len * (tgt_len - 1) // 2
    masked = batch * config.n_decoder_layers * 2 * 2 * config.d_model * masked_pairs
    ours = forward_flops(config, [src_len] * batch, [tgt_len] * batch)
    assert masked > 0.02 * torch_counted / 3
    assert 3 * (ours + masked) == pytest.approx(torch_counted, rel=0.005)
    per_token = model.flops_per_token(src_len, tgt_len) * batch * tgt_len
    assert per_token + 3 * masked == pytest.approx(torch_counted, rel=0.005)
    inference = model.flops_per_token(src_len, tgt_len, training=False) * batch * tgt_len
    assert inference == pytest.approx(ours, rel=1e-9)


def test_flops_grow_with_length_and_vocab() -> None:
    model = tiny_model()
    short, long = model.flops_per_token(10, 10), model.flops_per_token(40, 40)
    assert 0 < short < long
    bigger_vocab = Transformer(ModelConfig.tiny(40, 5000))
    # The generator costs 2 * d_model FLOPs per target word per token, forward only.
    extra = bigger_vocab.flops_per_token(10, 10, training=False) - model.flops_per_token(
        10, 10, training=False
    )
    assert extra == pytest.approx(2 * 64 * (5000 - 50))
