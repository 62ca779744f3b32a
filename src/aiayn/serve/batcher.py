"""Dynamic batching: many independent requests, one model call.

Requests wait in a bounded queue. A single worker takes the oldest one and lets others with the
same search settings join it until the batch holds `max_batch_sentences` sentences or
`max_batch_tokens` source tokens x beams, or the first has waited `max_wait_ms`; then it
decodes them all with one `translate_full` call of the backend (ours or CTranslate2) in a
worker thread (so the event loop goes on accepting and answering requests) and gives each
request exactly its own translations. Requests with other settings keep their place in the
queue for a later batch.

A busy server batches by itself: while one batch decodes, the next fills up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiayn.decoding.translator import Translation
from aiayn.serve.backend import Backend
from aiayn.serve.config import ServeConfig
from aiayn.serve.metrics import ServerMetrics
from aiayn.serve.requests import DecodeSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class QueueFull(Exception):
    """The queue holds `max_queue` requests: the server answers 503 with Retry-After."""


class ShuttingDown(Exception):
    """The server is stopping and takes no new requests: 503."""


@dataclass(frozen=True)
class Timings:
    """Where a request's time went, in milliseconds."""

    queue_ms: float  # from arrival until its batch started decoding
    decode_ms: float  # the batch's decoding


@dataclass
class Job:
    """One request waiting for, or in, a batch."""

    texts: list[str]
    settings: DecodeSettings | None  # None: an attention request, which runs alone
    src_tokens: int  # source tokens of all its sentences
    future: asyncio.Future[Any]
    arrived: float = field(default_factory=time.perf_counter)
    translation: str | None = None  # an attention request's given translation, if any


