"""The dynamic batcher: each request gets exactly its own translations, batches hold one search
setting and respect their budget, the queue is bounded, timeouts leave it, shutdown drains it."""

from __future__ import annotations

import asyncio
import random

import pytest

from aiayn.serve.batcher import Batcher, QueueFull, ShuttingDown
from aiayn.serve.config import ServeConfig
from aiayn.serve.metrics import ServerMetrics
from aiayn.serve.requests import DecodeSettings
from serve_helpers import Recording, random_translator

GREEDY = DecodeSettings(beam=1, alpha=0.6, n_best=1)
BEAM = DecodeSettings(beam=3, alpha=0.6, n_best=2)
BEAM_ALPHA = DecodeSettings(beam=3, alpha=1.0, n_best=2)


def sentences(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice("0123456789") for _ in range(rng.randint(2, 7))) for _ in range(n)]


def test_each_request_gets_its_own_translations_from_batches_of_one_setting() -> None:
    """18 requests of 1-3 sentences with three search settings, sent at once: one batch per
    setting, and every request's answer equals translating it alone with its own settings."""
    rng = random.Random(1)
    settings = [GREEDY, BEAM, BEAM_ALPHA]
    requests = [(sentences(rng, rng.randint(1, 3)), settings[i % 3]) for i in range(18)]
    translator = random_translator()
    recording = Recording(translator)
    # A long wait: every request is queued before the first batch leaves.
    batcher = Batcher(translator, ServeConfig(max_wait_ms=300), ServerMetrics())

    async def serve() -> list:
        batcher.start()
        answers = await asyncio.gather(*(batcher.translate(t, s) for t, s in requests))
        await batcher.close()
        return answers

    answers = asyncio.run(serve())
    assert len(recording.calls) == 3  # one model call per setting
    for texts, beam, alpha, n_best in recording.calls:
        members = [
            (t, s) for t, s in requests if (s.beam, s.alpha, s.n_best) == (beam, alpha, n_best)
        ]
        assert texts == [x for t, _ in members for x in t]  # only its setting's requests, in order
    for (texts, s), (translations, timings) in zip(requests, answers, strict=True):
        # The unbatched reference: the same translator, this request alone.
        expected = translator.translate_full(
            texts, beam_size=s.beam, alpha=s.alpha, n_best=s.n_best
        )
        assert [t.text for t in translations] == [t.text for t in expected]
        for got, want in zip(translations, expected, strict=True):
            assert [h.tokens for h in got.hypotheses] == [h.tokens for h in want.hypotheses]
            assert [h.score for h in got.hypotheses] == pytest.approx(
                [h.score for h in want.hypotheses], abs=1e-4
            )
        assert timings.queue_ms >= 0 and timings.decode_ms > 0


def test_batches_keep_to_their_sentence_and_token_budgets() -> None:
    """10 one-sentence requests at once: batches of at most 4 sentences and 12 tokens x beams."""
    rng = random.Random(2)
    texts = [" ".join(rng.choice("0123456789") for _ in range(3)) for _ in range(10)]
    translator = random_translator()
    recording = Recording(translator)
    config = ServeConfig(max_wait_ms=200, max_batch_sentences=4, max_batch_tokens=12)
    batcher = Batcher(translator, config, ServerMetrics())

    async def serve() -> list:
        batcher.start()
        answers = await asyncio.gather(*(batcher.translate([t], GREEDY) for t in texts))
        await batcher.close()
        return answers

    answers = asyncio.run(serve())
    assert [len(call[0]) for call in recording.calls] == [4, 4, 2]  # 4 x 3 tokens = 12
    assert [a[0][0].text for a in answers] == [t.text for t in translator.translate_full(texts)]


def run_blocked(config: ServeConfig, scenario) -> None:
    """Run `scenario(batcher, recording)` with the model held at its gate until it opens it."""
    translator = random_translator()
    recording = Recording(translator)
    recording.gate.clear()
    batcher = Batcher(translator, config, ServerMetrics())

    async def main() -> None:
        batcher.start()
        try:
            await scenario(batcher, recording)
        finally:
            recording.gate.set()
            await batcher.close()

    asyncio.run(main())


async def until_busy(recording: Recording) -> None:
    """Wait until the worker thread is inside the model (holding the first request)."""
    while not recording.entered.is_set():
        await asyncio.sleep(0.005)


def test_a_full_queue_refuses_and_the_queued_requests_are_still_answered() -> None:
    async def scenario(batcher: Batcher, recording: Recording) -> None:
        first = asyncio.create_task(batcher.translate(["1 2"], GREEDY))
        await until_busy(recording)  # the first request is in the model, not in the queue
        queued = [asyncio.create_task(batcher.translate([t], GREEDY)) for t in ("3 4", "5 6")]
        await asyncio.sleep(0.01)
        assert batcher.depth == 2
        with pytest.raises(QueueFull):
            await batcher.translate(["7 8"], GREEDY)
        recording.gate.set()
        answers = await asyncio.gather(first, *queued)
        assert [a[0][0].text for a in answers] == [
            t.text for t in batcher.translator.translate_full(["1 2", "3 4", "5 6"])
        ]

    run_blocked(ServeConfig(max_queue=2, max_wait_ms=0), scenario)


def test_a_request_that_times_out_leaves_the_queue() -> None:
    async def scenario(batcher: Batcher, recording: Recording) -> None:
        first = asyncio.create_task(batcher.translate(["1 2"], GREEDY))
        await until_busy(recording)
        with pytest.raises(asyncio.TimeoutError):
            await batcher.translate(["3 4"], GREEDY, timeout_s=0.05)
        assert batcher.depth == 0  # it left; the model will never see it
        recording.gate.set()
        await first
        await asyncio.sleep(0.05)
        assert [call[0] for call in recording.calls] == [["1 2"]]

    run_blocked(ServeConfig(max_wait_ms=0), scenario)


def test_closing_answers_every_queued_request_and_refuses_new_ones() -> None:
    async def scenario(batcher: Batcher, recording: Recording) -> None:
        pending = [asyncio.create_task(batcher.translate([t], BEAM)) for t in ("1 2", "3", "4 5")]
        await until_busy(recording)
        closing = asyncio.create_task(batcher.close())
        await asyncio.sleep(0.02)
        with pytest.raises(ShuttingDown):
            await batcher.translate(["6"], BEAM)
        recording.gate.set()
        await closing
        assert all(len(translations) == 1 for translations, _ in await asyncio.gather(*pending))

    run_blocked(ServeConfig(max_wait_ms=0), scenario)


def test_an_attention_request_runs_alone_between_batches() -> None:
    translator = random_translator()
    recording = Recording(translator)
    batcher = Batcher(translator, ServeConfig(max_wait_ms=100), ServerMetrics())

    async def serve() -> list:
        batcher.start()
        tasks = [batcher.translate(["1 2"], GREEDY), batcher.attention("3 4 5")]
        answers = await asyncio.gather(*tasks, batcher.translate(["6 7"], GREEDY))
        await batcher.close()
        return answers

    _, ((weights, src, tgt), _), _ = asyncio.run(serve())
    assert recording.calls[0][0] == ["1 2", "6 7"]  # the translations shared a batch
    assert src == ["3", "4", "5"] and weights.cross[0].shape[-2:] == (len(tgt), 3)
