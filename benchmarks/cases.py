"""The suite's cases: what each one builds, times and reports (see benchmarks/run.py)."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aiayn.model import ModelConfig, forward_flops
from benchmarks import data, decoding, memory, training
from benchmarks.timing import MatmulPeak, Samples, Spread, interleaved, paired_ratios


@dataclass
class Settings:
    quick: bool
    device: torch.device
    precision: str
    repeats: int
    warmup: int
    multi30k_batches: int
    data_dir: Path | None
    with_compile: bool = False
    peak_sizes: tuple[int, ...] | None = None  # matmul peak sizes to try (None: PEAK_SIZES)

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@dataclass
class Row:
    """One candidate of a case."""

    candidate: str
    samples: Samples | None = None
    tokens: int = 0  # real target tokens per call
    ratio: Spread | None = None  # paired speed-up over the case's reference, per round
    mfu: Spread | None = None  # per round, against that round's matmul peak
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"candidate": self.candidate}
        if self.samples is not None:
            out |= {
                "median_s": self.samples.median,
                "best_s": self.samples.best,
                "seconds": self.samples.seconds,
                "tokens": self.tokens,
                "tokens_per_s": self.tokens / self.samples.median,
            }
        if self.ratio is not None:
            out["ratio_vs_baseline"] = self.ratio.median
            out["ratio_min"], out["ratio_max"] = self.ratio.low, self.ratio.high
            out["ratio_rounds"] = self.ratio.values
        if self.mfu is not None:
            out["mfu"] = self.mfu.median
            out["mfu_min"], out["mfu_max"] = self.mfu.low, self.mfu.high
        return out | self.extra


@dataclass
class Case:
    name: str
    description: str
    rows: list[Row]
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    headlines: list[str] = field(default_factory=list)  # the case's ratios, with their spread
    report: str = ""  # a table of its own (the decoding grid)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "seconds": self.seconds,
            "headlines": self.headlines,
            "rows": [r.to_dict() for r in self.rows],
        } | self.info


# ------------------------------------------------------------------------------------- training

SAME_STEP = "nn.Transformer"  # like for like: through our TrainStep (the reference)
AS_USERS = "nn as users write it"  # the frozen baseline of baselines.py
_PEAKS: dict[tuple[torch.dtype, str], MatmulPeak] = {}


def matmul_peak(settings: Settings) -> MatmulPeak:
    """The saturating matmul of the run's dtype and device, chosen once per process."""
    key = (settings.dtype, settings.device.type)
    if key not in _PEAKS:
        _PEAKS[key] = MatmulPeak.saturating(
            settings.dtype, settings.device, settings.peak_sizes, synchronize=settings.synchronize
        )
    return _PEAKS[key]


def train_case(
    name: str,
    preset: str,
    workload: data.Workload,
    settings: Settings,
    levers: bool = False,
    as_users: bool = True,
) -> Case:
    """Ours vs nn.Transformer like for like and (`as_users`) as its users write it; or, for
    levers, ours vs ours with one thing changed."""
    v = workload.vocab_size
    config = ModelConfig.preset(preset, v, v)
    device, precision = settings.device, settings.precision
    torch.manual_seed(0)
    cands: dict[str, Callable[[], None]] = {}
    options = training.OursOptions(precision=precision)
    cands["ours"] = training.ours_step(config, workload.batches, options, device)
    if levers:
        cands |= lever_candidates(config, workload, settings)
    else:
        cands[SAME_STEP] = training.baseline_same_step(config, workload.batches, precision, device)
        if as_users:
            cands[AS_USERS] = training.baseline_as_users_write_it(
                config, workload.batches, precision, device
            )
    peak = matmul_peak(settings)
    cands["matmul_peak"] = peak
    samples = interleaved(
        cands, repeats=settings.repeats, warmup=settings.warmup, synchronize=settings.synchronize
    )
    src_lengths, tgt_lengths = workload.lengths()
    flops = 3 * forward_flops(config, src_lengths, tgt_lengths)  # forward + backward
    padded_src, padded_tgt = workload.padded_lengths()
    padded_flops = 3 * forward_flops(config, padded_src, padded_tgt)
    peak_flops = peak.flops_per_second(samples["matmul_peak"])
    reference = samples["ours" if levers else SAME_STEP]
    rows = []
    for cand, s in samples.items():
        if cand == "matmul_peak":
            continue
        mfu = Spread([flops / t / p for t, p in zip(s.seconds, peak_flops, strict=True)])
        padded = Spread([padded_flops / t / p for t, p in zip(s.seconds, peak_flops, strict=True)])
        extra = {"mfu_padded": padded.median}
        # Speed-up of this candidate over the reference, paired by round.
        rows.append(Row(cand, s, workload.real_tgt_tokens, paired_ratios(reference, s), mfu, extra))
    headlines = []
    ratios: dict[str, Any] = {}
    if not levers:
        like = paired_ratios(samples[SAME_STEP], samples["ours"])
        ratios["ours_vs_nn_like_for_like"] = like.to_dict()
        headlines.append(
            f"{name}: ours vs nn.Transformer, like for like (same TrainStep): {like.text()}"
        )
        if as_users:
            users = paired_ratios(samples[AS_USERS], samples["ours"])
            ratios["ours_vs_nn_as_users_write_it"] = users.to_dict()
            headlines.append(f"{name}: ours vs nn.Transformer as a user runs each: {users.text()}")
        ours_mfu = next(r.mfu for r in rows if r.candidate == "ours")
        gflops = Spread([p / 1e9 for p in peak_flops])
        headlines.append(
            f"{name}: MFU of ours (real tokens) {ours_mfu.text('{:.1%}', '')} against "
            f"{peak.describe()} at {gflops.text('{:.0f}', ' GFLOP/s')}"
        )
    info = {
        "preset": preset,
        "workload": workload.describe(),
        "batch_shapes": [
            [list(b.src.shape), list(b.tgt_in.shape), b.n_tgt_tokens] for b in workload.batches
        ],
        "flops_per_call": flops,  # real (non-pad) positions only
        "flops_per_call_padded": padded_flops,  # every position of the padded batches
        "matmul_peak": peak.describe(),
        "matmul_peak_flops_median": statistics.median(peak_flops),
        "matmul_peak_flops_best": max(peak_flops),
        "matmul_peak_seconds": samples["matmul_peak"].seconds,
        "headline_ratios": ratios,
    }
    what = "our step with one lever changed" if levers else "ours vs nn.Transformer"
    desc = f"training step, {preset}, {workload.name}: {what}"
    return Case(name, desc, rows, info, headlines=headlines)