class Batcher:
    """Collects requests into batches and decodes them one batch at a time.

    Args:
        translator: the engine (`Backend`: ours or CTranslate2); only the worker thread calls
            it.
        config: the batch budget and the queue bound.
        metrics: where batch sizes, queue depth and token counts go.

    Use `start()` inside the event loop, `translate`/`attention` per request, `close()` to
    drain at shutdown.
    """

    def __init__(self, translator: Backend, config: ServeConfig, metrics: ServerMetrics) -> None:
        self.translator = translator
        self.config = config
        self.metrics = metrics
        self._waiting: deque[Job] = deque()
        self._arrived = asyncio.Event()
        # One thread: batches decode one after another, each using all of torch's threads.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiayn-decode")
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._busy = False

    def start(self) -> None:
        """Start the worker task (call from within the running event loop)."""
        self._arrived = asyncio.Event()  # bound to the running loop
        self._worker = asyncio.create_task(self._work(), name="aiayn-batcher")

    async def close(self) -> None:
        """Refuse new requests, finish every queued one, then stop the worker and its thread."""
        self._closing = True
        while self._waiting or self._busy:
            await asyncio.sleep(0.01)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._waiting)

    async def translate(
        self, texts: list[str], settings: DecodeSettings, timeout_s: float | None = None
    ) -> tuple[list[Translation], Timings]:
        """Translate one request's sentences in some batch; its translations and timings.

        Raises:
            QueueFull, ShuttingDown: the request was not queued.
            TimeoutError: no answer within `timeout_s` (the request leaves the queue).
        """
        src = self.translator.vocabs.src
        src_tokens = sum(len(src.encode(t)) for t in texts)
        return await self._submit(Job(texts, settings, src_tokens, self._future()), timeout_s)

    async def attention(
        self, text: str, translation: str | None = None, timeout_s: float | None = None
    ) -> tuple[Any, Timings]:
        """The backend's `attention` of one sentence (and its given translation, if any), run
        alone in the queue's order.

        Raises:
            QueueFull, ShuttingDown, TimeoutError: as `translate`.
        """
        src_tokens = len(self.translator.vocabs.src.encode(text))
        job = Job([text], None, src_tokens, self._future(), translation=translation)
        return await self._submit(job, timeout_s)

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _submit(self, job: Job, timeout_s: float | None) -> Any:
        if self._closing:
            raise ShuttingDown("the server is shutting down")
        if len(self._waiting) >= self.config.max_queue:
            raise QueueFull(f"the queue holds {self.config.max_queue} requests")
        self._waiting.append(job)
        self.metrics.queue_depth.set(len(self._waiting))
        self._arrived.set()
        try:
            # shield: a timeout or a cancelled request must not cancel the shared future's
            # batch; the worker skips jobs whose future is done.
            return await asyncio.wait_for(asyncio.shield(job.future), timeout_s)
        finally:
            if not job.future.done():  # timed out or the client went away: leave the queue
                job.future.cancel()
                if job in self._waiting:
                    self._waiting.remove(job)
                    self.metrics.queue_depth.set(len(self._waiting))

    async def _work(self) -> None:
        """The worker: forever take a batch from the queue and decode it."""
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            batch = await self._collect()
            if not batch:
                continue
            self._busy = True
            try:
                await self._run(batch)
            finally:
                self._busy = False

    async def _collect(self) -> list[Job]:
        """Take the oldest request and the requests that may join it, waiting up to max_wait."""
        first = self._waiting[0]
        deadline = first.arrived + self.config.max_wait_ms / 1000
        while True:
            if first not in self._waiting:  # it timed out or its client left while we waited
                return []
            batch = self._candidates(first)
            sentences = sum(len(j.texts) for j in batch)
            tokens = sum(self._budget(j) for j in batch)
            full = (
                first.settings is None
                or sentences >= self.config.max_batch_sentences
                or tokens >= self.config.max_batch_tokens
            )
            remaining = deadline - time.perf_counter()
            if full or remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        for job in batch:  # no await since `batch` was chosen: all are still waiting
            self._waiting.remove(job)
        self.metrics.queue_depth.set(len(self._waiting))
        return batch

    def _candidates(self, first: Job) -> list[Job]:
        """The first job and, in queue order, the jobs with its settings that fit the budget."""
        batch = [first]
        if first.settings is None:
            return batch
        sentences, tokens = len(first.texts), self._budget(first)
        for job in list(self._waiting)[1:]:
            if job.settings != first.settings:
                continue
            sentences += len(job.texts)
            tokens += self._budget(job)
            if sentences > self.config.max_batch_sentences or tokens > self.config.max_batch_tokens:
                break
            batch.append(job)
        return batch

    @staticmethod
    def _budget(job: Job) -> int:
        """What a job costs of `max_batch_tokens`: its source tokens x beams."""
        return job.src_tokens * (1 if job.settings is None else job.settings.beam)

    async def _run(self, batch: list[Job]) -> None:
        """Decode a batch in the worker thread and resolve each job with its own results."""
        started = time.perf_counter()
        settings = batch[0].settings
        try:
            if settings is None:
                job = batch[0]
                result = await self._in_thread(
                    self.translator.attention, job.texts[0], job.translation
                )
                results: list[Any] = [result]
            else:
                texts = [t for job in batch for t in job.texts]
                translations = await self._in_thread(
                    lambda: self.translator.translate_full(
                        texts, beam_size=settings.beam, alpha=settings.alpha, n_best=settings.n_best
                    )
                )
                results, offset = [], 0
                for job in batch:
                    results.append(translations[offset : offset + len(job.texts)])
                    offset += len(job.texts)
                self.metrics.observe_batch(
                    requests=len(batch),
                    src_tokens=sum(job.src_tokens for job in batch),
                    translations=translations,
                )
        except Exception as error:  # a bug: every waiting request learns of it, the server lives
            log.exception("decoding a batch of %d request(s) failed", len(batch))
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        decode_ms = (time.perf_counter() - started) * 1000
        for job, result in zip(batch, results, strict=True):
            if not job.future.done():
                timings = Timings((started - job.arrived) * 1000, decode_ms)
                job.future.set_result((result, timings))

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
