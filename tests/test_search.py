"""Greedy and beam search, driven by scripted fake models through the step protocol."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
import torch
from torch import Tensor

from aiayn.decoding import Hypothesis, beam_search, greedy_search, length_penalty

BOS, EOS, A, B, C = 0, 1, 2, 3, 4
VOCAB = 5

# (sentence, prefix without BOS) -> log-probs of the next token, (V,)
DistFn = Callable[[int, tuple[int, ...]], Tensor]


@dataclass
class PrefixCache:
    """A fake cache that stores each row's fed tokens, so a wrong reorder feeds the wrong prefix."""

    prefixes: Tensor  # (R, t) every token fed so far, BOS first
    sentence: Tensor  # (R,) which input sentence the row belongs to
    reorders: list[list[int]] = field(default_factory=list)  # shared log of every reorder
    expansions: list[int] = field(default_factory=list)  # shared log of every expand_beams

    @classmethod
    def new(cls, sentences: list[int]) -> PrefixCache:
        return cls(torch.zeros(len(sentences), 0, dtype=torch.long), torch.tensor(sentences))

    @property
    def batch_size(self) -> int:
        return self.prefixes.shape[0]

    def reorder(self, indices: Tensor) -> PrefixCache:
        self.reorders.append(indices.tolist())
        if self.expansions:  # beams: the blocks the Transformer's cache relies on (protocol.py)
            k = self.expansions[-1]
            block_sentence = indices.view(-1, k) // k  # (sentences, k) old sentence of each row
            assert bool((block_sentence == block_sentence[:, :1]).all()), "a block mixes sentences"
            assert bool((block_sentence[1:, 0] > block_sentence[:-1, 0]).all()), "out of order"
        return replace(self, prefixes=self.prefixes[indices], sentence=self.sentence[indices])

    def expand_beams(self, k: int) -> PrefixCache:
        assert not self.expansions, "expanded twice"
        self.expansions.append(k)
        rows = torch.arange(self.batch_size).repeat_interleave(k)
        return replace(self, prefixes=self.prefixes[rows], sentence=self.sentence[rows])


class FakeModel:
    """A StepModel whose next-token log-probs are a fixed function of (sentence, prefix)."""

    def __init__(self, dist: DistFn) -> None:
        self.dist = dist
        self.batch_sizes: list[int] = []  # rows per step call

    def step(
        self, tokens: Tensor, cache: PrefixCache, *, normalize: bool = True
    ) -> tuple[Tensor, PrefixCache]:
        assert tokens.shape == (cache.batch_size, 1) and tokens.dtype == torch.long
        prefixes = torch.cat([cache.prefixes, tokens], dim=1)
        assert bool((prefixes[:, 0] == BOS).all())
        self.batch_sizes.append(cache.batch_size)
        rows = [
            self.dist(int(s), tuple(p[1:].tolist()))
            for s, p in zip(cache.sentence, prefixes, strict=True)
        ]
        return torch.stack(rows), replace(cache, prefixes=prefixes)


def scripted(tables: dict[int, dict[tuple[int, ...], dict[int, float]]]) -> DistFn:
    """Per sentence, prefix -> {token: probability}; unlisted tokens share the leftover mass.

    A prefix missing from the table ends likely: EOS 0.9, the other four tokens 0.025 each.
    """

    def dist(sentence: int, prefix: tuple[int, ...]) -> Tensor:
        listed = tables[sentence].get(prefix, {EOS: 0.9})
        leftover = max(1.0 - sum(listed.values()), 0.0) / (VOCAB - len(listed))
        probs = [listed.get(t, max(leftover, 1e-6)) for t in range(VOCAB)]
        return torch.tensor(probs, dtype=torch.float64).log().float()

    return dist


def random_model(vocab: int = 7) -> DistFn:
    """Log-probs that are a fixed pseudo-random function of (sentence, prefix); EOS gets likelier
    as the prefix grows, so outputs have varied lengths."""

    def dist(sentence: int, prefix: tuple[int, ...]) -> Tensor:
        seed = sentence
        for token in prefix:
            seed = (seed * 1_000_003 + token + 1) % (2**31 - 1)
        gen = torch.Generator().manual_seed(seed)
        logits = 2.0 * torch.randn(vocab, generator=gen)
        logits[EOS] += 0.6 * len(prefix) - 2.0
        logits[BOS] = -30.0
        return torch.log_softmax(logits, dim=0)

    return dist


