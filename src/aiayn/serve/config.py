"""The server's settings: batching, queue, timeout and the limits on one request."""

from __future__ import annotations

from dataclasses import dataclass

from aiayn.errors import ConfigError
from aiayn.typed_config import check_types


@dataclass(frozen=True)
class ServeConfig:
    """How `aiayn serve` batches requests and what one request may ask for.

    Each limit protects the server from one kind of request: a long text or many sentences
    (decoding time and memory grow with both), a wide beam or many hypotheses (time and memory
    grow with the beam), a huge body (memory before any check can run).
    """

    max_batch_tokens: int = 4096  # source tokens x beams in one model call (a bigger request
    #   goes alone)
    max_batch_sentences: int = 64  # sentences in one model call
    max_wait_ms: float = 10.0  # how long a batch's first request waits for others to join it
    max_queue: int = 256  # requests waiting for a batch; one more is refused with 503
    timeout_s: float = 30.0  # a request not answered by then gets 504 (its decoding, if begun,
    #   still finishes: a model call cannot be interrupted)
    max_chars: int = 2000  # characters of one request's text, all its sentences together
    max_sentences: int = 32  # sentences in one request
    max_beam: int = 16  # largest beam a request may ask for
    max_n_best: int = 16  # most hypotheses a request may ask for per sentence
    max_body_bytes: int = 1 << 20  # bytes of one request body, read before any other check
    max_attention_tokens: int = 200  # source subwords of an /v1/attention sentence (its answer
    #   grows with their square: every layer and head, source x source and target x source)
    retry_after_s: int = 1  # the Retry-After header of a 503 (queue full)

    def __post_init__(self) -> None:
        check_types(self, "serve")
        for name in (
            "max_batch_tokens",
            "max_batch_sentences",
            "max_queue",
            "max_chars",
            "max_sentences",
            "max_beam",
            "max_n_best",
            "max_body_bytes",
            "max_attention_tokens",
            "retry_after_s",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"serve.max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.timeout_s <= 0:
            raise ConfigError(f"serve.timeout_s must be > 0, got {self.timeout_s}")
