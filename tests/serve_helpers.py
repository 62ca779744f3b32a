"""Builders shared by the server tests: an in-memory translator, its CTranslate2 export, and an
app served in-process."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import torch

from aiayn import ModelConfig, Transformer
from aiayn.data import SymbolTokenizer, Vocabularies
from aiayn.data.tokenizer import BOS_ID, PAD_ID, UNK_ID
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.translator import Translator
from aiayn.export import ExportSource, write_export
from aiayn.export.ct2 import write_ct2


def random_translator(beam_size: int = 1) -> Translator:
    """An untrained tiny model over the digits: arbitrary but deterministic output, instantly.

    Its generator never picks PAD, UNK or BOS (as a trained model would not), so outputs are
    digits, ended by EOS or by the length cap.
    """
    torch.manual_seed(0)
    symbols = SymbolTokenizer([str(d) for d in range(10)])
    vocabs = Vocabularies(src=symbols, tgt=symbols, joint=True)
    model = Transformer(ModelConfig.tiny(symbols.vocab_size, symbols.vocab_size))
    with torch.no_grad():
        model.generator.bias[[PAD_ID, UNK_ID, BOS_ID]] = -1e4
    return Translator(model, vocabs, DecodeConfig(beam_size=beam_size, max_len_offset=6))


def export_ct2(translator: Translator, folder: Path) -> Path:
    """`folder`: the translator's model and vocabularies as `aiayn export --format ct2` writes
    them (float32), without a run on disk (export.json names the folder as run)."""
    source = ExportSource(translator.model, translator.vocabs, translator.decode, folder, folder)
    return write_export(folder, source, "ct2", lambda out: write_ct2(source, out))


class Recording:
    """Wraps a translator's `translate_full`: records each call and can hold calls at a gate.

    Attributes:
        calls: (texts, beam_size, alpha, n_best) of every call, in order.
        gate: calls wait until it is set (set at first: calls pass).
        entered: set when a call has started (so a test knows the worker is busy).
    """

    def __init__(self, translator: Translator) -> None:
        self.calls: list[tuple[list[str], int | None, float | None, int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        original = translator.translate_full

        def translate_full(texts: Any, *, beam_size=None, alpha=None, n_best=1):
            self.calls.append((list(texts), beam_size, alpha, n_best))
            self.entered.set()
            assert self.gate.wait(timeout=60), "a test left the gate closed"
            return original(texts, beam_size=beam_size, alpha=alpha, n_best=n_best)

        translator.translate_full = translate_full  # type: ignore[method-assign]


@asynccontextmanager
async def in_process(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `app`, with the app's startup run before and its shutdown after."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