def sequence_log_prob(dist: DistFn, sentence: int, tokens: list[int]) -> float:
    """log P(tokens, EOS) under `dist`, summed in float64."""
    total, prefix = 0.0, ()
    for token in [*tokens, EOS]:
        total += float(dist(sentence, prefix)[token])
        prefix = (*prefix, token)
    return total


def lp(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


# Sentence 0: [A] finishes first (p = .6 * .55 = .33), but [B, C] (p = .4 * .9 * .95 = .342)
# is better; at that point the live beam [B, C] (p = .36 > .33) must still be followed.
TABLE_CONTINUE = {
    (): {A: 0.6, B: 0.4},
    (A,): {EOS: 0.55, C: 0.45},
    (B,): {C: 0.9, EOS: 0.1},
    (B, C): {EOS: 0.95},
    (A, C): {EOS: 0.9},
}
# Sentence 0: [A] (p = .7 * .5 = .35) finishes at step 2, when the best live beam [A, C] has
# p = .336 < .35. Without a length penalty the search must stop there; with alpha = 0.6 the
# longer [A, C] (p = .336 * .98) wins.
TABLE_STOP = {
    (): {A: 0.7, B: 0.3},
    (A,): {EOS: 0.5, C: 0.48},
    (B,): {EOS: 0.6, C: 0.4},
    (A, C): {EOS: 0.98},
}


def run_beam(table, **kwargs) -> tuple[list[Hypothesis], FakeModel, PrefixCache]:
    model = FakeModel(scripted({0: table}))
    cache = PrefixCache.new([0])
    kwargs = {"bos_id": BOS, "eos_id": EOS, "max_len": 10, "beam_size": 2} | kwargs
    (hyps,) = beam_search(model, cache, **kwargs)
    return hyps, model, cache


def assert_hyps(hyps: list[Hypothesis], expected: list[tuple[list[int], float, float]]) -> None:
    assert [h.tokens for h in hyps] == [tokens for tokens, _, _ in expected]
    for h, (_, log_prob, score) in zip(hyps, expected, strict=True):
        assert h.log_prob == pytest.approx(log_prob, rel=1e-5)
        assert h.score == pytest.approx(score, rel=1e-5)


# ------------------------------------------------------------------------------- beam, by hand


def test_length_penalty_formula() -> None:
    assert length_penalty(1, 0.6) == 1.0
    assert length_penalty(3, 0.6) == pytest.approx((8 / 6) ** 0.6)
    assert length_penalty(50, 0.0) == 1.0


def test_beam_first_finished_is_not_best_and_search_continues() -> None:
    hyps, model, cache = run_beam(TABLE_CONTINUE, alpha=0.0, n_best=2)
    bc, a = math.log(0.4 * 0.9 * 0.95), math.log(0.6 * 0.55)
    assert_hyps(hyps, [([B, C], bc, bc), ([A], a, a)])
    assert len(model.batch_sizes) == 3  # did not stop when [A] finished at step 2
    assert cache.expansions == [2]  # the one sentence expanded to 2 beams, once
    assert cache.reorders[0] == [0, 0]  # both step-2 beams extend its BOS beam


def test_beam_stops_when_no_live_beam_can_win() -> None:
    hyps, model, _ = run_beam(TABLE_STOP, alpha=0.0)
    a = math.log(0.7 * 0.5)
    assert_hyps(hyps, [([A], a, a)])
    assert len(model.batch_sizes) == 2


def test_beam_length_penalty() -> None:
    hyps, model, _ = run_beam(TABLE_STOP, alpha=0.6, n_best=2)
    ac, a = math.log(0.7 * 0.48 * 0.98), math.log(0.7 * 0.5)
    assert_hyps(hyps, [([A, C], ac, ac / lp(3, 0.6)), ([A], a, a / lp(2, 0.6))])
    # After step 2 the live [A, C] could still reach log(.336) / lp(10) > score([A]).
    assert len(model.batch_sizes) == 3
    hyps, _, _ = run_beam(TABLE_CONTINUE, alpha=0.6)
    bc = math.log(0.4 * 0.9 * 0.95)
    assert_hyps(hyps, [([B, C], bc, bc / lp(3, 0.6))])


def test_beam_n_best_waits_for_n_finished() -> None:
    # [A] is best, but n_best = 2 needs a second finished hypothesis: [A, C] (.336 * .98).
    hyps, _, _ = run_beam(TABLE_STOP, alpha=0.0, n_best=2)
    a, ac = math.log(0.7 * 0.5), math.log(0.7 * 0.48 * 0.98)
    assert_hyps(hyps, [([A], a, a), ([A, C], ac, ac)])


def test_beam_bound_uses_the_length_penalty_of_max_len() -> None:
    # At step 2, [A] finishes with log(.35) / lp(2) = -0.957. The live [A, C] (p = .308) could
    # still reach log(.308) / lp(4) = -0.923 at max_len = 4 (but only -0.991 at length 3), so the
    # search must go on; it ends with [A, C, A] forced to stop at max_len.
    table = {
        (): {A: 0.7, B: 0.3},
        (A,): {EOS: 0.5, C: 0.44},
        (A, C): {A: 0.99},
        (A, C, A): {EOS: 0.99},
    }
    hyps, _, _ = run_beam(table, alpha=0.6, max_len=4)
    aca = math.log(0.7 * 0.44 * 0.99 * 0.99)
    assert_hyps(hyps, [([A, C, A], aca, aca / lp(4, 0.6))])


def test_beam_k_finished_stops_once_k_hypotheses_have_finished() -> None:
    # The table of the test above with [A, B] as the second live beam, beam 2: [A] finishes at
    # step 2 and [A, B] at step 3 (it ends likely: EOS .9), so "k-finished" stops after step 3
    # with [A], while "exact" goes on to the better [A, C, A] at step 4.
    table = {
        (): {A: 0.7, B: 0.3},
        (A,): {EOS: 0.5, C: 0.44, B: 0.04},
        (A, C): {A: 0.99},
        (A, C, A): {EOS: 0.99},
    }
    hyps, model, _ = run_beam(table, alpha=0.6, max_len=4, stopping="k-finished", n_best=2)
    a, ab = math.log(0.7 * 0.5), math.log(0.7 * 0.04 * 0.9)
    assert_hyps(hyps, [([A], a, a / lp(2, 0.6)), ([A, B], ab, ab / lp(3, 0.6))])
    assert len(model.batch_sizes) == 3
    _, exact_model, _ = run_beam(table, alpha=0.6, max_len=4, stopping="exact")
    assert len(exact_model.batch_sizes) == 4


def test_beam_max_len_forces_eos_with_its_log_prob() -> None:
    # At step max_len = 2 both live beams must end; each pays its own log P(EOS | prefix).
    hyps, model, _ = run_beam(TABLE_CONTINUE, alpha=0.6, max_len=2, n_best=2)
    a, b = math.log(0.6 * 0.55), math.log(0.4 * 0.1)
    assert_hyps(hyps, [([A], a, a / lp(2, 0.6)), ([B], b, b / lp(2, 0.6))])
    assert len(model.batch_sizes) == 2
    # An unlikely EOS is still the forced one: P(EOS | A) = leftover .01 over 4 tokens.
    hyps, _, _ = run_beam({(): {A: 0.6, B: 0.4}, (A,): {C: 0.99}}, max_len=2, beam_size=1)
    a_eos = math.log(0.6 * 0.0025)
    assert_hyps(hyps, [([A], a_eos, a_eos / lp(2, 0.6))])
    # max_len = 1 leaves room for the EOS only.
    hyps, _, _ = run_beam(TABLE_CONTINUE, max_len=1)
    assert_hyps(hyps, [([], math.log(1e-6), math.log(1e-6))])


def test_beam_step_one_expands_only_the_bos_beam() -> None:
    # With k = 3 and one live beam at step 1, the 3 live beams must be 3 different tokens.
    table = {(): {A: 0.5, B: 0.3, C: 0.15}, (A,): {EOS: 1.0}, (B,): {EOS: 1.0}, (C,): {EOS: 1.0}}
    hyps, _, _ = run_beam(table, beam_size=3, n_best=3, alpha=0.0)
    assert_hyps(
        hyps,
        [([A], math.log(0.5), math.log(0.5)), ([B], math.log(0.3), math.log(0.3)),
         ([C], math.log(0.15), math.log(0.15))],
    )  # fmt: skip


def test_beam_option_errors() -> None:
    model, cache = FakeModel(scripted({0: TABLE_STOP})), PrefixCache.new([0])
    common = {"bos_id": BOS, "eos_id": EOS}
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, cache, **common, max_len=5, beam_size=0)
    with pytest.raises(ValueError, match="n_best"):
        beam_search(model, cache, **common, max_len=5, beam_size=2, n_best=3)
    with pytest.raises(ValueError, match="alpha"):
        beam_search(model, cache, **common, max_len=5, alpha=-1.0)
    with pytest.raises(ValueError, match="max_len"):
        beam_search(model, cache, **common, max_len=0)
    with pytest.raises(ValueError, match="stopping"):
        beam_search(model, cache, **common, max_len=5, stopping="first")
    with pytest.raises(ValueError, match="shape"):
        greedy_search(model, cache, **common, max_len=torch.tensor([3, 4]))


