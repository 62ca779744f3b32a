"""The benchmark suite's one entry point (issue #6).

    python -m benchmarks.run [--quick] [--only NAME] [--json FILE] [--device cpu|cuda]
                             [--precision fp32|bf16]

Cases (names for --only; a prefix such as "train" selects several):
  train_small_multi30k  training step, `small`, real Multi30k de->en batches of 128 sentences
  train_small_shape     training step, `small`, the thread's shape (batch 32, source 128, target 64)
  train_base_multi30k   training step, `base`, the same Multi30k batches (not in --quick)
  inference             cached greedy and beam 4 vs recomputed greedy, batch 64, source 24, 30 steps
  memory                peak RSS of a training step at the thread's shape, one process per model
  levers                our step with one lever changed at a time (only with --only levers;
                        --with-compile adds torch.compile)
  export                a trained run (--run) decoded by us, CTranslate2, Hugging Face and ONNX
                        Runtime (float32 and int8): BLEU, identical outputs, sentences/s (only
                        with --only export; benchmarks/export.py has the options)

Every case times its candidates interleaved in one process (A B A B ...) after warm-up; figures
are medians over rounds and ratios are medians of per-round ratios. Prints a table; --json
writes every figure with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aiayn.model import ModelConfig, forward_flops
from benchmarks import data, inference, memory, training
from benchmarks.timing import MatmulPeak, Samples, interleaved, paired_ratio

CASES = (
    "train_small_multi30k",
    "train_small_shape",
    "train_base_multi30k",
    "inference",
    "memory",
    "levers",
    "export",
)
ON_REQUEST = ("levers", "export")  # run only when named with --only
DEFAULT_CASES = tuple(c for c in CASES if c not in ON_REQUEST)
QUICK_CASES = ("train_small_multi30k", "train_small_shape", "inference", "memory")
TARGETS = {  # issue #6, 2-core CPU, float32: name -> (what, threshold)
    "train_small_multi30k": {"ratio": 1.3, "mfu": 0.65},
    "train_small_shape": {"ratio": 1.0},
    "train_base_multi30k": {"ratio": 1.0},
    "greedy_cached": {"ratio": 6.0},
    "beam4_cached": {"ratio": 2.3},
    "memory": {"ratio": 1.0},
}


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


# ---------------------------------------------------------------------------------------- table


def format_table(cases: list[Case]) -> str:
    """One line per candidate: median seconds per call, real target tokens/s, speed-up over
    the case's reference (paired by round), MFU; memory rows show the peak RSS instead."""
    head = f"{'case':<22} {'candidate':<24} {'median s':>9} {'tokens/s':>9} {'ratio':>7}"
    head += f" {'MFU':>6}  detail"
    lines = [head, "-" * (len(head) + 20)]
    for case in cases:
        for row in case.rows:
            med = tps = mfu = ""
            detail = ""
            if row.samples is not None:
                med = f"{row.samples.median:.3f}"
                tps = f"{row.tokens / row.samples.median:.0f}"
                detail = f"best {row.samples.best:.3f} s"
            if "peak_mib" in row.extra:
                detail = (
                    f"{row.extra['measure']} {row.extra['peak_mib']:.0f} MiB "
                    f"(+{row.extra['step_mib']:.0f} MiB over the model)"
                )
            if "same_as_ours" in row.extra:
                r = row.extra
                detail = (
                    f"{r['sentences_per_s']:.1f} sentences/s, BLEU {r['bleu_tok_lc']:.2f}, "
                    f"{r['same_as_ours']}/{r['sentences']} as ours"
                )
            if row.mfu is not None:
                mfu = f"{row.mfu:.1%}"
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
            lines.append(
                f"{case.name:<22} {row.candidate:<24} {med:>9} {tps:>9} {ratio:>7} {mfu:>6}  "
                f"{detail}"
            )
    return "\n".join(lines)


def target_lines(cases: list[Case]) -> list[str]:
    """How each headline figure compares with issue #6's target."""
    out = []
    by_name = {c.name: c for c in cases}
    for name, targets in TARGETS.items():
        case_name = "inference" if name in ("greedy_cached", "beam4_cached") else name
        case = by_name.get(case_name)
        if case is None:
            continue
        row_name = name if case_name == "inference" else "ours"
        row = next((r for r in case.rows if r.candidate == row_name), None)
        if row is None:
            continue
        for what, threshold in targets.items():
            value = row.ratio if what == "ratio" else row.mfu
            if value is None:
                continue
            ok = "met" if value >= threshold else "NOT met"
            shown = f"{value:.1%}" if what == "mfu" else f"{value:.2f}x"
            goal = f"{threshold:.0%}" if what == "mfu" else f"{threshold}x"
            out.append(f"{name} {what}: {shown} (target >= {goal}) {ok}")
    return out


