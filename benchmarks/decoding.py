"""The decoding grid: cost of translating a batch to exactly L tokens, by batch size, L and search.

Candidates of a cell (batch B, output length L, greedy or beam 4), all on the same random
`small` weights and the same random sources of 24 tokens:

- `ours`: the library's decode path: `aiayn.decoding.start` (encode once, preallocated
  `DecoderCache`) and `greedy_search` / `beam_search` over the `ModelStepper`, with EOS
  suppressed for L steps (`NoEosStepper`), so every sentence gets exactly L tokens.
- `recompute` (the reference, greedy only): nn.Transformer without a cache, the PyTorch
  tutorial's way: each step runs the decoder over the whole prefix (`RecomputeStepper`), driven
  by the same library `greedy_search`, so only the step differs.
- `ct2` (when ctranslate2 is installed): the same weights exported with the library's
  `write_ct2`, run by `ctranslate2.Translator.translate_batch` with
  `min_decoding_length = max_decoding_length = L` and as many threads as torch uses.

Beam search's reference is also recomputed greedy (as in the classic table: beam 4 does 4x
the rows of greedy, so the ratio says what beam search costs over the baseline's greedy).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aiayn.decoding import beam_search, greedy_search, start
from aiayn.model import ModelConfig, Transformer
from benchmarks import baselines
from benchmarks.inference import BOS_ID, EOS_ID, NoEosStepper, source_batch
from benchmarks.timing import Samples, Spread, paired_ratios

BATCHES = (1, 16, 64)
LENGTHS = (10, 30, 60)
SEARCHES = ("greedy", "beam4")
SRC_LEN = 24
BEAM = 4
# A cheap corner of the grid for --quick: interactive latency and a mid-size batch.
QUICK_CELLS = ((1, 10, "greedy"), (1, 10, "beam4"), (16, 30, "greedy"), (16, 30, "beam4"))
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    batch: int
    length: int
    search: str

    @property
    def name(self) -> str:
        return f"B{self.batch} L{self.length} {self.search}"


def cells(quick: bool) -> list[Cell]:
    """The cells a run times: the whole grid, or `QUICK_CELLS`."""
    if quick:
        return [Cell(*c) for c in QUICK_CELLS]
    return [Cell(b, n, s) for b in BATCHES for n in LENGTHS for s in SEARCHES]


# ------------------------------------------------------------------------------- recomputation


@dataclass
class PrefixCache:
    """What a recomputing step needs per row: the encoder output and the prefix so far."""

    memory: Tensor  # (R, S, D)
    src_padding: Tensor  # (R, S), True = pad (nn's polarity)
    prefix: Tensor  # (R, t)

    @property
    def batch_size(self) -> int:
        return self.prefix.shape[0]

    def reorder(self, indices: Tensor) -> PrefixCache:
        indices = indices.to(self.prefix.device)
        return PrefixCache(self.memory[indices], self.src_padding[indices], self.prefix[indices])

    def expand_beams(self, k: int) -> PrefixCache:
        return self.reorder(torch.arange(self.batch_size).repeat_interleave(k))


class RecomputeStepper:
    """nn.Transformer as a `StepModel` without a cache: the decoder runs over the whole prefix."""

    def __init__(self, model: baselines.TorchTransformer) -> None:
        self.model = model

    def step(
        self, tokens: Tensor, cache: PrefixCache, *, normalize: bool = True
    ) -> tuple[Tensor, PrefixCache]:
        prefix = torch.cat([cache.prefix, tokens.to(cache.prefix.device)], dim=1)
        states = self.model.decode(prefix, cache.memory, cache.src_padding)
        logits = self.model.generator(states[:, -1]).float()
        cache = PrefixCache(cache.memory, cache.src_padding, prefix)
        return (torch.log_softmax(logits, dim=-1) if normalize else logits), cache


@torch.no_grad()
def recompute_start(
    model: baselines.TorchTransformer, src: Tensor
) -> tuple[RecomputeStepper, PrefixCache]:
    """Encode once; the prefix starts empty (the search feeds BOS first)."""
    memory, src_padding = model.encode(src)
    empty = torch.zeros(src.shape[0], 0, dtype=torch.long, device=src.device)
    return RecomputeStepper(model), PrefixCache(memory, src_padding, empty)


# ------------------------------------------------------------------------------------- engines


def ours(
    model: Transformer,
    src: Tensor,
    cell: Cell,
    *,
    wrap: Callable[[Any], Any] | None = None,
    greedy: Callable[..., Any] = greedy_search,
    beam: Callable[..., Any] = beam_search,
) -> Callable[[], object]:
    """The library's search over our cached stepper, exactly `cell.length` tokens a sentence.

    `wrap` (around the stepper), `greedy` and `beam` let benchmarks/decoding_levers.py change
    one thing of this path at a time.
    """

    def run() -> object:
        stepper, cache = start(model, src, capacity=cell.length + 1)
        no_eos = NoEosStepper(wrap(stepper) if wrap else stepper, cell.length)
        options = {"bos_id": BOS_ID, "eos_id": EOS_ID, "max_len": cell.length + 1}
        if cell.search == "greedy":
            return greedy(no_eos, cache, **options)
        return beam(no_eos, cache, beam_size=BEAM, **options)

    return run


def recompute(model: baselines.TorchTransformer, src: Tensor, cell: Cell) -> Callable[[], object]:
    """The library's greedy search over nn.Transformer recomputing the prefix."""

    def run() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            stepper, cache = recompute_start(model, src)
            no_eos = NoEosStepper(stepper, cell.length)
            return greedy_search(
                no_eos, cache, bos_id=BOS_ID, eos_id=EOS_ID, max_len=cell.length + 1
            )

    return run


