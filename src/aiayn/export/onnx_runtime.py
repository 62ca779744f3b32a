"""Translate text with an ONNX export through ONNX Runtime: `OnnxTranslator`.

    translator = OnnxTranslator("exports/en-de-onnx")
    translator.translate(["Ein Hund rennt."], beam_size=1)

The search is our own: the two graphs are wrapped as a `StepModel` and a `Cache` (the protocol
of `aiayn.decoding`), and `greedy_search` / `beam_search` drive them exactly as they drive our
model. Sentences are sorted by length and batched by source tokens as `Translator` does, with
the export's decoding settings (export.json, copied from the run) as defaults; the only
difference is the length limit: a graph holds the model's table of `max_positions` positions, so
sources are cut there and outputs stop there (our Translator computes sinusoids beyond it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from aiayn.data import BOS_ID, EOS_ID, PAD_ID, Vocabularies
from aiayn.decoding import Hypothesis, beam_search, greedy_search
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.translator import Translation, token_batches
from aiayn.export.common import EXPORT_INFO, ExportError, require
from aiayn.export.onnx_graphs import ENCODER_FILE, STEP_FILE, encoder_names, step_names
from aiayn.typed_config import from_mapping

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnnxCache:
    """What the step graph needs besides the new tokens, as NumPy arrays, one row per hypothesis.

    Attributes:
        src_mask: True = real source token, (B, S).
        cross: cross_k_i, cross_v_i of every decoder layer, (B, H, S, Dh) each.
        past: past_k_i, past_v_i of every decoder layer, (B, H, P, Dh) each.
    """

    src_mask: np.ndarray
    cross: tuple[np.ndarray, ...]
    past: tuple[np.ndarray, ...]

    @property
    def batch_size(self) -> int:
        """Rows in the cache."""
        return self.src_mask.shape[0]

    def reorder(self, indices: Tensor) -> OnnxCache:
        """Rows `indices` of every array (select, repeat or drop rows)."""
        rows = indices.cpu().numpy()

        def take(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
            return tuple(np.take(a, rows, axis=0) for a in arrays)

        return OnnxCache(np.take(self.src_mask, rows, axis=0), take(self.cross), take(self.past))

    def expand_beams(self, k: int) -> OnnxCache:
        """k copies of every row, consecutive; the step graph takes cross-attention keys/values
        per row, so they are copied too."""
        return self.reorder(torch.arange(self.batch_size).repeat_interleave(k))


class OnnxStepper:
    """The step graph as a `StepModel`: one token per row in, log-probabilities out.

    Args:
        session: an `onnxruntime.InferenceSession` of decoder_step.onnx.
        n_layers: decoder layers of the exported model.
    """

    def __init__(self, session: Any, n_layers: int) -> None:
        self.session = session
        self.inputs, self.outputs = step_names(n_layers)

    def step(
        self, tokens: Tensor, cache: OnnxCache, *, normalize: bool = True
    ) -> tuple[Tensor, OnnxCache]:
        """Decode one position of every row (the graph returns log-probabilities, which
        serve `normalize=False` as well).

        Shape:
            tokens: (R, 1) -> log_probs: (R, V)
        """
        feed = (
            np.ascontiguousarray(tokens.cpu().numpy()),
            cache.src_mask,
            *cache.past,
            *cache.cross,
        )
        log_probs, *present = self.session.run(
            self.outputs, dict(zip(self.inputs, feed, strict=True))
        )
        return torch.from_numpy(log_probs), replace(cache, past=tuple(present))


class OnnxTranslator:
    """Translates text with an ONNX export folder (`aiayn export --format onnx`).

    Args:
        folder: the export folder (encoder.onnx, decoder_step.onnx, tokenizer/, export.json).
        threads: ONNX Runtime's intra-op threads; None = its default (one per physical core).

    Raises:
        ExportError: onnxruntime is not installed, or the folder is not an ONNX export.
        DataError: its tokenizer is missing or damaged.
    """

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        ort = require("onnxruntime", "onnx")
        folder = Path(folder)
        info_path = folder / EXPORT_INFO
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ExportError(f"{info_path}: cannot read ({error.strerror})") from None
        except ValueError as error:
            raise ExportError(f"{info_path}: not JSON ({error})") from None
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        if found != "onnx":
            raise ExportError(f"{info_path}: not an ONNX export (format {found!r})")
        try:
            self.n_layers = int(info["model_config"]["n_decoder_layers"])
            self.max_positions = int(info["model_config"]["max_positions"])
        except (KeyError, TypeError, ValueError) as error:
            raise ExportError(f"{info_path}: model_config lacks {error}") from None
        for name in (ENCODER_FILE, STEP_FILE):
            if not (folder / name).is_file():
                raise ExportError(f"{folder / name}: missing (export the run again)")
        self.info = info
        self.vocabs = Vocabularies.load(folder)
        self.decode = from_mapping(DecodeConfig, info.get("decode"), "decode")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(
            str(folder / ENCODER_FILE), options, providers=providers
        )
        step = ort.InferenceSession(str(folder / STEP_FILE), options, providers=providers)
        self.stepper = OnnxStepper(step, self.n_layers)

    def start(self, src: np.ndarray, src_mask: np.ndarray) -> OnnxCache:
        """Run the encoder graph on a padded batch: the cache for the first step.

        Shape:
            src, src_mask: (B, S) int64 and bool
        """
        inputs, outputs = encoder_names(self.n_layers)
        _, *cross = self.encoder.run(outputs, {inputs[0]: src, inputs[1]: src_mask})
        b, h, _, dh = cross[0].shape
        empty = np.zeros((b, h, 0, dh), dtype=cross[0].dtype)
        return OnnxCache(src_mask, tuple(cross), tuple(empty for _ in cross))

    def _encode(self, text: str) -> list[int]:
        ids = self.vocabs.src.encode(text)
        if len(ids) > self.max_positions:
            log.warning(
                "source of %d tokens truncated to the model's %d", len(ids), self.max_positions
            )
            ids = ids[: self.max_positions]
        return ids

    def translate_full(
        self,
        texts: Sequence[str],
        *,
        beam_size: int | None = None,
        alpha: float | None = None,
        n_best: int = 1,
        stopping: str | None = None,
    ) -> list[Translation]:
        """Translate and keep the n best hypotheses, as `Translator.translate_full` does.

        Args:
            texts: source sentences; an empty one gives an empty translation.
            beam_size: beams; 1 = greedy; default: the exported run's setting.
            alpha: length penalty; default: the exported run's setting.
            n_best: hypotheses to keep per sentence (<= beam_size).
            stopping: beam search's stopping rule ("exact" or "k-finished"); default: the
                exported run's setting.

        Returns:
            One `Translation` per input, in input order.
        """
        settings = replace(
            self.decode,
            beam_size=self.decode.beam_size if beam_size is None else beam_size,
            alpha=self.decode.alpha if alpha is None else alpha,
            stopping=self.decode.stopping if stopping is None else stopping,
        )
        encoded = [self._encode(t) if t.strip() else [] for t in texts]
        results = [Translation("", [Hypothesis([], 0.0, 0.0)]) for _ in texts]
        for batch in token_batches(encoded, settings.beam_size, settings.max_tokens):
            self._run_batch(batch, encoded, settings, n_best, results)
        return results

    def translate(
        self,
        texts: Sequence[str],
        *,
        beam_size: int | None = None,
        alpha: float | None = None,
        stopping: str | None = None,
    ) -> list[str]:
        """Translate sentences; see `translate_full` for the arguments."""
        found = self.translate_full(texts, beam_size=beam_size, alpha=alpha, stopping=stopping)
        return [t.text for t in found]

    def _run_batch(
        self,
        batch: list[int],
        encoded: list[list[int]],
        settings: DecodeConfig,
        n_best: int,
        results: list[Translation],
    ) -> None:
        """Decode one length-sorted batch and store its translations in `results`."""
        lengths = np.array([len(encoded[i]) for i in batch])
        src = np.full((len(batch), int(lengths.max())), PAD_ID, dtype=np.int64)
        for row, i in enumerate(batch):
            src[row, : len(encoded[i])] = encoded[i]
        cache = self.start(src, src != PAD_ID)
        max_len = torch.from_numpy(lengths + settings.max_len_offset).clamp(max=self.max_positions)
        if settings.beam_size == 1:
            outs = greedy_search(self.stepper, cache, bos_id=BOS_ID, eos_id=EOS_ID, max_len=max_len)
            hyps = [[Hypothesis(ids, 0.0, 0.0)] for ids in outs]
        else:
            hyps = beam_search(
                self.stepper,
                cache,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                max_len=max_len,
                beam_size=settings.beam_size,
                alpha=settings.alpha,
                n_best=n_best,
                stopping=settings.stopping,
            )
        tgt = self.vocabs.tgt
        for i, best in zip(batch, hyps, strict=True):
            results[i] = Translation(tgt.decode(best[0].tokens), best)