# ------------------------------------------------------------------------- beam, random models


def test_beam_log_probs_match_the_model_so_reorders_are_right() -> None:
    dist = random_model()
    model = FakeModel(dist)
    max_len = torch.tensor([4, 9, 1, 12, 6])
    results = beam_search(
        model, PrefixCache.new([0, 1, 2, 3, 4]), bos_id=BOS, eos_id=EOS, max_len=max_len,
        beam_size=3, alpha=0.6, n_best=3,
    )  # fmt: skip
    for s, hyps in enumerate(results):
        assert 1 <= len(hyps) <= 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            assert len(h.tokens) + 1 <= int(max_len[s])
            assert h.log_prob == pytest.approx(sequence_log_prob(dist, s, h.tokens), rel=1e-5)
            assert h.score == pytest.approx(h.log_prob / lp(len(h.tokens) + 1, 0.6), rel=1e-6)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_batch_equals_each_sentence_alone(search: str) -> None:
    dist = random_model()
    max_len = [4, 9, 1, 12, 6, 7]

    def run(sentences: list[int], limit: Tensor | int):
        model, cache = FakeModel(dist), PrefixCache.new(sentences)
        if search == "greedy":
            return greedy_search(model, cache, bos_id=BOS, eos_id=EOS, max_len=limit), model
        out = beam_search(
            model, cache, bos_id=BOS, eos_id=EOS, max_len=limit, beam_size=3, n_best=2
        )
        return out, model

    batched, model = run(list(range(6)), torch.tensor(max_len))
    alone = [run([s], limit)[0][0] for s, limit in enumerate(max_len)]
    assert batched == alone
    # Finished sentences were dropped: the batch never grows and ends smaller than it started.
    sizes = model.batch_sizes
    if search == "beam":
        # The first step runs once per sentence (its beams are all the same BOS), then k rows
        # per sentence still going (the sentence with max_len 1 ended at step 1).
        assert sizes[:2] == [6, 5 * 3]
        sizes = sizes[1:]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0]