def export_ct2(model: Transformer, folder: Path) -> Any | None:
    """Our weights through the library's ct2 export, loaded by CTranslate2; None without it."""
    try:
        import ctranslate2
    except ImportError:
        return None
    from aiayn.data import SymbolTokenizer, Vocabularies
    from aiayn.decoding.config import DecodeConfig
    from aiayn.export.common import ExportSource
    from aiayn.export.ct2 import write_ct2

    size = model.config.tgt_vocab_size
    symbols = SymbolTokenizer([f"w{i}" for i in range(4, size)])  # ids 0-3 are the specials
    vocabs = Vocabularies(src=symbols, tgt=symbols, joint=True)
    source = ExportSource(model, vocabs, DecodeConfig(), folder, folder)
    write_ct2(source, folder)
    return ctranslate2.Translator(
        str(folder), device="cpu", inter_threads=1, intra_threads=torch.get_num_threads()
    )


def ct2(translator: Any, src: Tensor, cell: Cell) -> Callable[[], object]:
    """CTranslate2's translate_batch to exactly `cell.length` tokens (EOS only after them)."""
    pieces = [[f"w{i}" for i in row] for row in src.tolist()]
    beam = 1 if cell.search == "greedy" else BEAM

    def run() -> object:
        return translator.translate_batch(
            pieces,
            beam_size=beam,
            max_batch_size=0,
            max_decoding_length=cell.length,
            min_decoding_length=cell.length,
        )

    return run


@dataclass
class Grid:
    """Every (cell, candidate) callable, for `timing.interleaved`, and what was left out."""

    candidates: dict[tuple[Cell, str], Callable[[], object]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def grid(
    config: ModelConfig,
    chosen: list[Cell],
    workdir: Path,
    device: torch.device = CPU,
    with_ct2: bool = True,
) -> Grid:
    """Build every candidate of every chosen cell (ct2 on the CPU only, if `with_ct2`)."""
    torch.manual_seed(0)
    model = Transformer(config).to(device).eval()
    theirs = baselines.TorchTransformer(config).to(device).eval()
    out = Grid()
    translator = None
    if with_ct2 and device.type == "cpu":
        translator = export_ct2(model, workdir / "ct2")
        if translator is None:
            out.notes.append("ctranslate2 is not installed: no ct2 candidates")
    elif with_ct2:
        out.notes.append("ct2 is timed on the CPU only")
    batches = {c.batch for c in chosen}
    sources = {b: source_batch(config.src_vocab_size, b, SRC_LEN) for b in batches}
    for cell in chosen:
        src = sources[cell.batch].to(device)
        out.candidates[cell, "ours"] = ours(model, src, cell)
        if cell.search == "greedy":
            out.candidates[cell, "recompute"] = recompute(theirs, src, cell)
        if translator is not None:
            out.candidates[cell, "ct2"] = ct2(translator, sources[cell.batch], cell)
    return out


# -------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Result:
    """One candidate of one cell, timed."""

    cell: Cell
    candidate: str
    samples: Samples
    vs_recompute: Spread | None  # paired speed-up over recomputed greedy of the same B and L
    vs_ct2: Spread | None  # this candidate's speed over CTranslate2's, same cell (ours only)

    @property
    def ms_per_sentence(self) -> float:
        return self.samples.median * 1e3 / self.cell.batch

    @property
    def tokens_per_s(self) -> float:
        return self.cell.batch * self.cell.length / self.samples.median

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "batch": self.cell.batch,
            "length": self.cell.length,
            "search": self.cell.search,
            "candidate": self.candidate,
            "seconds": self.samples.seconds,
            "median_s": self.samples.median,
            "ms_per_sentence": self.ms_per_sentence,
            "tokens_per_s": self.tokens_per_s,
        }
        for name, spread in (("vs_recompute", self.vs_recompute), ("vs_ct2", self.vs_ct2)):
            if spread is not None:
                out[name] = spread.to_dict()
        return out


