"""Inference candidates: cached greedy and beam search (ours) against prefix recomputation.

Every candidate translates the same batch (64 random sources of 24 tokens) to exactly
`STEPS` tokens per sentence: EOS is never chosen (its log-prob is -inf), so no sentence stops
early and every candidate does the same number of steps.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from aiayn.model import ModelConfig, Transformer
from benchmarks import baselines

BOS_ID, EOS_ID = 2, 3  # aiayn.data's special ids
STEPS = 30
BATCH = 64
SRC_LEN = 24
BEAM = 4
CPU = torch.device("cpu")


def source_batch(vocab_size: int, batch: int = BATCH, src_len: int = SRC_LEN) -> Tensor:
    """Random source ids without padding (ids >= 4 skip the special ones)."""
    g = torch.Generator().manual_seed(1)
    return torch.randint(4, vocab_size, (batch, src_len), generator=g)


@torch.no_grad()
def greedy_loop(model: Transformer, src: Tensor, steps: int = STEPS) -> Tensor:
    """Our tight cached greedy loop: encode once, one (B, 1) decode per step, argmax.

    Returns:
        The generated ids (B, steps).
    """
    memory = model.encode(src)
    cache = model.init_cache(memory, capacity=steps)
    tokens = torch.full((src.shape[0], 1), BOS_ID, dtype=torch.long, device=src.device)
    out = []
    for _ in range(steps):
        logits, cache = model.decode(tokens, memory, cache)  # (B, 1, V)
        logits = logits[:, -1]
        logits[:, EOS_ID] = float("-inf")
        tokens = logits.argmax(dim=-1, keepdim=True)
        out.append(tokens)
    return torch.cat(out, dim=1)


@torch.no_grad()
def recompute_loop(model: Transformer, src: Tensor, steps: int = STEPS) -> Tensor:
    """Our model decoded without a cache: the whole prefix again at every step."""
    memory = model.encode(src)
    ys = torch.full((src.shape[0], 1), BOS_ID, dtype=torch.long, device=src.device)
    for _ in range(steps):
        states, _ = model.decode_states(ys, memory)
        logits = model.generator(states[:, -1])
        logits[:, EOS_ID] = float("-inf")
        ys = torch.cat([ys, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return ys[:, 1:]


class NoEosStepper:
    """A step model whose EOS log-prob is -inf for the first `steps` steps.

    Library searches then write exactly `steps` tokens per sentence (max_len = steps + 1); beam
    search's forced EOS at max_len still sees the model's own EOS log-prob.
    """

    def __init__(self, inner: object, steps: int) -> None:
        self.inner = inner
        self.steps = steps
        self.calls = 0

    def step(self, tokens: Tensor, cache: object) -> tuple[Tensor, object]:
        log_probs, cache = self.inner.step(tokens, cache)  # type: ignore[attr-defined]
        self.calls += 1
        if self.calls <= self.steps:
            log_probs[:, EOS_ID] = float("-inf")
        return log_probs, cache


def library_search() -> tuple[Callable, Callable, Callable] | None:
    """(start, greedy_search, beam_search) from aiayn.decoding, or None if it is not usable."""
    try:
        from aiayn.decoding import beam_search, greedy_search, start
    except ImportError:
        return None
    return start, greedy_search, beam_search


@dataclass(frozen=True)
class InferenceCandidates:
    """Callables for `timing.interleaved`, and what each produces."""

    candidates: dict[str, Callable[[], object]]
    tokens: dict[str, int]  # output tokens per call
    notes: list[str]


def inference_candidates(
    config: ModelConfig,
    steps: int = STEPS,
    beam: int = BEAM,
    include_loop: bool = True,
    device: torch.device = CPU,
) -> InferenceCandidates:
    """Cached greedy (library search and our loop), beam search, and the recomputing baseline.

    `include_loop` adds our own tight greedy loop and our model recomputing the prefix (no
    cache), beside the library's greedy search.
    """
    torch.manual_seed(0)
    ours = Transformer(config).to(device).eval()
    theirs = baselines.TorchTransformer(config).to(device).eval()
    src = source_batch(config.src_vocab_size).to(device)
    tokens = src.shape[0] * steps
    notes = []
    cands: dict[str, Callable[[], object]] = {}
    search = library_search()
    if search is None:
        notes.append("aiayn.decoding not importable: cached greedy uses the benchmark's loop")
        cands["greedy_cached"] = lambda: greedy_loop(ours, src, steps)
    else:
        start, greedy_search, beam_search = search

        def greedy() -> object:
            stepper, cache = start(ours, src, capacity=steps + 1)
            no_eos = NoEosStepper(stepper, steps)
            return greedy_search(no_eos, cache, bos_id=BOS_ID, eos_id=EOS_ID, max_len=steps + 1)

        def beam_4() -> object:
            stepper, cache = start(ours, src, capacity=steps + 1)
            no_eos = NoEosStepper(stepper, steps)
            return beam_search(
                no_eos, cache, bos_id=BOS_ID, eos_id=EOS_ID, max_len=steps + 1, beam_size=beam
            )

        cands["greedy_cached"] = greedy
        cands[f"beam{beam}_cached"] = beam_4
        if include_loop:
            cands["greedy_loop"] = lambda: greedy_loop(ours, src, steps)
    if include_loop:
        cands["greedy_recompute_ours"] = lambda: recompute_loop(ours, src, steps)

    def recompute() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return baselines.greedy_recompute(
                theirs, src, bos_id=BOS_ID, eos_id=EOS_ID, steps=steps
            )

    cands["greedy_recompute_nn"] = recompute
    return InferenceCandidates(cands, dict.fromkeys(cands, tokens), notes)