def test_beam_size_one_equals_greedy() -> None:
    dist = random_model()
    max_len = torch.tensor([3, 8, 15, 1, 10, 12, 9, 5])
    sentences = list(range(8))
    greedy = greedy_search(
        FakeModel(dist), PrefixCache.new(sentences), bos_id=BOS, eos_id=EOS, max_len=max_len
    )
    # alpha = 0: with a length penalty, beam search optimises a different objective.
    beam = beam_search(
        FakeModel(dist), PrefixCache.new(sentences), bos_id=BOS, eos_id=EOS, max_len=max_len,
        beam_size=1, alpha=0.0,
    )  # fmt: skip
    assert [hyps[0].tokens for hyps in beam] == greedy
    assert any(len(g) + 1 < int(m) for g, m in zip(greedy, max_len, strict=True))  # some EOS
    assert any(len(g) + 1 == int(m) for g, m in zip(greedy, max_len, strict=True))  # some cut


def test_beam_drops_finished_sentences() -> None:
    model = FakeModel(random_model())
    beam_search(
        model, PrefixCache.new([0, 1, 2]), bos_id=BOS, eos_id=EOS,
        max_len=torch.tensor([2, 5, 30]), beam_size=2,
    )  # fmt: skip
    sizes = model.batch_sizes
    assert sizes[:2] == [3, 6]  # step 1 once per sentence, then 2 beams each
    assert all(size <= 4 for size in sizes[2:])  # sentence 0 is out after step 2
    assert all(size <= 2 for size in sizes[5:])  # sentence 1 is out after step 5


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5])
def test_beam_k_finished_never_beats_exact_and_steps_less(alpha: float) -> None:
    # Both rules follow the same beams; "k-finished" stops a sentence after k finished
    # hypotheses, so either it stopped first and saw a subset of what "exact" saw, or it ran
    # on past exact's stop, where the bound says no hypothesis can still win.
    dist = random_model()
    max_len = torch.tensor([3, 8, 15, 30, 10, 12, 9, 25, 20, 18, 14, 6])
    sentences = list(range(len(max_len)))
    results, rows = {}, {}
    for stopping in ("exact", "k-finished"):
        model = FakeModel(dist)
        results[stopping] = beam_search(
            model, PrefixCache.new(sentences), bos_id=BOS, eos_id=EOS, max_len=max_len,
            beam_size=3, alpha=alpha, n_best=2, stopping=stopping,
        )  # fmt: skip
        rows[stopping] = sum(model.batch_sizes)
    exact, k_finished = results["exact"], results["k-finished"]
    for sentence, (ours, best) in enumerate(zip(k_finished, exact, strict=True)):
        assert len(ours) == 2  # k finished hypotheses are enough for the n best
        assert ours[0].score <= best[0].score + 1e-6
        for hyp in ours:  # each log-prob is that of its own tokens (reorders stay right)
            expected = sequence_log_prob(dist, sentence, hyp.tokens)
            assert hyp.log_prob == pytest.approx(expected, abs=1e-4)
    differ = sum(o[0].tokens != b[0].tokens for o, b in zip(k_finished, exact, strict=True))
    # Measured on these 12 sentences, rows stepped exact / k-finished: 186 / 201 (alpha 0),
    # 249 / 201 (0.6), 321 / 201 (1.5); best outputs that differ: 0, 0, 2.
    if alpha > 0:  # lp(max_len) lets exact follow live beams long after k have finished
        assert rows["k-finished"] < rows["exact"]
    if alpha == 1.5:
        assert 1 <= differ <= 3  # the longer winners that k-finished stopped too early for


