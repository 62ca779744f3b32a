"""The FastAPI app: /v1/translate, /v1/attention, /health, /metrics and the page at /.

    app = create_app(Translator.from_run("runs/en-de"), ServeConfig())
    uvicorn.run(app, host="127.0.0.1", port=8000)   # what `aiayn serve` does

Any `Backend` serves: our `Translator`, or `Ct2Translator` on a CTranslate2 export, which has
no attention maps (/v1/attention answers 501 with its reason, and /v1/info says so).

The app owns a `Batcher`: started with the app, it warms the model up with one translation
(/health answers 503 until then), and at shutdown it finishes what is queued before it stops.
Every request body is read with a size cap and checked before it reaches the queue; an answer
to a request is JSON, an error `{"error": "..."}` with a 4xx or 503/504 status.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from aiayn.serve.backend import Backend
from aiayn.serve.batcher import Batcher, QueueFull, ShuttingDown
from aiayn.serve.config import ServeConfig
from aiayn.serve.metrics import ServerMetrics
from aiayn.serve.requests import (
    DecodeSettings,
    RequestError,
    parse_attention,
    parse_translate,
)
from aiayn.serve.responses import attention_json, translate_json

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
WARM_UP_TEXT = "Hello world."
CLIENT_GONE = 499  # the status recorded (never sent) for a client that left before its answer


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


def create_app(translator: Backend, config: ServeConfig | None = None) -> FastAPI:
    """A FastAPI app serving `translator` with dynamic batching.

    Args:
        translator: the engine: our `Translator` (e.g. `Translator.from_run`) or a
            `Ct2Translator`.
        config: batching, queue and request limits; default `ServeConfig()`.

    Returns:
        The app; run it with uvicorn (its lifespan starts and drains the batcher).
    """
    config = config or ServeConfig()
    # The same engine and model, with a batch budget of its own: one model call may hold the
    # whole batch the batcher collected.
    serving = copy.copy(translator)
    serving.decode = replace(translator.decode, max_tokens=config.max_batch_tokens)
    metrics = ServerMetrics()
    batcher = Batcher(serving, config, metrics)
    health: dict[str, Any] = {"status": "starting"}

    async def warm_up() -> None:
        settings = DecodeSettings(serving.decode.beam_size, serving.decode.alpha, 1)
        try:
            await batcher.translate([WARM_UP_TEXT], settings)
        except Exception as error:  # a model that cannot translate must not report ready
            log.exception("the warm-up translation failed")
            health["status"] = f"warm-up failed: {error}"
            return
        health["status"] = "ok"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        warming = asyncio.create_task(warm_up())
        try:
            yield
        finally:
            await warming
            await batcher.close()

    # No /docs: FastAPI's documentation pages load their scripts from a CDN.
    app = FastAPI(title="aiayn", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher
    app.state.metrics = metrics

    async def answer(
        endpoint: str, request: Request, work: Callable[[bytes], Awaitable[dict[str, Any]]]
    ) -> Response:
        """Run one request's work and turn each way it can end into a status and JSON."""
        started = time.perf_counter()
        headers: dict[str, str] = {}
        try:
            body = await read_body(request, config.max_body_bytes)
            payload, status = await until_disconnect(request, work(body)), 200
        except RequestError as error:
            payload, status = {"error": str(error)}, error.status
        except QueueFull as error:
            payload, status = {"error": f"{error}; retry later"}, 503
            headers["Retry-After"] = str(config.retry_after_s)
        except ShuttingDown as error:
            payload, status = {"error": str(error)}, 503
        except asyncio.TimeoutError:
            message = f"no answer within {config.timeout_s:g} s (the server is overloaded)"
            payload, status = {"error": message}, 504
        except ClientGone:
            payload, status = {"error": "client disconnected"}, CLIENT_GONE
        metrics.observe_request(endpoint, status, time.perf_counter() - started)
        return JSONResponse(payload, status_code=status, headers=headers)

    @app.post("/v1/translate")
    async def translate(request: Request) -> Response:
        async def work(body: bytes) -> dict[str, Any]:
            parsed = parse_translate(body, config, serving.decode)
            translations, timings = await batcher.translate(
                parsed.texts, parsed.settings, config.timeout_s
            )
            greedy = parsed.settings.beam == 1
            return translate_json(translations, serving.vocabs.tgt, greedy, timings)

        return await answer("translate", request, work)

    @app.post("/v1/attention")
    async def attention(request: Request) -> Response:
        async def work(body: bytes) -> dict[str, Any]:
            if serving.attention_unavailable is not None:
                raise RequestError(501, serving.attention_unavailable)
            text, translation = parse_attention(body, config)
            n = len(serving.vocabs.src.encode(text))
            if n == 0:
                raise RequestError(422, "text has no source subwords to attend to")
            lengths = {"text": n}
            if translation is not None:
                lengths["translation"] = len(serving.vocabs.tgt.encode(translation))
            for key, count in lengths.items():
                if count > config.max_attention_tokens:
                    raise RequestError(
                        413,
                        f"{key} has {count} subwords; the limit for attention is "
                        f"{config.max_attention_tokens}",
                    )
            (weights, src_pieces, tgt_pieces), timings = await batcher.attention(
                text, translation, config.timeout_s
            )
            return attention_json(weights, src_pieces, tgt_pieces, timings)

        return await answer("attention", request, work)

    @app.get("/v1/info")
    async def info() -> dict[str, Any]:
        """The run's default search, the model's shape, whether attention maps are available
        (null) or why not, and the server's limits (the page reads them)."""
        model = serving.model_config
        return {
            "beam": serving.decode.beam_size,
            "alpha": serving.decode.alpha,
            "layers": {"encoder": model.n_encoder_layers, "decoder": model.n_decoder_layers},
            "heads": model.n_heads,
            "attention_unavailable": serving.attention_unavailable,
            "limits": {
                "max_chars": config.max_chars,
                "max_sentences": config.max_sentences,
                "max_beam": config.max_beam,
                "max_n_best": config.max_n_best,
                "max_attention_tokens": config.max_attention_tokens,
            },
        }

    @app.get("/health")
    async def health_check() -> Response:
        ready = health["status"] == "ok"
        return JSONResponse({"status": health["status"]}, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics_text() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/")
    async def page() -> Response:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes.

    Raises:
        RequestError: 413, before reading a body whose Content-Length says it is too large, or
            as soon as the bytes read pass the limit.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body has {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"the body passes the limit of {limit} bytes")
    return bytes(body)


async def until_disconnect(request: Request, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """The result of `work`, or ClientGone (and `work` cancelled) if the client leaves first.

    Once the body is read, the next ASGI message of the connection is its disconnect; waiting
    for it beside the work lets a request that nobody waits for leave the queue.
    """
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(wait_for_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise ClientGone
    finally:
        gone.cancel()
        task.cancel()


async def wait_for_disconnect(request: Request) -> None:
    """Return when the client has closed the connection."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