# ----------------------------------------------------------------------------------------- main


def busy_share(seconds: float = 1.0) -> float | None:
    """Share of the CPU that other processes used over the next `seconds` (Linux)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(total1 - total0, 1)


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (Linux), to spot other work competing for the CPU."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (Linux), or nothing."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def machine() -> dict[str, Any]:
    cpu = cpuinfo()
    flags = set(cpu.get("flags", "").split())
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu.get("model name") or platform.processor(),
        "cpu_family_model": f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
        "cpu_flags_of_note": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}),
        "logical_cpus": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "flush_denormal": True,
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name()
    return info


def selected(only: list[str] | None, quick: bool) -> list[str]:
    pool = QUICK_CASES if quick else DEFAULT_CASES
    if not only:
        return list(pool)
    names = []
    for want in only:
        hits = [c for c in CASES if c == want or c.startswith(want)]
        if not hits:
            raise SystemExit(f"--only {want!r}: no such case; choose from {', '.join(CASES)}")
        names += [c for c in hits if c not in names and (c not in ON_REQUEST or want == c)]
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="aiayn vs torch.nn.Transformer: training, decoding, memory.",
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run (no base case)")
    parser.add_argument("--only", action="append", metavar="NAME", help="case name or prefix")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure here")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (>= 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument(
        "--data-dir", type=Path, help="folder with the Multi30k files (default: ../shared/...)"
    )
    parser.add_argument(
        "--with-compile",
        action="store_true",
        help="levers case: also time torch.compile (compiling takes minutes)",
    )
    parser.add_argument("--run", type=Path, help="export case: the trained run to export")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.repeats < 5:
        raise SystemExit("--repeats must be at least 5 (medians of at least 5 rounds)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    started = time.perf_counter()
    # As the trainer does on the CPU: subnormal floats (e.g. Adam's decaying second moments)
    # would slow both models' arithmetic several times. Process-wide, so it applies to both.
    torch.set_flush_denormal(True)
    warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
    settings = Settings(
        quick=args.quick,
        device=torch.device(args.device),
        precision=args.precision,
        repeats=args.repeats,
        warmup=args.warmup,
        multi30k_batches=1 if args.quick else 4,
        data_dir=args.data_dir,
        with_compile=args.with_compile,
    )
    names = selected(args.only, args.quick)
    print(f"aiayn benchmarks: {', '.join(names)}  ({args.device}, {args.precision})", flush=True)
    load = load_average()
    busy = busy_share()
    if busy is not None and busy > 0.1:
        print(
            f"warning: other processes used {busy:.0%} of the CPU just before the run: "
            "timings will be slow and noisy (ratios suffer least)",
            flush=True,
        )
    workloads: dict[str, data.Workload] = {}

    def multi30k() -> data.Workload:
        if "multi30k" not in workloads:
            workloads["multi30k"] = data.multi30k_workload(
                settings.multi30k_batches, settings.data_dir
            )
        return workloads["multi30k"]

    cases: list[Case] = []
    for name in names:
        t0 = time.perf_counter()
        if name == "train_small_multi30k":
            case = train_case(name, "small", multi30k(), settings)
        elif name == "train_small_shape":
            case = train_case(name, "small", data.fixed_shape_workload(), settings)
        elif name == "train_base_multi30k":
            case = train_case(name, "base", multi30k(), settings)
        elif name == "inference":
            case = inference_case(settings)
        elif name == "memory":
            case = memory_case(settings)
        elif name == "export":
            case = export_case(settings, args.run)
        else:
            case = train_case(name, "small", multi30k(), settings, levers=True)
        case.seconds = time.perf_counter() - t0
        cases.append(case)
        print(f"  {name}: {case.seconds:.0f} s", flush=True)

    table = format_table(cases)
    print()
    print(table)
    for line in target_lines(cases):
        print(line)
    result = {
        "command": " ".join(["python -m benchmarks.run", *map(shlex.quote, argv or sys.argv[1:])]),
        "machine": machine(),
        "cpu_busy_before_start": busy,  # share of the CPU other processes used
        "load_average_at_start": load,
        "device": args.device,
        "precision": args.precision,
        "quick": args.quick,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "seconds": time.perf_counter() - started,
        "cases": [c.to_dict() for c in cases],
        "targets": target_lines(cases),
        "table": table,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