def results(timed: dict[tuple[Cell, str], Samples]) -> list[Result]:
    """Per (cell, candidate): its samples and its paired ratios."""
    out = []
    for (cell, candidate), samples in timed.items():
        reference = timed.get((Cell(cell.batch, cell.length, "greedy"), "recompute"))
        engine = timed.get((cell, "ct2"))
        vs_recompute = paired_ratios(reference, samples) if reference is not None else None
        vs_ct2 = None
        if engine is not None and candidate == "ours":
            vs_ct2 = paired_ratios(engine, samples)
        out.append(Result(cell, candidate, samples, vs_recompute, vs_ct2))
    return out


def table(rows: list[Result]) -> str:
    """One line per (cell, candidate): ms per sentence (median, range), tokens/s, ratios."""
    head = (
        f"{'batch':>5} {'len':>4} {'search':<7} {'candidate':<10} {'ms/sentence (min-max)':>24}"
        f" {'tokens/s':>9}  {'vs recompute (min-max)':<24} {'vs ct2 (min-max)':<20}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        per = 1e3 / r.cell.batch
        ms = Spread([s * per for s in r.samples.seconds]).text("{:.1f}", "")
        lines.append(
            f"{r.cell.batch:>5} {r.cell.length:>4} {r.cell.search:<7} {r.candidate:<10} "
            f"{ms:>24} {r.tokens_per_s:>9.0f}  "
            f"{r.vs_recompute.text() if r.vs_recompute else '':<24} "
            f"{r.vs_ct2.text() if r.vs_ct2 else '':<20}"
        )
    return "\n".join(lines)


def plot(rows: list[Result], path: Path, title: str) -> Path:
    """A PNG of ms per sentence against output length: one panel per batch size, one line per
    (candidate, search), the bars showing each figure's range over the rounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    from aiayn.runs.atomic import atomic_write

    batches = sorted({r.cell.batch for r in rows})
    fig, axes = plt.subplots(1, len(batches), figsize=(5 * len(batches), 4), squeeze=False)
    for ax, batch in zip(axes[0], batches, strict=True):
        lines: dict[str, list[Result]] = {}
        for r in rows:
            if r.cell.batch == batch:
                lines.setdefault(f"{r.candidate} {r.cell.search}", []).append(r)
        for label, points in sorted(lines.items()):
            points.sort(key=lambda r: r.cell.length)
            per = 1e3 / batch
            med = [r.samples.median * per for r in points]
            low = [m - r.samples.best * per for m, r in zip(med, points, strict=True)]
            high = [max(r.samples.seconds) * per - m for m, r in zip(med, points, strict=True)]
            style = "--" if "beam" in label else "-"
            ax.errorbar(
                [r.cell.length for r in points], med, yerr=[low, high], label=label,
                linestyle=style, marker="o", capsize=3,
            )  # fmt: skip
        ax.set_title(f"batch {batch}")
        ax.set_xlabel("output tokens per sentence")
        ax.set_ylabel("ms per sentence")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.set_xticks(sorted({r.cell.length for r in rows}))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
