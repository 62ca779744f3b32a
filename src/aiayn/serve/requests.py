"""What a client may send: the JSON bodies of /v1/translate and /v1/attention, checked.

Every check raises `RequestError` with the HTTP status and a one-line message naming the key,
so a bad request gets a 4xx answer that says what to fix and the server goes on serving.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from aiayn.decoding.config import DecodeConfig
from aiayn.errors import AiaynError
from aiayn.serve.config import ServeConfig


class RequestError(AiaynError):
    """A request the server refuses; `status` is the HTTP status to answer with.

    Args:
        status: 400 (not JSON / not UTF-8), 413 (too large), 422 (a bad value).
        message: one line naming the key and what is wrong.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DecodeSettings:
    """The search a request asks for; only requests with equal settings share a batch."""

    beam: int  # beams per sentence; 1 = greedy
    alpha: float  # length penalty
    n_best: int  # hypotheses returned per sentence


@dataclass(frozen=True)
class TranslateRequest:
    """A checked /v1/translate body."""

    texts: list[str]  # the sentences, at least one, none empty
    settings: DecodeSettings


TRANSLATE_KEYS = ("text", "beam", "alpha", "n_best")


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body.

    Raises:
        RequestError: 400 for a body that is not UTF-8 or not JSON, 422 for JSON that is not an
            object.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(
            400, f"the body is not valid UTF-8 ({error.reason} at byte {error.start})"
        ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(
            400, f"the body is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(value, dict):
        raise RequestError(422, f"the body must be a JSON object, got {json_type(value)}")
    return value


def parse_translate(body: bytes, limits: ServeConfig, defaults: DecodeConfig) -> TranslateRequest:
    """Check a /v1/translate body: `{"text": str | [str], "beam"?, "alpha"?, "n_best"?}`.

    Args:
        body: the raw request body.
        limits: the server's limits.
        defaults: the run's decoding settings, for the keys the request leaves out.

    Raises:
        RequestError: naming the key and the limit or type it breaks.
    """
    value = parse_body(body)
    check_keys(value, TRANSLATE_KEYS)
    texts = parse_texts(value.get("text"), limits)
    beam = optional_int(value, "beam", defaults.beam_size, 1, limits.max_beam)
    n_best = optional_int(value, "n_best", 1, 1, min(beam, limits.max_n_best))
    alpha = value.get("alpha", defaults.alpha)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise RequestError(422, f"alpha must be a number, got {json_type(alpha)}")
    if not math.isfinite(alpha) or alpha < 0:
        raise RequestError(422, f"alpha must be a finite number >= 0, got {alpha}")
    return TranslateRequest(texts, DecodeSettings(beam, float(alpha), n_best))


def parse_attention(body: bytes, limits: ServeConfig) -> tuple[str, str | None]:
    """Check a /v1/attention body, `{"text": str, "translation": str?}`; the sentence and the
    translation to draw (None: the server translates it).

    Raises:
        RequestError: naming the key and the limit or type it breaks.
    """
    value = parse_body(body)
    check_keys(value, ("text", "translation"))
    text = value.get("text")
    if not isinstance(text, str):
        raise RequestError(422, f"text must be a string, got {json_type(text)}")
    translation = value.get("translation")
    if translation is not None:
        if not isinstance(translation, str):
            raise RequestError(422, f"translation must be a string, got {json_type(translation)}")
        if len(translation) > limits.max_chars:
            raise RequestError(
                413,
                f"translation has {len(translation)} characters; the limit is {limits.max_chars}",
            )
    return parse_texts(text, limits)[0], translation


def parse_texts(text: Any, limits: ServeConfig) -> list[str]:
    """The sentences of a `text` value: a string or a list of strings, none empty."""
    if isinstance(text, str):
        texts = [text]
    elif isinstance(text, list) and all(isinstance(t, str) for t in text):
        texts = text
    else:
        raise RequestError(
            422, f"text must be a string or a list of strings, got {json_type(text)}"
        )
    if not texts:
        raise RequestError(422, "text is an empty list: give at least one sentence")
    if len(texts) > limits.max_sentences:
        raise RequestError(
            413, f"text has {len(texts)} sentences; the limit is {limits.max_sentences}"
        )
    for i, t in enumerate(texts):
        if not t.strip():
            where = "text" if isinstance(text, str) else f"text[{i}]"
            raise RequestError(422, f"{where} is empty")
    chars = sum(len(t) for t in texts)
    if chars > limits.max_chars:
        raise RequestError(413, f"text has {chars} characters; the limit is {limits.max_chars}")
    return texts


def optional_int(value: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    """`value[key]` as an int within [low, high], or `default` when the key is absent."""
    if key not in value:
        return default
    number = value[key]
    if isinstance(number, bool) or not isinstance(number, int):
        raise RequestError(422, f"{key} must be an integer, got {json_type(number)}")
    if not low <= number <= high:
        raise RequestError(422, f"{key} must be between {low} and {high}, got {number}")
    return number


def check_keys(value: dict[str, Any], known: tuple[str, ...]) -> None:
    """Refuse keys the endpoint does not know (a misspelt `n_best` must not pass unnoticed)."""
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise RequestError(422, f"unknown key(s) {unknown}; known: {list(known)}")
    if "text" not in value:
        raise RequestError(422, "text is missing")


def json_type(value: Any) -> str:
    """How JSON calls the type of a parsed value, for messages."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)