# ---------------------------------------------------------------------------------------- greedy


def test_greedy_follows_argmax_and_drops_finished_rows() -> None:
    tables = {
        0: {(): {EOS: 0.9}},  # stops at once: []
        1: {(): {C: 0.8}, (C,): {A: 0.7}, (C, A): {EOS: 0.6}},  # [C, A]
        2: {(): {B: 0.9}, (B,): {B: 0.9}, (B, B): {B: 0.9}, (B, B, B): {A: 0.9},
            (B, B, B, A): {C: 0.9}},  # [B, B, B, A] cut by max_len
    }  # fmt: skip
    model, cache = FakeModel(scripted(tables)), PrefixCache.new([0, 1, 2])
    out = greedy_search(model, cache, bos_id=BOS, eos_id=EOS, max_len=torch.tensor([5, 5, 5]))
    # Sentence 2 never says EOS: max_len 5 leaves 4 tokens, the implied EOS is the 5th.
    assert out == [[], [C, A], [B, B, B, A]]
    assert model.batch_sizes == [3, 2, 2, 1]
    assert cache.reorders == [[1, 2], [1]]


class UnnormalisedModel(FakeModel):
    """Asked for unnormalised scores, returns log-probs plus a random constant per row, as
    logits are: greedy must rank them the same, and ask for them (it needs no normalising)."""

    def __init__(self, dist: DistFn) -> None:
        super().__init__(dist)
        self.asked: list[bool] = []

    def step(
        self, tokens: Tensor, cache: PrefixCache, *, normalize: bool = True
    ) -> tuple[Tensor, PrefixCache]:
        self.asked.append(normalize)
        log_probs, cache = super().step(tokens, cache)
        if normalize:
            return log_probs, cache
        return log_probs + 50.0 * torch.randn(len(log_probs), 1), cache


def test_greedy_asks_for_unnormalised_scores_and_ranks_them_as_log_probs() -> None:
    dist = random_model()
    max_len = torch.tensor([3, 8, 15, 1, 10, 12, 9, 5])
    sentences = list(range(8))
    model = UnnormalisedModel(dist)
    shifted = greedy_search(
        model, PrefixCache.new(sentences), bos_id=BOS, eos_id=EOS, max_len=max_len
    )
    plain = greedy_search(
        FakeModel(dist), PrefixCache.new(sentences), bos_id=BOS, eos_id=EOS, max_len=max_len
    )
    assert shifted == plain
    assert model.asked and not any(model.asked)


