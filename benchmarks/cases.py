"""The suite's cases: what each one builds, times and reports (see benchmarks/run.py)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aiayn.model import ModelConfig, forward_flops
from benchmarks import data, inference, memory, training
from benchmarks.timing import MatmulPeak, Samples, interleaved, paired_ratio


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
    ratio: float | None = None  # paired speed-up over the case's baseline (or memory ratio)
    mfu: float | None = None
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
            out["ratio_vs_baseline"] = self.ratio
        if self.mfu is not None:
            out["mfu"] = self.mfu
        return out | self.extra


@dataclass
class Case:
    name: str
    description: str
    rows: list[Row]
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "seconds": self.seconds,
            "rows": [r.to_dict() for r in self.rows],
        } | self.info


# ------------------------------------------------------------------------------------- training


def train_case(
    name: str, preset: str, workload: data.Workload, settings: Settings, levers: bool = False
) -> Case:
    """Ours vs nn.Transformer (or, for levers, ours vs ours with one thing changed)."""
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
        cands["nn.Transformer"] = training.baseline_step(
            config, workload.batches, precision, device
        )
    peak = MatmulPeak(settings.dtype, device)
    cands["matmul_peak"] = peak
    samples = interleaved(
        cands, repeats=settings.repeats, warmup=settings.warmup, synchronize=settings.synchronize
    )
    src_lengths, tgt_lengths = workload.lengths()
    flops = 3 * forward_flops(config, src_lengths, tgt_lengths)  # forward + backward
    peak_flops = peak.flops_per_second(samples["matmul_peak"])
    reference = samples["ours" if levers else "nn.Transformer"]
    rows = []
    for cand, s in samples.items():
        if cand == "matmul_peak":
            continue
        mfu = statistics.median(flops / t / p for t, p in zip(s.seconds, peak_flops, strict=True))
        # Speed-up of this candidate over the reference, paired by round.
        rows.append(Row(cand, s, workload.real_tgt_tokens, paired_ratio(reference, s), mfu))
    info = {
        "preset": preset,
        "workload": workload.describe(),
        "batch_shapes": [
            [list(b.src.shape), list(b.tgt_in.shape), b.n_tgt_tokens] for b in workload.batches
        ],
        "flops_per_call": flops,
        "matmul_peak_flops_median": statistics.median(peak_flops),
        "matmul_peak_flops_best": max(peak_flops),
        "matmul_peak_seconds": samples["matmul_peak"].seconds,
    }
    what = "our step with one lever changed" if levers else "ours vs nn.Transformer"
    return Case(name, f"training step, {preset}, {workload.name}: {what}", rows, info)


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


# ------------------------------------------------------------------------------------ inference


def inference_case(settings: Settings) -> Case:
    config = ModelConfig.small(data.VOCAB_SIZE, data.VOCAB_SIZE)
    ic = inference.inference_candidates(
        config, include_loop=not settings.quick, device=settings.device
    )
    samples = interleaved(
        ic.candidates,
        repeats=settings.repeats,
        warmup=settings.warmup,
        synchronize=settings.synchronize,
    )
    reference = samples["greedy_recompute_nn"]
    rows = [Row(c, s, ic.tokens[c], paired_ratio(reference, s)) for c, s in samples.items()]
    desc = (
        f"decoding, small, batch {inference.BATCH}, source {inference.SRC_LEN}, "
        f"{inference.STEPS} tokens per sentence (EOS disabled): vs recomputed greedy (nn)"
    )
    return Case("inference", desc, rows, {"notes": ic.notes})


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
        rows.append(Row("ours" if m == "ours" else "nn.Transformer", ratio=ratio, extra=r))
    what = "peak RSS" if device == "cpu" else "peak CUDA memory"
    desc = f"{what} of 2 training steps, small, batch 32, source 128, target 64, own process"
    return Case("memory", desc, rows)


# --------------------------------------------------------------------------------------- export


def export_case(settings: Settings, run: Path | None) -> Case:
    """Our greedy decoder vs the engines we export to, on the run's test sentences."""
    from benchmarks import export

    if run is None:
        raise SystemExit("--only export needs --run RUN (a trained run, e.g. runs/en-de)")
    argv = ["--run", str(run), "--threads", str(torch.get_num_threads())]
    argv += ["--rounds", "1" if settings.quick else "3"]
    if settings.quick:
        argv += ["--max-sentences", "200"]
    if settings.data_dir is not None:
        argv += ["--data-dir", str(settings.data_dir)]
    info = export.benchmark(export.parse_args(argv))
    rows = [Row(r["engine"], ratio=r["speedup_vs_ours"], extra=r) for r in info["rows"]]
    desc = f"greedy decoding of {info['data']}, {info['threads']} threads, own process each"
    return Case("export", desc, rows, info={"skipped": info["skipped"], "run": str(run)})
