"""Decoding levers of issue #15: the library's decode path with one thing changed at a time.

    python -m benchmarks.decoding_levers [--threads 2] [--rounds 7] [--quick] [--json FILE]

Cells of the decoding grid (`benchmarks/decoding.py`: `small` model, random weights, random
sources of 24 tokens, exactly L tokens a sentence), each timed with these candidates,
interleaved (one call of each per round), medians over rounds:

- `ours`: the library as it is (`start` + `greedy_search` / `beam_search`);
- `log_softmax`: greedy asks the step for log-probabilities (normalised over the vocabulary)
  instead of the raw logits it ranks;
- `no inference mode`: the search under `torch.no_grad()` instead of `torch.inference_mode()`;
- `explicit <= 32 keys`: the "auto" kernel runs the explicit attention for one query over up
  to 32 keys (the library's threshold is `fast.AUTO_EXPLICIT_MAX_KEYS`);
- `ct2` (when ctranslate2 is installed) and, for greedy, `recompute` as in the grid.

Prints, per cell and candidate, ms per call and the paired speed against CTranslate2 and
recomputation (median of the per-round ratios).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from aiayn.decoding import beam_search, greedy_search
from aiayn.model import ModelConfig, Transformer, fast
from benchmarks import baselines, data, decoding
from benchmarks.decoding import Cell, ct2, export_ct2, recompute
from benchmarks.inference import source_batch

CELLS = (Cell(1, 60, "greedy"), Cell(64, 30, "greedy"), Cell(64, 30, "beam4"), Cell(1, 30, "beam4"))
QUICK_CELLS = (Cell(1, 10, "greedy"), Cell(4, 10, "beam4"))


class Normalising:
    """A step model that always returns log-probabilities (greedy's behaviour before it
    ranked raw logits)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def step(self, tokens: torch.Tensor, cache: Any, *, normalize: bool = True) -> Any:
        return self.inner.step(tokens, cache, normalize=True)


@contextmanager
def explicit_keys(limit: int | None) -> Iterator[None]:
    """The auto kernel's key-count threshold set to `limit` (None: unchanged) meanwhile."""
    before = fast.AUTO_EXPLICIT_MAX_KEYS
    if limit is not None:
        fast.AUTO_EXPLICIT_MAX_KEYS = limit
    try:
        yield
    finally:
        fast.AUTO_EXPLICIT_MAX_KEYS = before


def ours(
    model: Transformer,
    src: torch.Tensor,
    cell: Cell,
    *,
    normalise: bool = False,
    inference: bool = True,
    keys: int | None = None,
) -> Callable[[], object]:
    """The library's decode path for `cell` (`benchmarks.decoding.ours`), with the levers given."""
    run = decoding.ours(
        model,
        src,
        cell,
        wrap=Normalising if normalise else None,
        greedy=greedy_search if inference else greedy_search.__wrapped__,  # type: ignore[attr-defined]
        beam=beam_search if inference else beam_search.__wrapped__,  # type: ignore[attr-defined]
    )

    def levered() -> object:
        with explicit_keys(keys), torch.no_grad():
            return run()

    return levered


def candidates(
    model: Transformer, theirs: Any, translator: Any, cell: Cell
) -> dict[str, Callable[[], object]]:
    """Every candidate of one cell."""
    src = source_batch(model.config.src_vocab_size, cell.batch, 24)
    out = {
        "ours": ours(model, src, cell),
        "log_softmax": ours(model, src, cell, normalise=True),
        "no inference mode": ours(model, src, cell, inference=False),
        "explicit <= 32 keys": ours(model, src, cell, keys=32),
    }
    if translator is not None:
        out["ct2"] = ct2(translator, src, cell)
    if cell.search == "greedy":
        out["recompute"] = recompute(theirs, src, cell)
    return out


def paired(reference: list[float], times: list[float]) -> float:
    """Median over rounds of reference time / candidate time (the candidate's speed-up)."""
    return statistics.median(r / t for r, t in zip(reference, times, strict=True))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.decoding_levers", description=__doc__
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="two small cells, for tests")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = ModelConfig.small(data.VOCAB_SIZE, data.VOCAB_SIZE)
    torch.manual_seed(0)
    model = Transformer(config).eval()
    theirs = baselines.TorchTransformer(config).eval()
    result: dict[str, Any] = {
        "threads": args.threads,
        "rounds": args.rounds,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cells": [],
    }
    with tempfile.TemporaryDirectory(prefix="aiayn-levers-") as tmp:
        translator = export_ct2(model, Path(tmp) / "ct2")
        for cell in QUICK_CELLS if args.quick else CELLS:
            cands = candidates(model, theirs, translator, cell)
            for run in cands.values():
                run()  # warm-up
            times: dict[str, list[float]] = {name: [] for name in cands}
            for _ in range(args.rounds):
                for name, run in cands.items():
                    clock = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - clock)
            rows = []
            for name, seconds in times.items():
                row = {"candidate": name, "ms": 1000 * statistics.median(seconds)}
                for reference in ("ct2", "recompute"):
                    if reference in times and name != reference:
                        row[f"speed_vs_{reference}"] = paired(times[reference], seconds)
                rows.append(row)
                ratios = "  ".join(
                    f"{k[6:]} {v:.2f}x" for k, v in row.items() if k.startswith("speed_")
                )
                print(f"{cell.name:16s} {name:20s} {row['ms']:9.1f} ms  {ratios}", flush=True)
            result["cells"].append({"cell": cell.name, "rows": rows})
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
