"""`Translator`: text in, text out, for a trained run. The CLI's `translate` is a thin layer on it.

    translator = Translator.from_run("runs/de-en")
    translator.translate(["Ein Hund rennt.", "Zwei Kinder spielen."])   # beam from the run

Sentences are sorted by length and batched by source tokens, decoded with the run's tuned
settings (beam size, length penalty) unless told otherwise, and returned in input order.
Lines longer than the model can take are truncated with a warning (a documented choice: a
translation of most of a sentence is more useful than none in a batch job).

With `workers` > 1 (`decode.workers`, `--workers`), that many batches are decoded at once, each
on a thread of its own, and torch's intra-op threads are shared out among them for the call
(2 threads and 2 workers: each batch runs single-threaded beside the other). A cached decoding
step is many small operators, which one batch spread over several threads leaves partly idle;
whole batches side by side keep every core busy. The token budget `max_tokens` is then split
between the workers, so the memory in flight stays that of one batch. Torch's thread count is
a process-wide setting: it is lowered for the call and restored after it, so run no other
torch work beside a call with workers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from aiayn.data import Vocabularies
from aiayn.decoding.beam import beam_search
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.greedy import greedy_search
from aiayn.decoding.hypothesis import Hypothesis
from aiayn.decoding.quantization import quantize
from aiayn.decoding.stepper import start
from aiayn.errors import ConfigError
from aiayn.model import AttentionWeights, ModelConfig, ModelConfigError, Transformer
from aiayn.runs import RunDir, RunError, load_weights
from aiayn.typed_config import from_mapping

log = logging.getLogger(__name__)


def token_batches(
    sources: Sequence[Sequence[int]], beam_size: int, max_tokens: int, *, same_length: bool = False
) -> list[list[int]]:
    """The indices of the non-empty sources, shortest first, in batches of at most `max_tokens`
    padded source tokens x beams (a sentence longer than that goes alone).

    Args:
        sources: token ids per sentence; empty ones are left out.
        beam_size: beams per sentence.
        max_tokens: the budget of a batch (decode.max_tokens).
        same_length: give each batch one source length only (for engines whose per-call
            length limit would otherwise change a beam search's outcome).

    Returns:
        Batches of indices into `sources`.
    """
    order = sorted((i for i, ids in enumerate(sources) if ids), key=lambda i: len(sources[i]))
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        n = len(sources[i])  # the batch's longest: sources come shortest first
        full = n * (len(batch) + 1) * beam_size > max_tokens
        if batch and (full or (same_length and n != len(sources[batch[0]]))):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


@contextmanager
def _threads_per_worker(workers: int) -> Iterator[None]:
    """Torch's intra-op threads shared out among `workers` decoding threads, for the block.

    A thread takes torch's thread count when it first runs an operator, so the worker threads
    must be started inside the block.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before // workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Translation:
    """One translated sentence: its text and the n best hypotheses (ids and scores)."""

    text: str
    hypotheses: list[Hypothesis]


class Translator:
    """Translates text with a trained model and its vocabularies.

    Args:
        model: the trained model (put in eval mode here).
        vocabs: source and target vocabularies of the run.
        decode: default search settings.
    """

    def __init__(self, model: Transformer, vocabs: Vocabularies, decode: DecodeConfig) -> None:
        self.model = model.eval()
        self.vocabs = vocabs
        self.decode = decode
        self.device = next(model.parameters()).device

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        checkpoint: str | Path | None = None,
        device: str | torch.device = "cpu",
        quantization: str = "none",
    ) -> Translator:
        """Load a run's model (its default checkpoint unless given one) and vocabularies.

        Args:
            run_dir: a directory written by `aiayn train`.
            checkpoint: a checkpoint folder; default: the run's (averaged, else best).
            device: where to run.
            quantization: "none", or "int8" for int8 linear layers on the CPU
                (see aiayn.decoding.quantization).

        Raises:
            RunError / CheckpointError: a missing or damaged run or checkpoint; a bad value in
                run.json names the file and the key.
            UsageError: int8 asked for on a GPU.
        """
        run = RunDir(Path(run_dir))
        try:
            config = run.model_config()
            decode = from_mapping(DecodeConfig, run.info().get("decode"), "decode")
        except (ModelConfigError, ConfigError) as error:
            raise RunError(f"{run.info_file}: {error}") from None
        path = Path(checkpoint) if checkpoint is not None else run.default_checkpoint()
        model = Transformer(config).to(device)
        load_weights(path, model, config)
        vocabs = Vocabularies.load(run.path)
        return cls(quantize(model, quantization), vocabs, decode)

    # Why `attention` cannot answer, or None: our model gives every layer's and head's weights
    # (other engines, e.g. Ct2Translator, say why they cannot).
    attention_unavailable: str | None = None

    @property
    def model_config(self) -> ModelConfig:
        """The model's config: its layers, heads and sizes."""
        return self.model.config

    def _encode(self, text: str) -> list[int]:
        """Source ids, ending with EOS for vocabularies whose model was trained so (Marian)."""
        ids = self.vocabs.src.encode(text)
        config = self.model.config
        limit = config.max_positions if config.positional == "learned" else 4 * config.max_positions
        eos = [self.vocabs.src.eos_id] if self.vocabs.source_eos else []
        if len(ids) + len(eos) > limit:
            log.warning("source of %d tokens truncated to the model's %d", len(ids), limit)
            ids = ids[: limit - len(eos)]
        return ids + eos

    @torch.no_grad()
    def translate_full(
        self,
        texts: Sequence[str],
        *,
        beam_size: int | None = None,
        alpha: float | None = None,
        n_best: int = 1,
        stopping: str | None = None,
        workers: int | None = None,
    ) -> list[Translation]:
        """Translate and keep the n best hypotheses with their scores.

        Args:
            texts: source sentences; an empty one gives an empty translation.
            beam_size: beams; 1 = greedy; default: the run's setting.
            alpha: length penalty; default: the run's setting.
            n_best: hypotheses to keep per sentence (<= beam_size).
            stopping: beam search's stopping rule ("exact" or "k-finished", see
                `beam_search`); default: the run's setting.
            workers: batches decoded at once, on threads of their own (module docstring);
                default: the run's setting.

        Returns:
            One `Translation` per input, in input order.

        Raises:
            ConfigError: on an invalid setting (e.g. workers < 1).
        """
        settings = replace(
            self.decode,
            beam_size=self.decode.beam_size if beam_size is None else beam_size,
            alpha=self.decode.alpha if alpha is None else alpha,
            stopping=self.decode.stopping if stopping is None else stopping,
            workers=self.decode.workers if workers is None else workers,
        )
        encoded = [self._encode(t) if t.strip() else [] for t in texts]
        results: list[Translation | None] = [None] * len(texts)
        for i in range(len(texts)):
            if not encoded[i]:
                results[i] = Translation("", [Hypothesis([], 0.0, 0.0)])
        budget = max(1, settings.max_tokens // settings.workers)  # per batch in flight
        batches = token_batches(encoded, settings.beam_size, budget)
        if settings.workers == 1 or len(batches) == 1:
            for batch in batches:
                self._run_batch(batch, encoded, settings, n_best, results)
        else:
            workers = settings.workers
            with _threads_per_worker(workers), ThreadPoolExecutor(workers) as pool:
                # Shortest batches first, each to the next free worker; list() re-raises the
                # first error of any batch here.
                list(
                    pool.map(
                        lambda batch: self._run_batch(batch, encoded, settings, n_best, results),
                        batches,
                    )
                )
        return [r for r in results if r is not None]

    def translate(
        self,
        texts: Sequence[str],
        *,
        beam_size: int | None = None,
        alpha: float | None = None,
        stopping: str | None = None,
        workers: int | None = None,
    ) -> list[str]:
        """Translate sentences; see `translate_full` for the arguments."""
        translations = self.translate_full(
            texts, beam_size=beam_size, alpha=alpha, stopping=stopping, workers=workers
        )
        return [t.text for t in translations]

    @torch.no_grad()
    def attention(
        self, text: str, translation: str | None = None
    ) -> tuple[AttentionWeights, list[str], list[str]]:
        """Translate one sentence (or take the given translation) and return every attention
        weight of that pair.

        Args:
            text: the source sentence.
            translation: the target sentence to draw; default: the translation with the run's
                search settings. Cut to the model's positions if longer.

        Returns:
            The weights (batch of one), the source subwords and the decoder-input subwords
            (BOS followed by the translation's subwords).
        """
        src_ids = self._encode(text)
        if not src_ids:
            raise ValueError("cannot draw attention for an empty sentence")
        tgt = self.vocabs.tgt
        if translation is None:
            best = self.translate_full([text])[0].hypotheses[0].tokens
        else:
            best = tgt.encode(translation)
            if self.model.config.positional == "learned":
                best = best[: self.model.config.max_positions - 1]  # BOS takes a position
        src = torch.tensor([src_ids], device=self.device)
        tgt_in = torch.tensor([[tgt.bos_id, *best]], device=self.device)
        # Every decoder input is real, the start token too (a Marian model starts from its pad).
        weights = self.model.attention_weights(
            src, tgt_in, tgt_mask=torch.ones_like(tgt_in, dtype=torch.bool)
        )
        src_pieces = [self.vocabs.src.id_to_piece(i) for i in src_ids]
        tgt_pieces = [tgt.id_to_piece(i) for i in tgt_in[0].tolist()]
        return weights, src_pieces, tgt_pieces

    @torch.no_grad()  # grad mode is per thread: a worker thread starts with it on
    def _run_batch(
        self,
        batch: list[int],
        encoded: list[list[int]],
        settings: DecodeConfig,
        n_best: int,
        results: list[Translation | None],
    ) -> None:
        """Decode one length-sorted batch and store its translations in `results`."""
        pad = self.model.config.pad_id
        lengths = torch.tensor([len(encoded[i]) for i in batch])
        src = torch.full((len(batch), int(lengths.max())), pad, dtype=torch.long)
        for row, i in enumerate(batch):
            src[row, : len(encoded[i])] = torch.tensor(encoded[i])
        src = src.to(self.device)
        src_mask = src != pad
        max_len = lengths + settings.max_len_offset
        if self.model.config.positional == "learned":
            max_len = max_len.clamp(max=self.model.config.max_positions)
        tgt = self.vocabs.tgt
        stepper, cache = start(
            self.model,
            src,
            src_mask,
            capacity=int(max_len.max()),
            suppressed_ids=tgt.suppressed_ids,
        )
        if settings.beam_size == 1:
            outs = greedy_search(
                stepper, cache, bos_id=tgt.bos_id, eos_id=tgt.eos_id, max_len=max_len
            )
            hyps = [[Hypothesis(ids, 0.0, 0.0)] for ids in outs]
        else:
            hyps = beam_search(
                stepper,
                cache,
                bos_id=tgt.bos_id,
                eos_id=tgt.eos_id,
                max_len=max_len,
                beam_size=settings.beam_size,
                alpha=settings.alpha,
                n_best=n_best,
                stopping=settings.stopping,
            )
        for i, best in zip(batch, hyps, strict=True):
            results[i] = Translation(tgt.decode(best[0].tokens), best)
