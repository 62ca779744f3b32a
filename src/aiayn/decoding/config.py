"""Decoding settings: a frozen dataclass whose fields are the YAML keys of `decode:`."""

from __future__ import annotations

from dataclasses import dataclass

from aiayn.decoding.beam import STOPPING_RULES
from aiayn.errors import ConfigError
from aiayn.typed_config import check_types


@dataclass(frozen=True)
class DecodeConfig:
    """How to translate: search, length penalty, output length and batch size."""

    beam_size: int = 4  # beams per sentence; 1 = greedy search
    alpha: float = 0.6  # GNMT length penalty ((5 + |Y|) / 6) ^ alpha; 0 = none
    max_len_offset: int = 50  # maximum output length = source length + this (EOS counted)
    max_tokens: int = 8000  # padded source tokens x beams per translation batch (length-sorted)
    # When beam search stops a sentence: "exact" (no live beam can still win) or "k-finished"
    # (beam_size hypotheses have finished: fairseq's and CTranslate2's rule, fewer steps).
    stopping: str = "exact"
    # Batches decoded at once, each on its own thread with torch's threads shared out among them
    # (CTranslate2's inter_threads); max_tokens is then the budget of all batches in flight.
    workers: int = 1

    def __post_init__(self) -> None:
        check_types(self, "decode")
        if self.beam_size < 1:
            raise ConfigError(f"decode.beam_size must be at least 1, got {self.beam_size}")
        if self.alpha < 0:
            raise ConfigError(f"decode.alpha must be >= 0, got {self.alpha}")
        if self.stopping not in STOPPING_RULES:
            raise ConfigError(
                f"decode.stopping must be one of {', '.join(STOPPING_RULES)}, got {self.stopping!r}"
            )
        for name in ("max_len_offset", "max_tokens", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"decode.{name} must be at least 1, got {getattr(self, name)}")
