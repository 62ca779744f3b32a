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
writes every figure with the machine's description. What each case builds and times is in
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
    export_case,
    inference_case,
    memory_case,
    train_case,
)
from benchmarks.machine import busy_share, load_average, machine

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
