"""Issue #15's GPU section as one prepared run: everything a lent GPU should measure, in minutes.

    python -m benchmarks.gpu --out DIR [--data-dir DIR] [--repeats 5]
    python -m benchmarks.gpu --out DIR --device cpu --smoke   # checks the script itself (tests)

Writes DIR/gpu.json (every figure, with the card and software) and DIR/gpu.md (the summary for
docs/benchmarks.md), and prints the summary as it goes. The parts, in order:

1. The device: card, memory, torch and CUDA versions, and which matmul precision runs float32
   (TF32 is switched on for the whole run: the float32 figures are "fp32 with TF32", as a CUDA
   user runs float32).
2. The suite's training cases in bf16 autocast and in float32 (`small` on real Multi30k
   batches, `small` at the thread's shape, `base` on 2 Multi30k batches), ours vs nn.Transformer
   like for like through the trainer's `TrainStep`, and the peak memory of a step of each. The
   MFU of each case is against a `torch.mm` of at least 8192^3 in that case's own dtype, timed in
   the same rounds: the card's measured bf16 (or TF32) peak.
3. Cached greedy and beam 4 (`small`, source 24, exactly 30 tokens) at batch 64 and 512, ours
   against nn.Transformer recomputing the prefix, float32.
4. Which scaled-dot-product kernel ran in one training update of ours (flash, memory-efficient,
   cuDNN or the math fallback), read from `torch.profiler`, in bf16 and in float32.
5. Host syncs in one training update of ours: `torch.cuda.set_sync_debug_mode("warn")` reports
   every operation that waits for the GPU, with the line that called it.

`--smoke` swaps in the `tiny` model, one small batch of random tokens, two rounds and small
decoding cells, so that the whole script runs in seconds on a CPU; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from aiayn.model import ModelConfig
from benchmarks import data, decoding, training
from benchmarks.cases import Case, Settings, memory_case, train_case
from benchmarks.machine import machine
from benchmarks.run import format_table
from benchmarks.timing import interleaved

PRECISIONS = ("bf16", "fp32")
DECODING_BATCHES = (64, 512)
DECODING_LENGTH = 30
SMOKE_BATCHES = (2, 3)
SMOKE_LENGTH = 3
SMOKE_VOCAB = 200
SMOKE_PEAK_SIZES = (256,)  # bf16 without native support is slow on a CPU: keep the check cheap
# Op names of torch's SDPA kernels (forward and backward share the stem), matched in this order.
ATTENTION_KERNELS = (
    ("flash", "_flash_attention"),
    ("memory-efficient", "_efficient_attention"),
    ("cudnn", "_cudnn_attention"),
    ("math", "_scaled_dot_product_attention_math"),
)


def device_facts(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on: the suite's machine description, plus the card."""
    facts: dict[str, Any] = machine() | {
        "device": device.type,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        facts |= {
            "card": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "bf16_supported": torch.cuda.is_bf16_supported(),
        }
    return facts


def attention_kernels(update: Callable[[], None], device: torch.device) -> dict[str, int]:
    """The SDPA ops one call of `update` ran, by op name, with how often each ran."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return {
        event.key: event.count
        for event in prof.key_averages()
        if any(stem in event.key for _, stem in ATTENTION_KERNELS)
    }


def kernel_families(ops: dict[str, int]) -> list[str]:
    """The SDPA kernels (`ATTENTION_KERNELS` names) among profiled op names."""
    return [name for name, stem in ATTENTION_KERNELS if any(stem in op for op in ops)]


def host_syncs(update: Callable[[], None], device: torch.device) -> list[str] | None:
    """Each operation of one `update` that made the host wait for the GPU (None off CUDA)."""
    if device.type != "cuda":
        return None
    update()  # warm: first-call allocations are not the steady state
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            update()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [
        f"{w.filename}:{w.lineno}: {str(w.message).splitlines()[0]}"
        for w in caught
        if "synchroniz" in str(w.message)
    ]


def one_update(runner: training.StepRunner) -> Callable[[], None]:
    """One trainer update on the runner's first batch, outside the runner's warning filter
    (which would hide the sync warnings)."""
    return lambda: runner.step([runner.batches[0]])


def training_part(settings: Settings, smoke: bool) -> tuple[list[Case], dict[str, Any]]:
    """Part 2, 4 and 5 for one precision: the training cases, the SDPA kernels, the syncs."""
    preset = "tiny" if smoke else "small"
    if smoke:
        workload = data.fixed_shape_workload(4, 10, 8, SMOKE_VOCAB)
    else:
        workload = data.multi30k_workload(settings.multi30k_batches, settings.data_dir)
    first = "train_smoke" if smoke else "train_small_multi30k"
    cases = [train_case(first, preset, workload, settings)]
    if not smoke:
        shape = data.fixed_shape_workload()
        cases.append(train_case("train_small_shape", "small", shape, settings))
        cases.append(
            train_case("train_base_multi30k", "base", workload.head(2), settings, as_users=False)
        )
        cases.append(memory_case(settings))
    v = workload.vocab_size
    config = ModelConfig.preset(preset, v, v)
    options = training.OursOptions(precision=settings.precision)
    runner = training.ours_step(config, workload.batches, options, settings.device)
    update = one_update(runner)
    update()  # the first call picks kernels and allocates
    ops = attention_kernels(update, settings.device)
    syncs = host_syncs(update, settings.device)
    checks = {"sdpa_ops": ops, "sdpa_kernels": kernel_families(ops), "host_syncs": syncs}
    return cases, checks


def decoding_part(device: torch.device, repeats: int, smoke: bool) -> dict[str, Any]:
    """Part 3: cached greedy and beam 4 at the big batches, against recomputation."""
    if smoke:
        preset, v, batches, length = "tiny", SMOKE_VOCAB, SMOKE_BATCHES, SMOKE_LENGTH
    else:
        preset, v, batches, length = "small", data.VOCAB_SIZE, DECODING_BATCHES, DECODING_LENGTH
    config = ModelConfig.preset(preset, v, v)
    chosen = [decoding.Cell(b, length, s) for b in batches for s in decoding.SEARCHES]
    with tempfile.TemporaryDirectory(prefix="aiayn-gpu-decoding-") as tmp:
        built = decoding.grid(config, chosen, Path(tmp), device, with_ct2=False)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    names = {key: f"{key[0].name} {key[1]}" for key in built.candidates}
    timed = interleaved(
        {names[key]: fn for key, fn in built.candidates.items()},
        repeats=repeats,
        warmup=1,
        synchronize=sync,
    )
    results = decoding.results({key: timed[names[key]] for key in built.candidates})
    return {"table": decoding.table(results), "cells": [r.to_dict() for r in results]}


def summary(facts: dict[str, Any], parts: dict[str, Any]) -> str:
    """The Markdown that goes into docs/benchmarks.md."""
    what = facts.get("card") or f"cpu ({facts.get('cpu_capability')})"
    lines = [f"# GPU run: {what}, torch {facts['torch']}, CUDA {facts.get('cuda')}", ""]
    for precision in PRECISIONS:
        part = parts["training"][precision]
        lines += [f"## Training, {precision}", "", "```", part["table"], "```", ""]
        lines += [f"- {h}" for h in part["headlines"]]
        kernels = ", ".join(part["checks"]["sdpa_kernels"]) or "none found"
        lines.append(f"- SDPA kernels in one update of ours: {kernels}")
        syncs = part["checks"]["host_syncs"]
        if syncs is None:
            lines.append("- host syncs: not measured (not on CUDA)")
        else:
            lines.append(f"- host syncs in one update of ours: {len(syncs)}")
            lines += [f"  - {s}" for s in syncs[:10]]
        lines.append("")
    lines += ["## Decoding (float32, TF32 on)", "", "```", parts["decoding"]["table"], "```", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu", description="Issue #15's GPU run, in one command."
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu.json and gpu.md")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--data-dir", type=Path, help="folder with the Multi30k files")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (>= 5)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, 2 rounds: checks the script, not the card"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(
            f"--device cuda: torch {torch.__version__} sees no CUDA device here "
            "(to check the script on a CPU: --device cpu --smoke)"
        )
    if args.repeats < 5 and not args.smoke:
        parser.error("--repeats must be at least 5 (medians of at least 5 rounds)")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.perf_counter()
    device = torch.device(args.device)
    repeats = 2 if args.smoke else args.repeats
    if device.type == "cuda":
        # TF32 for float32 matmuls and convolutions: how float32 runs on CUDA when allowed.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
    facts = device_facts(device)
    print(f"benchmarks.gpu: {json.dumps(facts)}", flush=True)
    parts: dict[str, Any] = {"training": {}}
    for precision in PRECISIONS:
        t0 = time.perf_counter()
        settings = Settings(
            quick=args.smoke,
            device=device,
            precision=precision,
            repeats=repeats,
            warmup=1,
            multi30k_batches=1 if args.smoke else 4,
            data_dir=args.data_dir,
            peak_sizes=SMOKE_PEAK_SIZES if args.smoke else None,
        )
        cases, checks = training_part(settings, args.smoke)
        part = {
            "table": format_table(cases),
            "headlines": [line for c in cases for line in c.headlines],
            "cases": [c.to_dict() for c in cases],
            "checks": checks,
            "seconds": time.perf_counter() - t0,
        }
        parts["training"][precision] = part
        print(f"\ntraining, {precision} ({part['seconds']:.0f} s)\n{part['table']}", flush=True)
        print("\n".join([*part["headlines"], json.dumps(checks)]), flush=True)
    t0 = time.perf_counter()
    parts["decoding"] = decoding_part(device, repeats, args.smoke)
    parts["decoding"]["seconds"] = time.perf_counter() - t0
    print(f"\ndecoding ({parts['decoding']['seconds']:.0f} s)\n{parts['decoding']['table']}")
    result = {
        "command": " ".join(["python -m benchmarks.gpu", *map(shlex.quote, argv or sys.argv[1:])]),
        "machine": facts,
        "smoke": args.smoke,
        "repeats": repeats,
        "parts": parts,
        "seconds": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "gpu.md").write_text(summary(facts, parts))
    print(f"\nwrote {args.out / 'gpu.json'} and gpu.md in {result['seconds']:.0f} s", flush=True)
    return result


if __name__ == "__main__":
    main()