def lever_candidates(
    config: ModelConfig, workload: data.Workload, settings: Settings
) -> dict[str, Callable[[], None]]:
    """Our step with one lever flipped from the trainer's default, for the levers case."""
    from benchmarks.levers import candidates

    return candidates(
        config,
        workload.batches,
        settings.device,
        settings.precision,
        include_compile=settings.with_compile,
    )


# ------------------------------------------------------------------------------------- decoding


def decoding_case(settings: Settings, plot: Path | None = None) -> Case:
    """The decoding grid (benchmarks/decoding.py): ours, recomputation and CTranslate2."""
    config = ModelConfig.small(data.VOCAB_SIZE, data.VOCAB_SIZE)
    chosen = decoding.cells(settings.quick)
    with tempfile.TemporaryDirectory(prefix="aiayn-bench-decoding-") as tmp:
        built = decoding.grid(config, chosen, Path(tmp), settings.device)
        names = {key: f"{key[0].name} {key[1]}" for key in built.candidates}
        timed = interleaved(
            {names[key]: fn for key, fn in built.candidates.items()},
            repeats=settings.repeats,
            warmup=settings.warmup,
            synchronize=settings.synchronize,
        )
    results = decoding.results({key: timed[names[key]] for key in built.candidates})
    rows = []
    for r in results:
        extra = {"decoding": r.to_dict()}
        tokens = r.cell.batch * r.cell.length
        rows.append(
            Row(f"{r.cell.name} {r.candidate}", r.samples, tokens, r.vs_recompute, None, extra)
        )
    headlines = []
    for r in results:
        if r.candidate != "ours":
            continue
        what = f"decoding {r.cell.name}: ours"
        if r.vs_recompute is not None:
            headlines.append(f"{what} vs recomputed greedy {r.vs_recompute.text()}")
        if r.vs_ct2 is not None:
            headlines.append(f"{what} speed / CTranslate2's {r.vs_ct2.text()}")
    info: dict[str, Any] = {"notes": built.notes, "cells": [r.to_dict() for r in results]}
    if plot is not None:
        title = (
            f"small, source {decoding.SRC_LEN} tokens, {torch.get_num_threads()} threads, "
            f"{settings.device.type} {settings.precision}: median of {settings.repeats} rounds"
        )
        info["plot"] = str(decoding.plot(results, plot, title))
    desc = (
        f"decoding grid, small, source {decoding.SRC_LEN}, exactly L tokens per sentence: "
        "ours (library search, cached) vs recomputed greedy (nn.Transformer) and CTranslate2"
    )
    case = Case("decoding", desc, rows, info, headlines=headlines)
    case.report = decoding.table(results)
    return case


# --------------------------------------------------------------------------------------- memory


def memory_case(settings: Settings) -> Case:
    device = settings.device.type
    results = {
        m: memory.measure_in_subprocess(m, "small", settings.precision, device)
        for m in memory.MODELS
    }
    rows = []
    for m, r in results.items():
        # Ratio > 1: this model needs less memory than nn.Transformer.
        ratio = float(results["nn"]["peak_mib"]) / float(r["peak_mib"])
        rows.append(Row("ours" if m == "ours" else SAME_STEP, ratio=Spread([ratio]), extra=r))
    what = "peak RSS" if device == "cpu" else "peak CUDA memory"
    desc = f"{what} of 2 training steps, small, batch 32, source 128, target 64, own process"
    return Case("memory", desc, rows)


# --------------------------------------------------------------------------------------- export


QUICK_EXPORT_SENTENCES = 50  # --quick: enough to compare translations, not to time them


def export_case(settings: Settings, run: Path | None) -> Case:
    """Our greedy decoder vs the engines we export to, on the run's test sentences."""
    from benchmarks import export

    if run is None:
        raise SystemExit("--only export needs --run RUN (a trained run, e.g. runs/en-de)")
    argv = ["--run", str(run), "--threads", str(torch.get_num_threads())]
    argv += ["--rounds", "1" if settings.quick else "3"]
    if settings.quick:
        argv += ["--max-sentences", str(QUICK_EXPORT_SENTENCES)]
    if settings.data_dir is not None:
        argv += ["--data-dir", str(settings.data_dir)]
    info = export.benchmark(export.parse_args(argv))
    rows = [Row(r["engine"], ratio=Spread([r["speedup_vs_ours"]]), extra=r) for r in info["rows"]]
    desc = f"greedy decoding of {info['data']}, {info['threads']} threads, own process each"
    return Case("export", desc, rows, info={"skipped": info["skipped"], "run": str(run)})
