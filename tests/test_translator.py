"""`Translator`: input order survives token-bounded batching; over-long input is truncated."""

from __future__ import annotations

import logging
import random
import threading
from pathlib import Path

import pytest
import torch

from aiayn import ModelConfig, Transformer
from aiayn.data import SymbolTokenizer, Vocabularies
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.translator import Translator
from aiayn.errors import ConfigError


def reversal(line: str) -> str:
    return " ".join(reversed(line.split()))


def record_batches(translator: Translator) -> list[torch.Tensor]:
    """Make the translator's model record the source ids of every batch it encodes."""
    batches: list[torch.Tensor] = []
    encode = translator.model.encode

    def recording(src: torch.Tensor, *args: object, **kwargs: object):
        batches.append(src.cpu())
        return encode(src, *args, **kwargs)

    translator.model.encode = recording  # type: ignore[method-assign]
    return batches


@pytest.mark.slow  # reverse_run trains a model
@pytest.mark.parametrize(("beam_size", "max_tokens"), [(1, 12), (4, 40)])
def test_order_survives_several_token_bounded_batches(
    reverse_run: Path, beam_size: int, max_tokens: int
) -> None:
    """Sentences of 4-6 symbols in mixed order, a few empty: every output reverses its own input.

    The translator sorts by length and starts a new batch when longest * sentences * beams would
    pass `max_tokens`, so these limits give batches of 1-3 sentences of different lengths.
    """
    rng = random.Random(3)
    lines = [
        " ".join(rng.choice("0123456789") for _ in range(rng.randint(4, 6))) for _ in range(13)
    ]
    lines[2] = lines[9] = ""
    loaded = Translator.from_run(reverse_run)
    translator = Translator(
        loaded.model, loaded.vocabs, DecodeConfig(beam_size=beam_size, max_tokens=max_tokens)
    )
    recorded = record_batches(translator)
    assert translator.translate(lines) == [reversal(line) for line in lines]
    batches = [tuple(src.shape) for src in recorded]
    assert len(batches) >= 5 and len({length for _, length in batches}) == 3, batches
    assert sum(n for n, _ in batches) == 11  # each non-empty sentence decoded once
    assert all(n * length * beam_size <= max_tokens for n, length in batches if n > 1)


# ------------------------------------------------------------------------ over-long input


def random_translator(positional: str, max_positions: int) -> Translator:
    """An untrained tiny model over the symbols 0-9 (its output is arbitrary but deterministic)."""
    symbols = SymbolTokenizer([str(d) for d in range(10)])
    vocabs = Vocabularies(src=symbols, tgt=symbols, joint=True)
    config = ModelConfig.tiny(
        symbols.vocab_size,
        symbols.vocab_size,
        positional=positional,
        max_positions=max_positions,
    )
    return Translator(Transformer(config), vocabs, DecodeConfig(beam_size=1, max_len_offset=5))


@pytest.mark.parametrize(
    ("positional", "max_positions", "limit"),
    [("learned", 8, 8), ("sinusoidal", 4, 16)],  # sinusoids extend, up to 4 x their table
)
@pytest.mark.parametrize("beam_size", [1, 3])
def test_over_long_input_is_truncated_with_a_warning(
    positional: str,
    max_positions: int,
    limit: int,
    beam_size: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    translator = random_translator(positional, max_positions)
    long = " ".join(str(i % 10) for i in range(limit + 7))
    head = " ".join(long.split()[:limit])
    short = "1 2 3"
    batches = record_batches(translator)
    with caplog.at_level(logging.WARNING, logger="aiayn.decoding.translator"):
        outputs = translator.translate_full([short, long, ""], beam_size=beam_size)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"source of {limit + 7} tokens truncated to the model's {limit}"]
    assert len(outputs) == 3 and outputs[2].text == ""
    # The model saw the first `limit` tokens of the long line (sorted after the short one).
    assert len(batches) == 1
    assert batches[0][1].tolist() == translator.vocabs.src.encode(head)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aiayn.decoding.translator"):
        alone = translator.translate_full([short, head], beam_size=beam_size)
    assert not caplog.records  # input within the limit is not truncated
    assert [t.hypotheses[0].tokens for t in outputs[:2]] == [t.hypotheses[0].tokens for t in alone]
    vocab_size = translator.model.config.tgt_vocab_size
    for translation in outputs[:2]:
        tokens = translation.hypotheses[0].tokens
        assert all(0 <= i < vocab_size for i in tokens)
        if positional == "learned":  # the output is bounded by the position table too
            assert len(tokens) <= max_positions


# ------------------------------------------------------------------------ workers


def mixed_lines(n: int, seed: int) -> list[str]:
    """Lines of 1-9 symbols in mixed order, every fifth one empty."""
    rng = random.Random(seed)
    return [
        "" if i % 5 == 4 else " ".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        for i in range(n)
    ]


@pytest.mark.parametrize("beam_size", [1, 3])
def test_workers_decode_whole_batches_side_by_side(beam_size: int) -> None:
    """With 2 workers, batches of half the token budget run on 2 threads, one torch thread each:
    every hypothesis (tokens and score) equals the serial translation of the same batches at
    one thread, and torch's thread count comes back afterwards."""
    translator = random_translator("sinusoidal", 64)
    lines = mixed_lines(30, seed=5)
    settings = {"beam_size": beam_size, "max_len_offset": 5}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        translator.decode = DecodeConfig(**settings, max_tokens=12 * beam_size)
        serial = translator.translate_full(lines)

        torch.set_num_threads(2)
        translator.decode = DecodeConfig(**settings, max_tokens=24 * beam_size)
        seen: list[tuple[str, int]] = []
        encode = translator.model.encode

        def recording(*args, **kwargs):
            seen.append((threading.current_thread().name, torch.get_num_threads()))
            return encode(*args, **kwargs)

        translator.model.encode = recording  # type: ignore[method-assign]
        side_by_side = translator.translate_full(lines, workers=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert [t.text for t in side_by_side] == [t.text for t in serial]
    assert [t.hypotheses for t in side_by_side] == [t.hypotheses for t in serial]
    assert len({t.text for t in serial}) > 10  # outputs that vary, so equality means something
    assert len(seen) >= 4  # several batches ...
    assert all(name != threading.main_thread().name for name, _ in seen)  # ... off the caller
    assert {threads for _, threads in seen} == {1}  # each on one torch thread


def test_an_error_in_a_worker_reaches_the_caller_and_threads_come_back() -> None:
    translator = random_translator("sinusoidal", 64)
    translator.decode = DecodeConfig(beam_size=1, max_len_offset=5, max_tokens=8)
    calls = 0
    encode = translator.model.encode

    def failing(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("batch 3 failed")
        return encode(*args, **kwargs)

    translator.model.encode = failing  # type: ignore[method-assign]
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="batch 3 failed"):
        translator.translate(mixed_lines(20, seed=6), workers=2)
    assert torch.get_num_threads() == before


def test_workers_below_one_are_refused() -> None:
    translator = random_translator("sinusoidal", 64)
    with pytest.raises(ConfigError, match=r"decode\.workers must be at least 1, got 0"):
        translator.translate(["1 2 3"], workers=0)
