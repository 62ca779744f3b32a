"""The benchmark suite's one entry point (issue #6).

    python -m benchmarks.run [--quick] [--only NAME] [--json FILE] [--plot PNG]
                             [--device cpu|cuda] [--precision fp32|bf16] [--repeats N]

Cases (names for --only; a prefix such as "train" selects several):
  train_small_multi30k  training step, `small`, real Multi30k de->en batches of 128 sentences:
                        ours vs nn.Transformer like for like (the same TrainStep) and as users
                        write it
  train_small_shape     the same at the thread's shape (batch 32, source 128, target 64)
                        (not in --quick)
  train_base_multi30k   training step, `base`, 2 of the Multi30k batches, like for like only
                        (not in --quick)
  decoding              the decoding grid: batch 1, 16, 64 x output length 10, 30, 60 x greedy,
                        beam 4: ours vs recomputed greedy and CTranslate2 (--quick: 4 cells)
  memory                peak RSS of a training step at the thread's shape, one process per model
  levers                our step with one lever changed at a time (only with --only levers;
                        --with-compile adds torch.compile)
  export                a trained run (--run) decoded by us, CTranslate2, Hugging Face and ONNX
                        Runtime (float32 and int8): BLEU, identical outputs, sentences/s (only
                        with --only export; benchmarks/export.py has the options)

Every case times its candidates interleaved in one process (A B A B ...) after warm-up, 7 rounds
(--quick: 5); figures are medians over rounds, ratios are medians of per-round ratios, each shown
with its range over the rounds. Prints a table and each case's headline ratios; --json writes
every figure with the machine's description; the decoding grid's plot goes to --plot (default:
beside --json). What each case builds and times is in
benchmarks/cases.py; the machine's description in benchmarks/machine.py.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from benchmarks import data
from benchmarks.cases import (
    Case,
    Settings,
    decoding_case,
    export_case,
    memory_case,
    train_case,
)
from benchmarks.machine import busy_share, load_average, machine
from benchmarks.timing import Spread

CASES = (
    "train_small_multi30k",
    "train_small_shape",
    "train_base_multi30k",
    "decoding",
    "memory",
    "levers",
    "export",
)
ON_REQUEST = ("levers", "export")  # run only when named with --only
DEFAULT_CASES = tuple(c for c in CASES if c not in ON_REQUEST)
QUICK_CASES = ("train_small_multi30k", "decoding", "memory")
# Issue #15's targets (2-core CPU, float32): (case, candidate, figure, threshold).
TARGETS = (
    ("train_small_multi30k", "ours", "ratio", 1.0),  # no case slower than nn.Transformer
    ("train_small_shape", "ours", "ratio", 1.0),
    ("train_base_multi30k", "ours", "ratio", 1.0),
    ("decoding", "B1 L60 greedy ours", "ratio", 3.0),  # vs recomputation, interactive
    ("decoding", "B64 L30 greedy ours", "vs_ct2", 0.85),
    ("decoding", "B64 L30 beam4 ours", "vs_ct2", 0.85),
    ("memory", "ours", "ratio", 1.0),
)


# ---------------------------------------------------------------------------------------- table


def format_table(cases: list[Case]) -> str:
    """One line per candidate: seconds per call, real target tokens/s, speed-up over the case's
    reference (paired by round) and MFU, each as the median with its range over the rounds;
    memory rows show the peak RSS. The decoding grid prints a table of its own."""
    head = f"{'case':<22} {'candidate':<22} {'median s (min-max)':>22} {'tokens/s':>8}"
    head += f" {'ratio (min-max)':>19} {'MFU (min-max)':>20}  detail"
    lines = [head, "-" * (len(head) + 16)]
    for case in cases:
        if case.report:
            continue
        for row in case.rows:
            med = tps = mfu = ratio = detail = ""
            if row.samples is not None:
                med = Spread(row.samples.seconds).text("{:.3f}", "")
                tps = f"{row.tokens / row.samples.median:.0f}"
            if "peak_mib" in row.extra:
                detail = (
                    f"{row.extra['measure']} {row.extra['peak_mib']:.0f} MiB "
                    f"(+{row.extra['step_mib']:.0f} MiB over the model)"
                )
            if "mfu_padded" in row.extra:
                detail = f"padded positions counted: {row.extra['mfu_padded']:.1%}"
            if "same_as_ours" in row.extra:
                r = row.extra
                detail = (
                    f"{r['sentences_per_s']:.1f} sentences/s, BLEU {r['bleu_tok_lc']:.2f}, "
                    f"{r['same_as_ours']}/{r['sentences']} as ours"
                )
            if row.mfu is not None:
                mfu = row.mfu.text("{:.1%}", "")
            if row.ratio is not None:
                ratio = (
                    row.ratio.text() if len(row.ratio.values) > 1 else f"{row.ratio.median:.2f}x"
                )
            lines.append(
                f"{case.name:<22} {row.candidate:<22} {med:>22} {tps:>8} {ratio:>19} {mfu:>20}  "
                f"{detail}"
            )
    return "\n".join(lines) if len(lines) > 2 else ""


def target_lines(cases: list[Case]) -> list[str]:
    """How each of issue #15's targets stands in this run (median over rounds)."""
    out = []
    by_name = {c.name: c for c in cases}
    for case_name, candidate, what, threshold in TARGETS:
        case = by_name.get(case_name)
        row = next((r for r in case.rows if r.candidate == candidate), None) if case else None
        if row is None:
            continue
        if what == "ratio":
            value = row.ratio.median if row.ratio is not None else None
        else:
            value = row.extra.get("decoding", {}).get(what, {}).get("median")
        if value is None:
            continue
        ok = "met" if value >= threshold else "NOT met"
        label = "vs CTranslate2" if what == "vs_ct2" else "ratio"
        out.append(f"{case_name} {candidate} {label}: {value:.2f}x (target >= {threshold}x) {ok}")
    return out


# ----------------------------------------------------------------------------------------- main


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
    parser.add_argument(
        "--plot", type=Path, metavar="PNG", help="the decoding grid's plot (default: beside --json)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--repeats", type=int, help="timed rounds (>= 5; default 7, --quick 5)")
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
    if args.repeats is None:
        args.repeats = 5 if args.quick else 7
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
    plot = args.plot
    if plot is None and args.json is not None:
        plot = args.json.with_name(args.json.stem + "-decoding.png")

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
        elif name == "train_base_multi30k":  # 2 batches, like for like only: the time budget
            case = train_case(name, "base", multi30k().head(2), settings, as_users=False)
        elif name == "decoding":
            case = decoding_case(settings, plot)
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
    reports = [f"{c.name}: {c.description}\n{c.report}" for c in cases if c.report]
    headlines = [line for c in cases for line in c.headlines]
    if table:
        print()
        print(table)
    for report in reports:
        print()
        print(report)
    print()
    print(f"headline ratios: median of {args.repeats} rounds (lowest-highest round)")
    for line in headlines:
        print("  " + line)
    for line in target_lines(cases):
        print(line)
    if "decoding" in names and plot is not None:
        print(f"decoding plot: {plot}")
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
        "headlines": headlines,
        "table": "\n\n".join([table, *reports]),
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