def test_greedy_max_len_one_calls_no_model() -> None:
    model = FakeModel(random_model())
    out = greedy_search(model, PrefixCache.new([0, 1]), bos_id=BOS, eos_id=EOS, max_len=1)
    assert out == [[], []]
    assert model.batch_sizes == []


# ---------------------------------------------------------------- the real model, via the stepper

PAD, REAL_BOS, REAL_EOS = 0, 1, 2


@pytest.fixture
def tiny_model():
    from aiayn.model import ModelConfig, Transformer

    model = Transformer(ModelConfig.tiny(13, 11)).eval()
    with torch.no_grad():
        # Random weights: sharpen the output so beams diverge, and never emit PAD or BOS (a
        # trained model doesn't; decoding without a cache would mask a PAD in the target).
        model.generator.weight *= 3.0
        model.generator.bias[[PAD, REAL_BOS]] = -1e4
    return model


def padded_sources(lengths: list[int]) -> Tensor:
    src = torch.full((len(lengths), max(lengths)), PAD)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(3, 13, (n,))
    return src


def test_stepper_greedy_matches_decoding_without_cache(tiny_model) -> None:
    from aiayn.decoding import start

    lengths, max_len = [5, 2, 7, 3, 6], torch.tensor([6, 9, 4, 12, 8])
    src = padded_sources(lengths)
    stepper, cache = start(tiny_model, src, src != PAD)
    out = greedy_search(stepper, cache, bos_id=REAL_BOS, eos_id=REAL_EOS, max_len=max_len)

    with torch.no_grad():
        for i, n in enumerate(lengths):  # one unpadded sentence at a time, full recompute
            memory = tiny_model.encode(src[i : i + 1, :n])
            ids = [REAL_BOS]
            while len(ids) < int(max_len[i]):
                logits, _ = tiny_model.decode(torch.tensor([ids]), memory)
                token = int(logits[0, -1].argmax())
                if token == REAL_EOS:
                    break
                ids.append(token)
            assert out[i] == ids[1:]


def test_stepper_unnormalised_scores_are_the_logits(tiny_model) -> None:
    from aiayn.decoding import start

    src = padded_sources([5, 2, 7])
    stepper, cache = start(tiny_model, src, src != PAD, suppressed_ids=[PAD, 4])
    tokens = torch.full((3, 1), REAL_BOS)
    log_probs, _ = stepper.step(tokens, cache)
    stepper, cache = start(tiny_model, src, src != PAD, suppressed_ids=[PAD, 4])
    logits, _ = stepper.step(tokens, cache, normalize=False)
    assert not torch.allclose(logits.exp().sum(-1), torch.ones(3))  # not probabilities
    assert torch.allclose(logits.log_softmax(-1), log_probs, atol=1e-6, equal_nan=True)
    assert bool((logits[:, [PAD, 4]] == float("-inf")).all())  # suppressed either way


def test_stepper_beam_log_probs_match_teacher_forcing(tiny_model) -> None:
    from aiayn.decoding import start

    lengths, max_len = [5, 2, 7, 3], torch.tensor([7, 10, 5, 12])
    src = padded_sources(lengths)
    stepper, cache = start(tiny_model, src, src != PAD, capacity=4)  # also grows the cache
    results = beam_search(
        stepper, cache, bos_id=REAL_BOS, eos_id=REAL_EOS, max_len=max_len, beam_size=3, n_best=2
    )
    with torch.no_grad():
        for i, hyps in enumerate(results):
            assert len(hyps) == 2
            for h in hyps:
                tgt_in = torch.tensor([[REAL_BOS, *h.tokens]])
                tgt_out = torch.tensor([[*h.tokens, REAL_EOS]])
                logits = tiny_model(src[i : i + 1, : lengths[i]], tgt_in)  # (1, T, V)
                log_probs = logits.log_softmax(-1).gather(2, tgt_out.unsqueeze(2))
                assert h.log_prob == pytest.approx(float(log_probs.sum()), abs=1e-4)
