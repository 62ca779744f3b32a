"""The app in-process: answers, limits and bad input as 4xx JSON (and it keeps serving), 503
with Retry-After when the queue is full, /health only after the warm-up, /metrics, the page."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest

from aiayn.cli import main
from aiayn.cli.serve import is_loopback
from aiayn.serve.app import create_app
from aiayn.serve.config import ServeConfig
from serve_helpers import Recording, in_process, random_translator


async def until_ready(client: httpx.AsyncClient) -> None:
    for _ in range(500):
        if (await client.get("/health")).status_code == 200:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never ready")


def test_translate_answers_in_input_order_with_scores_and_n_best() -> None:
    translator = random_translator()
    app = create_app(translator)

    async def scenario() -> None:
        async with in_process(app) as client:
            await until_ready(client)
            one = await client.post("/v1/translate", json={"text": "1 2 3"})
            many = await client.post(
                "/v1/translate", json={"text": ["1 2 3", "4 5", "9"], "beam": 3, "n_best": 2}
            )
            assert one.status_code == 200 and many.status_code == 200, (one.text, many.text)
            [greedy] = one.json()["translations"]  # a single string: a list of one
            assert greedy["text"] == translator.translate(["1 2 3"], beam_size=1)[0]
            assert greedy["score"] is None  # greedy search keeps no scores
            assert greedy["tokens"] == greedy["text"].split()  # one symbol, one token
            expected = translator.translate_full(["1 2 3", "4 5", "9"], beam_size=3, n_best=2)
            answers = many.json()["translations"]
            for got, want in zip(answers, expected, strict=True):
                assert got["text"] == want.text
                assert [h["score"] for h in got["n_best"]] == pytest.approx(
                    [h.score for h in want.hypotheses], abs=1e-5
                )
                assert got["score"] == got["n_best"][0]["score"]
            assert set(many.json()["timings"]) == {"queue_ms", "decode_ms"}

    asyncio.run(scenario())


BAD_REQUESTS = [  # body, status, words of the message
    (b'{"text": "1 2"', 400, "not JSON"),
    (b'{"text": "\xff\xfe 1"}', 400, "not valid UTF-8"),
    (b'["1 2"]', 422, "JSON object"),
    (b'{"text": 12}', 422, "text must be a string"),
    (b'{"text": ["1", 2]}', 422, "text must be a string"),
    (b'{"text": "   "}', 422, "text is empty"),
    (b'{"text": ["1", ""]}', 422, "text[1] is empty"),
    (b'{"text": []}', 422, "empty list"),
    (b'{"beam": 2}', 422, "text is missing"),
    (b'{"text": "1", "nbest": 2}', 422, "unknown key"),
    (b'{"text": "1", "beam": "4"}', 422, "beam must be an integer"),
    (b'{"text": "1", "beam": true}', 422, "beam must be an integer"),
    (b'{"text": "1", "beam": 0}', 422, "beam must be between 1 and 8"),
    (b'{"text": "1", "beam": 9}', 422, "beam must be between 1 and 8"),
    (b'{"text": "1", "beam": 2, "n_best": 3}', 422, "n_best must be between 1 and 2"),
    (b'{"text": "1", "alpha": -1}', 422, "alpha must be a finite number"),
    (b'{"text": "1", "alpha": NaN}', 422, "alpha must be a finite number"),
    (b'{"text": "1", "alpha": "x"}', 422, "alpha must be a number"),
    (json.dumps({"text": "1 " * 60}).encode(), 413, "the limit is 100"),
    (json.dumps({"text": ["1"] * 5}).encode(), 413, "5 sentences; the limit is 4"),
    (b"x" * (10 << 20), 413, "the limit is 4096"),
]


def test_bad_requests_get_4xx_json_naming_the_problem_and_the_server_keeps_serving() -> None:
    limits = ServeConfig(
        max_chars=100, max_sentences=4, max_beam=8, max_body_bytes=4096, max_attention_tokens=10
    )
    app = create_app(random_translator(), limits)

    async def scenario() -> None:
        async with in_process(app) as client:
            await until_ready(client)
            for body, status, words in BAD_REQUESTS:
                answer = await client.post("/v1/translate", content=body)
                assert answer.status_code == status, (body[:40], answer.text)
                assert words in answer.json()["error"], (body[:40], answer.text)
            attention = await client.post("/v1/attention", json={"text": ["1"]})
            assert attention.status_code == 422 and "text must be a string" in attention.text
            attention = await client.post("/v1/attention", json={"text": "1 " * 11})
            assert attention.status_code == 413 and "limit for attention is 10" in attention.text
            good = await client.post("/v1/translate", json={"text": "1 2"})
            assert good.status_code == 200 and len(good.json()["translations"]) == 1
            metrics = (await client.get("/metrics")).text
            for status in (400, 413, 422):
                count = sum(s == status for _, s, _ in BAD_REQUESTS)
                assert f'{{endpoint="translate",status="{status}"}} {count}.0' in metrics

    asyncio.run(scenario())


def test_health_waits_for_the_warm_up_and_a_full_queue_answers_503_with_retry_after() -> None:
    app = create_app(random_translator(), ServeConfig(max_queue=1, max_wait_ms=0))
    recording = Recording(app.state.batcher.translator)
    recording.gate.clear()  # the warm-up translation waits at the gate

    async def scenario() -> None:
        async with in_process(app) as client:
            while not recording.entered.is_set():
                await asyncio.sleep(0.005)
            health = await client.get("/health")
            assert health.status_code == 503 and health.json() == {"status": "starting"}
            waiting = asyncio.create_task(client.post("/v1/translate", json={"text": "1 2"}))
            while app.state.batcher.depth < 1:
                await asyncio.sleep(0.005)
            full = await client.post("/v1/translate", json={"text": "3 4"})
            assert full.status_code == 503 and full.headers["Retry-After"] == "1"
            assert "queue" in full.json()["error"]
            recording.gate.set()
            assert (await waiting).status_code == 200
            await until_ready(client)
            metrics = (await client.get("/metrics")).text
            assert 'aiayn_requests_total{endpoint="translate",status="503"} 1.0' in metrics

    asyncio.run(scenario())


def test_attention_has_every_layer_and_head_for_the_translation() -> None:
    translator = random_translator()
    app = create_app(translator)

    async def scenario() -> None:
        async with in_process(app) as client:
            answer = await client.post("/v1/attention", json={"text": "3 1 4 1 5"})
            assert answer.status_code == 200, answer.text
            found = answer.json()
            info = (await client.get("/v1/info")).json()
        src, tgt = found["source"], found["target"]
        assert src == ["3", "1", "4", "1", "5"]
        assert tgt[0] == "<s>" and " ".join(tgt[1:]) == translator.translate(["3 1 4 1 5"])[0]
        shapes = {"encoder": (len(src), len(src)), "cross": (len(tgt), len(src))}
        shapes["decoder_self"] = (len(tgt), len(tgt))
        for kind, (rows, cols) in shapes.items():
            layers = found[kind]
            assert len(layers) == 2 and all(len(heads) == info["heads"] == 4 for heads in layers)
            for head in (h for heads in layers for h in heads):
                assert len(head) == rows and all(len(row) == cols for row in head)
                assert all(sum(row) == pytest.approx(1, abs=1e-3) for row in head)

    asyncio.run(scenario())


def test_attention_of_a_given_translation() -> None:
    """The target rows are the given translation's subwords (not the model's own), and a
    translation of the wrong type or over the limits is refused naming the key."""
    translator = random_translator()
    app = create_app(translator, ServeConfig(max_attention_tokens=10))
    given = "9 8 7 6 5 4"
    assert translator.translate(["3 1 4"])[0] != given  # the model would not write it

    async def scenario() -> None:
        async with in_process(app) as client:
            answer = await client.post(
                "/v1/attention", json={"text": "3 1 4", "translation": given}
            )
            assert answer.status_code == 200, answer.text
            found = answer.json()
            assert found["source"] == ["3", "1", "4"]
            assert found["target"] == ["<s>", *given.split()]
            assert all(len(head) == 7 for heads in found["cross"] for head in heads)
            wrong = await client.post("/v1/attention", json={"text": "3", "translation": 5})
            assert wrong.status_code == 422 and "translation must be a string" in wrong.text
            long = await client.post("/v1/attention", json={"text": "3", "translation": "1 " * 11})
            assert long.status_code == 413 and "translation has 11 subwords" in long.text

    asyncio.run(scenario())


def test_each_app_has_its_own_metrics_and_serves_the_page() -> None:
    first, second = create_app(random_translator()), create_app(random_translator())

    async def scenario() -> None:
        async with in_process(first) as a, in_process(second) as b:
            await until_ready(a)
            await until_ready(b)
            await a.post("/v1/translate", json={"text": "1"})
            assert 'endpoint="translate",status="200"} 1.0' in (await a.get("/metrics")).text
            assert 'endpoint="translate"' not in (await b.get("/metrics")).text
            page = await a.get("/")
            assert page.status_code == 200 and page.text.lower().startswith("<!doctype html>")
            for name in ("app.js", "style.css"):  # package data, served beside the page
                assert (await a.get(f"/static/{name}")).status_code == 200
            metrics = (await a.get("/metrics")).text
            for name in ("aiayn_request_seconds_bucket", "aiayn_batch_sentences_bucket",
                         "aiayn_queue_depth", "aiayn_source_tokens_total",
                         "aiayn_target_tokens_total"):  # fmt: skip
                assert name in metrics

    asyncio.run(scenario())


def test_without_the_extra_the_command_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # `import fastapi` raises ImportError
    monkeypatch.delitem(sys.modules, "aiayn.serve.app", raising=False)
    assert main(["serve", "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "aiayn[serve]"' in err


def test_bad_options_and_runs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--run", "x", "--max-queue", "0"])
    assert stop.value.code == 2 and "--max-queue: must be > 0" in capsys.readouterr().err
    assert main(["serve", "--run", str(tmp_path / "nothing")]) == 2  # before binding a port
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("aiayn serve: error:")


def test_only_loopback_addresses_count_as_private() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert not is_loopback("example.org")
