"""Incremental decoding with the KV cache equals full recomputation, also after reorder."""

import pytest
import torch
from tests.helpers import BOS, padded_batch, tiny_model


@pytest.mark.parametrize("kernel", ["sdpa", "explicit"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_incremental_equals_full(kernel: str, norm_first: bool, positional: str) -> None:
    model = tiny_model(attention_kernel=kernel, norm_first=norm_first, positional=positional)
    src, _ = padded_batch([9, 4, 7], 40)
    steps = 12
    tgt = torch.cat([torch.full((3, 1), BOS), torch.randint(4, 50, (3, steps - 1))], dim=1)
    with torch.no_grad():
        memory = model.encode(src)
        full, _ = model.decode(tgt, memory)  # (B, T, V)
        cache = model.init_cache(memory, capacity=4)  # small: forces the buffers to grow
        for t in range(steps):
            logits, cache = model.decode(tgt[:, t : t + 1], memory, cache)
            assert cache.length == t + 1
            torch.testing.assert_close(
                logits[:, 0].log_softmax(-1), full[:, t].log_softmax(-1), atol=1e-5, rtol=0
            )
    assert cache.capacity >= steps


def test_incremental_after_reorder_equals_full_on_reordered_batch() -> None:
    model = tiny_model()
    src, _ = padded_batch([9, 3, 6, 5], 40)
    tgt = torch.cat([torch.full((4, 1), BOS), torch.randint(4, 50, (4, 9))], dim=1)
    perm = torch.tensor([2, 0, 0, 3, 1])  # permute, repeat (like beams) and drop nothing
    with torch.no_grad():
        memory = model.encode(src)
        cache = model.init_cache(memory, capacity=6)  # grows after the reorder
        for t in range(5):
            _, cache = model.decode(tgt[:, t : t + 1], memory, cache)
        cache = cache.reorder(perm)
        memory_r = memory.reorder(perm)
        tgt_r = tgt[perm]
        full, _ = model.decode(tgt_r, memory_r)
        for t in range(5, 10):
            # The cache holds all a cached step reads: no memory needed (beam search relies on
            # it and never reorders the encoder output).
            logits, cache = model.decode(tgt_r[:, t : t + 1], None, cache)
            torch.testing.assert_close(
                logits[:, 0].log_softmax(-1), full[:, t].log_softmax(-1), atol=1e-5, rtol=0
            )
    assert cache.batch_size == 5 and torch.equal(cache.src_mask, memory.src_mask[perm])
    assert cache.capacity > 6
    with pytest.raises(ValueError, match="memory"):
        model.decode(tgt, None)


def test_prefill_several_positions_then_step() -> None:
    """A cached call with T > 1 uses the right-aligned causal mask."""
    model = tiny_model()
    src, _ = padded_batch([5, 8], 40)
    tgt = torch.cat([torch.full((2, 1), BOS), torch.randint(4, 50, (2, 7))], dim=1)
    with torch.no_grad():
        memory = model.encode(src)
        full, _ = model.decode(tgt, memory)
        cache = model.init_cache(memory)
        first, cache = model.decode(tgt[:, :3], memory, cache)
        second, cache = model.decode(tgt[:, 3:6], memory, cache)
        third, cache = model.decode(tgt[:, 6:], memory, cache)
    torch.testing.assert_close(torch.cat([first, second, third], 1), full, atol=1e-5, rtol=0)


def test_cross_attention_keys_are_computed_once() -> None:
    model = tiny_model()
    calls = []
    for layer in model.decoder_layers:
        layer.cross_attn.kv_proj.register_forward_hook(lambda *_: calls.append(1))
    src, _ = padded_batch([5, 8], 40)
    with torch.no_grad():
        memory = model.encode(src)
        cache = model.init_cache(memory)
        for _ in range(6):
            _, cache = model.decode(torch.full((2, 1), BOS), memory, cache)
    assert len(calls) == len(model.decoder_layers)


def test_reorder_under_autograd_equals_no_grad_and_passes_gradients() -> None:
    """With grad enabled, reorder selects the same rows and gradients flow through them.

    The cached path's parameter gradients equal the full pass's on the reordered batch. Each
    buffer is written once before it is reordered (a prefill of three positions, then one step):
    a later in-place write would modify what an earlier step saved for backward.
    """
    model = tiny_model()
    src, _ = padded_batch([9, 3, 6, 5], 40)
    tgt = torch.cat([torch.full((4, 1), BOS), torch.randint(4, 50, (4, 3))], dim=1)
    perm = torch.tensor([2, 0, 0, 3, 1])
    memory = model.encode(src)
    _, cache = model.decode(tgt[:, :3], memory, model.init_cache(memory, capacity=6))
    reordered = cache.reorder(perm)
    with torch.no_grad():
        expected = cache.reorder(perm)
    for got, want in zip(reordered.layers, expected.layers, strict=True):
        assert got.self_k.requires_grad and got.cross_v.requires_grad
        assert torch.equal(got.self_k[:, :, :3], want.self_k[:, :, :3])
        assert torch.equal(got.self_v[:, :, :3], want.self_v[:, :, :3])
        assert torch.equal(got.cross_k, want.cross_k) and torch.equal(got.cross_v, want.cross_v)
    assert torch.equal(reordered.src_mask, expected.src_mask) and reordered.length == 3

    weights = torch.randn(5, 50)
    logits, _ = model.decode(tgt[perm][:, 3:], None, reordered)
    (logits[:, 0].log_softmax(-1) * weights).sum().backward()
    cached = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    full, _ = model.decode(tgt[perm], model.encode(src).reorder(perm))
    (full[:, 3].log_softmax(-1) * weights).sum().backward()
    reference = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert cached.keys() == reference.keys() and any("encoder" in name for name in cached)
    for name, grad in reference.items():
        torch.testing.assert_close(cached[name], grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("kernel", ["sdpa", "explicit"])
def test_beams_share_their_sentence_source_side_and_decode_as_copies_do(kernel: str) -> None:
    """With `beams`, the cache keeps cross-attention K/V and the source mask once per sentence,
    never copies them while beams move within their sentences, and decodes exactly as a cache
    holding a copy per beam."""
    model = tiny_model(attention_kernel=kernel)
    src, src_mask = padded_batch([5, 3, 4], 40)
    k = 3
    expand = torch.arange(3).repeat_interleave(k)  # (9,) three beams per sentence
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        memory = model.encode(src, src_mask)
        # As in beam search: the first step once per sentence, then k rows per sentence.
        bos = torch.full((3, 1), BOS)
        want, copies = model.decode(bos, None, model.init_cache(memory))
        got, shared = model.decode(bos, None, model.init_cache(memory))
        cross = shared.layers[0].cross_k
        copies = copies.reorder(expand)  # one row per beam, source side too
        shared = shared.expand_beams(k)
        assert shared.batch_size == copies.batch_size == 9 and shared.length == 1
        assert shared.layers[0].cross_k is cross and copies.layers[0].cross_k.shape[0] == 9
        tokens = torch.randint(4, 50, (9, 1), generator=gen)
        for _ in range(4):
            want, copies = model.decode(tokens, None, copies)
            got, shared = model.decode(tokens, None, shared)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
            # Beams follow other beams of their own sentence, as beam search's do.
            rows = expand * k + torch.randint(0, k, (9,), generator=gen)
            copies, shared = copies.reorder(rows), shared.reorder(rows)
            assert shared.layers[0].cross_k is cross  # not copied
            tokens = torch.randint(4, 50, (9, 1), generator=gen)
        keep = torch.tensor([0, 1, 2, 6, 7, 8])  # sentence 1 is done
        copies, shared = copies.reorder(keep), shared.reorder(keep)
        assert torch.equal(shared.src_mask, src_mask[[0, 2]]) and shared.beams == k
        want, _ = model.decode(tokens[keep], None, copies)
        got, shared = model.decode(tokens[keep], None, shared)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
        with pytest.raises(ValueError, match="not whole blocks of 3 beams"):
            shared.reorder(torch.tensor([0, 1]))
        with pytest.raises(ValueError, match="already holds 3 beams"):
            shared.expand_beams(2)
