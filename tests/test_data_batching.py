"""Collation (the teacher-forcing shift, masks) and token-bounded, resumable batch sampling."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
import torch
from tests.helpers import UnshiftedCollator
from torch.utils.data import DataLoader

from aiayn.data import BOS_ID, EOS_ID, PAD_ID, Batch, Collator, DataError, TokenBatchSampler

EXAMPLES = [([5, 6, 7], [8, 9]), ([10], [11, 12, 13, 14]), ([15, 16], [])]


def test_collator_shift_masks_and_counts() -> None:
    batch = Collator()(EXAMPLES)
    assert isinstance(batch, Batch) and batch.batch_size == 3
    assert batch.src.dtype == torch.long and batch.src_mask.dtype == torch.bool
    assert batch.src.tolist() == [[5, 6, 7], [10, 0, 0], [15, 16, 0]]
    assert batch.src_mask.tolist() == [
        [True, True, True],
        [True, False, False],
        [True, True, False],
    ]
    assert batch.tgt_in.tolist() == [[2, 8, 9, 0, 0], [2, 11, 12, 13, 14], [2, 0, 0, 0, 0]]
    assert batch.tgt_out.tolist() == [[8, 9, 3, 0, 0], [11, 12, 13, 14, 3], [3, 0, 0, 0, 0]]
    assert batch.tgt_mask.tolist() == (batch.tgt_out != PAD_ID).tolist()
    assert batch.n_src_tokens == 6 and batch.n_tgt_tokens == 3 + 5 + 1


def test_collator_shift_property_on_random_examples() -> None:
    rng = random.Random(0)
    examples = [
        ([rng.randint(4, 50) for _ in range(rng.randint(1, 9))],
         [rng.randint(4, 50) for _ in range(rng.randint(0, 9))])
        for _ in range(32)
    ]  # fmt: skip
    b = Collator()(examples)
    assert (b.tgt_in[:, 0] == BOS_ID).all()
    real_next = b.tgt_mask[:, 1:]  # position t+1 is real, so tgt_in[t+1] = tgt_out[t]
    assert torch.equal(b.tgt_in[:, 1:][real_next], b.tgt_out[:, :-1][real_next])
    last = b.tgt_mask.sum(dim=1) - 1
    assert (b.tgt_out[torch.arange(32), last] == EOS_ID).all()
    assert (b.tgt_out[b.tgt_mask] != PAD_ID).all() and (b.tgt_out[~b.tgt_mask] == PAD_ID).all()
    assert (b.tgt_in[~b.tgt_mask] == PAD_ID).all() and (b.src[~b.src_mask] == PAD_ID).all()
    assert b.n_tgt_tokens == sum(len(t) + 1 for _, t in examples)


def test_the_unshifted_collator_of_the_tests_feeds_the_answer() -> None:
    """The broken collator that tests/test_end_to_end.py trains on is broken as it says."""
    batch, shifted = UnshiftedCollator()(EXAMPLES), Collator()(EXAMPLES)
    assert torch.equal(batch.tgt_in, batch.tgt_out)  # the decoder would read its own answer
    assert not (batch.tgt_in[:, 0] == BOS_ID).any()
    for name in ("src", "src_mask", "tgt_out", "tgt_mask"):  # nothing else differs
        assert torch.equal(getattr(batch, name), getattr(shifted, name)), name
    assert batch.n_tgt_tokens == shifted.n_tgt_tokens


def test_collator_errors_and_to() -> None:
    with pytest.raises(DataError, match="example 1 of the batch has an empty source"):
        Collator()([([4], [5]), ([], [5])])
    with pytest.raises(DataError, match="empty batch"):
        Collator()([])
    batch = Collator()(EXAMPLES)
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.tgt_out, batch.tgt_out)
    assert moved.n_tgt_tokens == batch.n_tgt_tokens


# --- TokenBatchSampler -------------------------------------------------------------------


def make_lengths(n: int = 600, seed: int = 0) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    lengths = [(rng.randint(1, 40), rng.randint(0, 40)) for _ in range(n)]
    lengths[17] = (300, 5)  # longer than max_tokens on its own
    return lengths


def cost(batch: list[int], lengths: list[tuple[int, int]]) -> int:
    return len(batch) * max(max(lengths[i][0], lengths[i][1] + 1) for i in batch)


def test_every_example_once_and_token_bound() -> None:
    lengths = make_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=256, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 10
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert cost(b, lengths) <= 256 or len(b) == 1
    assert [17] in batches  # the over-long example travels alone
    # Length bucketing keeps padding small: most batches hold more than one example.
    assert sum(len(b) > 1 for b in batches) > 0.8 * len(batches)


def test_max_sentences() -> None:
    lengths = [(2, 2)] * 100
    batches = list(TokenBatchSampler(lengths, max_tokens=10_000, max_sentences=8))
    assert max(len(b) for b in batches) == 8 and len(batches) == 13


def test_epochs_and_seeds_change_the_order_but_not_the_count() -> None:
    lengths = make_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=256, seed=1)
    epoch0 = list(sampler)
    assert list(sampler) == epoch0  # same epoch, same order
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0 and len(epoch1) == len(epoch0)
    assert sorted(i for b in epoch1 for i in b) == list(range(len(lengths)))
    assert list(TokenBatchSampler(lengths, max_tokens=256, seed=1)) == epoch0
    assert list(TokenBatchSampler(lengths, max_tokens=256, seed=2)) != epoch0


def test_no_shuffle_gives_length_order() -> None:
    lengths = make_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=256, shuffle=False)
    flat = [i for b in sampler for i in b]
    assert flat == sorted(range(len(lengths)), key=lambda i: (*lengths[i], i))
    sampler.set_epoch(5)
    assert [i for b in sampler for i in b] == flat


@pytest.mark.parametrize("drop_last", [False, True])
def test_two_ranks_same_count_and_cover_the_data(drop_last: bool) -> None:
    lengths = make_lengths(601)
    kwargs = {"max_tokens": 256, "seed": 4, "num_replicas": 2, "drop_last": drop_last}
    ranks = [TokenBatchSampler(lengths, rank=r, **kwargs) for r in range(2)]
    single = TokenBatchSampler(lengths, max_tokens=256, seed=4)
    assert len(single) % 2 == 1  # odd: one rank is short of a batch, the case that matters
    for epoch in (0, 3):
        for s in ranks:
            s.set_epoch(epoch)
        per_rank = [list(s) for s in ranks]
        assert len(per_rank[0]) == len(per_rank[1]) == len(ranks[0])
        seen = Counter(i for batches in per_rank for b in batches for i in b)
        if drop_last:
            assert len(ranks[0]) == len(single) // 2
            assert max(seen.values()) == 1 and len(seen) < len(lengths)  # one batch dropped
        else:
            assert len(ranks[0]) == len(single) // 2 + 1
            assert set(seen) == set(range(len(lengths)))
            repeated = [i for i, c in seen.items() if c == 2]
            assert max(seen.values()) == 2 and repeated  # exactly one batch seen twice
            assert sorted(repeated) in [sorted(b) for b in per_rank[1]]


def test_state_dict_resumes_mid_epoch_exactly() -> None:
    lengths = make_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=256, seed=9)
    sampler.set_epoch(2)
    full = list(sampler)
    it = iter(sampler)
    done = [next(it) for _ in range(7)]
    state = sampler.state_dict()
    assert state["epoch"] == 2 and state["batches_consumed"] == 7
    resumed = TokenBatchSampler(lengths, max_tokens=256, seed=9)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # what the training loop does at the top of the epoch: no reset
    assert resumed.state_dict() == state
    rest = list(resumed)
    assert done + rest == full
    assert len(resumed) == len(full)
    # The next epoch starts from its beginning, and a re-iteration is complete again.
    resumed.set_epoch(3)
    sampler.set_epoch(3)
    assert list(resumed) == list(sampler)


def test_state_dict_with_explicit_count_and_mismatch_errors() -> None:
    lengths = make_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=256)
    state = sampler.state_dict(batches_consumed=len(sampler))
    resumed = TokenBatchSampler(lengths, max_tokens=256)
    resumed.load_state_dict(state)
    assert list(resumed) == []  # the epoch was finished
    other = TokenBatchSampler(lengths, max_tokens=256, seed=5)
    with pytest.raises(DataError, match="saved seed=0 but this run has 5"):
        other.load_state_dict(state)
    smaller = TokenBatchSampler(lengths[:300], max_tokens=256)
    with pytest.raises(DataError, match="batches_per_epoch"):
        smaller.load_state_dict(state)


def test_sampler_argument_errors() -> None:
    with pytest.raises(DataError, match="at least one example"):
        TokenBatchSampler([], max_tokens=10)
    with pytest.raises(DataError, match="rank=2"):
        TokenBatchSampler([(1, 1)], max_tokens=10, num_replicas=2, rank=2)
    with pytest.raises(DataError, match="max_tokens"):
        TokenBatchSampler([(1, 1)], max_tokens=0)


def test_with_dataloader() -> None:
    rng = random.Random(1)
    examples = [([4] * rng.randint(1, 30), [5] * rng.randint(0, 30)) for _ in range(300)]
    sampler = TokenBatchSampler([(len(s), len(t)) for s, t in examples], max_tokens=200)
    loader = DataLoader(examples, batch_sampler=sampler, collate_fn=Collator())
    batches = list(loader)
    assert len(batches) == len(sampler)
    assert sum(b.batch_size for b in batches) == 300
    for b in batches:
        assert b.src.numel() <= 200 and b.tgt_in.numel() <= 200


def reference_batches(lengths: list[tuple[int, int]], max_tokens: int, max_sentences: int | None):
    """The list-based sampler that the numpy one replaced, unshuffled: sort, then cut greedily."""
    order = sorted(range(len(lengths)), key=lambda i: (*lengths[i], i))
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0
    for i in order:
        size = max(lengths[i][0], lengths[i][1] + 1)
        grown = max(longest, size)
        full = max_sentences is not None and len(batch) >= max_sentences
        if batch and (full or (len(batch) + 1) * grown > max_tokens):
            batches.append(batch)
            batch, grown = [], size
        batch.append(i)
        longest = grown
    return [*batches, batch]


@pytest.mark.parametrize(("max_tokens", "max_sentences"), [(256, None), (1000, 7), (64, None)])
def test_numpy_sampler_cuts_the_same_batches_as_the_list_based_one(
    max_tokens: int, max_sentences: int | None
) -> None:
    lengths = make_lengths(3000, seed=3)
    sampler = TokenBatchSampler(
        np.array(lengths, dtype=np.uint16), max_tokens, max_sentences=max_sentences, shuffle=False
    )
    assert sampler.epoch_batches(0) == reference_batches(lengths, max_tokens, max_sentences)
    # Shuffled, the same batch sizes in another order (only equal-length pairs trade places).
    shuffled = TokenBatchSampler(lengths, max_tokens, max_sentences=max_sentences, seed=2)
    sizes = sorted(len(b) for b in shuffled.epoch_batches(1))
    assert sizes == sorted(len(b) for b in sampler.epoch_batches(0))


def test_run_wise_cut_equals_the_list_based_one_on_awkward_lengths() -> None:
    """Examples longer than max_tokens, zero lengths, max_sentences of 1, keys wider than 16
    bits, many runs of one size: the same batches as the one-example-at-a-time reference."""
    for trial in range(200):
        rng = random.Random(trial)
        longest = rng.choice([3, 10, 60, 300])
        n = rng.randint(1, 400)
        lengths = [(rng.randint(0, longest), rng.randint(0, longest)) for _ in range(n)]
        max_tokens = rng.choice([1, 5, 16, 64, 256, 1000])
        max_sentences = rng.choice([None, None, 1, 3, 7])
        sampler = TokenBatchSampler(
            np.array(lengths), max_tokens, max_sentences=max_sentences, shuffle=False
        )
        expected = reference_batches(lengths, max_tokens, max_sentences)
        assert sampler.epoch_batches(0) == expected, (trial, max_tokens, max_sentences)


@pytest.mark.parametrize("longest", [50, 400])  # a 16-bit and a 32-bit sort key
def test_shuffled_order_is_the_one_older_checkpoints_resume_into(longest: int) -> None:
    """Radix-sorting a narrow key must not change an epoch's order: a checkpoint saved
    mid-epoch by the sampler that sorted 32-bit keys resumes into the same batches."""
    lengths = np.random.default_rng(4).integers(0, longest + 1, size=(2000, 2))
    sampler = TokenBatchSampler(lengths, max_tokens=256, seed=9)
    rng = sampler._rng(3)
    perm = rng.permutation(len(lengths))
    key = (lengths[:, 0] * (lengths[:, 1].max() + 1) + lengths[:, 1])[perm]
    order = perm[np.argsort(key, kind="stable")]
    expected_batches = rng.permutation(len(sampler))
    got_order, got_batches = sampler.plan(3)
    assert got_order.tolist() == order.tolist()
    assert got_batches.tolist() == expected_batches.tolist()


def test_the_plan_drawn_ahead_in_the_background_is_the_one_drawn_when_asked() -> None:
    lengths = np.array(make_lengths(3000, seed=6))
    ahead = TokenBatchSampler(lengths, max_tokens=256, seed=3)  # plans epoch 0 meanwhile
    asked = TokenBatchSampler(lengths, max_tokens=256, seed=3)
    asked.plan(5)  # not the epoch planned ahead: that plan is dropped
    for got, expected in zip(ahead.plan(0), asked.plan(0), strict=True):
        assert got.tolist() == expected.tolist()
    resumed = TokenBatchSampler(lengths, max_tokens=256, seed=3)
    resumed.load_state_dict(asked.state_dict(batches_consumed=0) | {"epoch": 5})
    assert list(resumed) == asked.epoch_batches(5)  # planned ahead on load_state_dict


def test_a_mid_epoch_position_of_the_older_sampler_is_refused() -> None:
    lengths = make_lengths()
    sampler = TokenBatchSampler(lengths, max_tokens=256)
    old = {k: v for k, v in sampler.state_dict(batches_consumed=3).items() if k != "order"}
    with pytest.raises(DataError, match="older aiayn that drew batches with 'python-random'"):
        TokenBatchSampler(lengths, max_tokens=256).load_state_dict(old)
    resumed = TokenBatchSampler(lengths, max_tokens=256)
    resumed.load_state_dict({**old, "batches_consumed": 0})  # an epoch boundary is exact
    assert list(resumed) == list(sampler)
