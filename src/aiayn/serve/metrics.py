"""The server's Prometheus metrics, in a registry of its own (one per app, so tests can make many).

Names: `aiayn_requests_total{endpoint, status}`, `aiayn_request_seconds{endpoint}` (latency),
`aiayn_batch_requests` and `aiayn_batch_sentences` (what one model call served),
`aiayn_queue_depth`, `aiayn_source_tokens_total` and `aiayn_target_tokens_total`.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from aiayn.decoding.translator import Translation

# Latency buckets from a greedy sentence on a small model to a long queue on a big one.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """The metrics of one app; `render()` is the text of GET /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "aiayn_requests", "Requests answered, by endpoint and HTTP status",
            ["endpoint", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "aiayn_request_seconds", "Time from a request's arrival to its answer",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_requests = Histogram(
            "aiayn_batch_requests", "Requests served by one model call",
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_sentences = Histogram(
            "aiayn_batch_sentences", "Sentences translated by one model call",
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge("aiayn_queue_depth", "Requests waiting for a batch", registry=r)
        self.source_tokens = Counter(
            "aiayn_source_tokens", "Source subword tokens translated", registry=r
        )
        self.target_tokens = Counter(
            "aiayn_target_tokens", "Target subword tokens produced (best hypotheses)", registry=r
        )

    def observe_batch(
        self, requests: int, src_tokens: int, translations: Sequence[Translation]
    ) -> None:
        """Record one decoded batch of translation requests."""
        self.batch_requests.observe(requests)
        self.batch_sentences.observe(len(translations))
        self.source_tokens.inc(src_tokens)
        self.target_tokens.inc(sum(len(t.hypotheses[0].tokens) for t in translations))

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
