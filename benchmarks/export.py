"""Our decoder against the engines we export to (issue #13), on one trained run.

    python -m benchmarks.export --run runs/en-de [--split test_2016_flickr] [--threads 2]
        [--rounds 3] [--engines ours ours-int8 ours-k-finished ct2 ct2-int8 hf onnx onnx-int8]
        [--beam 1] [--workers 1 2] [--json FILE] [--workdir DIR] [--max-sentences N]
        [--data-dir DIR]

The run is exported once per engine (into --workdir, a temporary folder by default), then every
engine translates the same sentences greedily, or with --beam N beams (the run's length penalty:
GNMT's for ours, ONNX and transformers, CTranslate2's own for it), with the same
number of threads, in interleaved rounds (A B C A B C ...; the order rotates each round). Each
measurement runs in a process of its own, which loads the engine, translates everything once
untimed (first calls at each shape create kernels and fill caches), then once timed: engines in
one process disturb each other (ONNX Runtime's and OpenMP's worker threads keep spinning after a
call, taking the cores from the next engine). Reported per engine: BLEU (tokenised lowercased
and sacreBLEU) of its translations, how many of them equal ours, sentences/s (median over
rounds) and the speed-up over ours (median of the per-round ratios, which cancels most of this
machine's drift; OpenMP engines slow down many times over when another process takes a core,
so measure on an idle machine). An engine
whose extra is missing is reported as such and skipped, never silently dropped.

`--workers 1 2` measures each engine that can also with 2 batches decoded at once, the
threads shared out between them (`decode.workers` for ours, CTranslate2's inter_threads with
threads / 2 intra_threads each); such a row is named e.g. "ct2/w2".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from aiayn.config import RunConfig
from aiayn.decoding.translator import Translator
from aiayn.errors import AiaynError
from aiayn.evaluation.scoring_data import evaluation_data
from aiayn.export import load_source, write_export
from aiayn.export.formats import FORMATS
from benchmarks.machine import machine

# Engine name -> (export format, quantization); None: the run itself, in aiayn.
# Which engines take --workers: ours (decode.workers) and CTranslate2 (inter_threads).
ENGINES: dict[str, tuple[str, str | None] | None] = {
    "ours": None,
    "ours-int8": None,
    "ours-k-finished": None,  # beam search with CTranslate2's stopping rule (docs/export.md)
    "ct2": ("ct2", None),
    "ct2-int8": ("ct2", "int8"),
    "hf": ("hf", None),
    "onnx": ("onnx", None),
    "onnx-int8": ("onnx", "int8"),
}

Translate = Callable[[list[str]], list[str]]


def takes_workers(name: str) -> bool:
    """Whether engine `name` can decode several batches at once (--workers)."""
    return ENGINES[name] is None or ENGINES[name][0] == "ct2"  # type: ignore[index]


def variant(name: str, workers: int) -> str:
    """The row name of engine `name` measured with `workers` (e.g. "ct2/w2")."""
    return name if workers == 1 else f"{name}/w{workers}"


def engine(
    name: str, run: Path, folder: Path | None, threads: int, beam: int = 1, workers: int = 1
) -> Translate:
    """A function translating sentences with engine `name` and `beam` beams (1: greedy),
    `workers` batches at a time sharing `threads` threads."""
    if ENGINES[name] is None:
        ours = Translator.from_run(run, quantization="int8" if name == "ours-int8" else "none")
        stopping = "k-finished" if name == "ours-k-finished" else None  # None: the run's
        return lambda texts: ours.translate(
            texts, beam_size=beam, stopping=stopping, workers=workers
        )
    assert folder is not None
    fmt = ENGINES[name][0]  # type: ignore[index]
    if fmt == "ct2":
        from aiayn.export.ct2.translator import Ct2Translator

        ct2 = Ct2Translator(folder, threads=max(1, threads // workers), workers=workers)
        return lambda texts: ct2.translate(texts, beam_size=beam)
    if workers != 1:
        raise ValueError(f"engine {name} has no workers option")
    if fmt == "hf":
        from aiayn.export.hf_translate import HFTranslator

        hf = HFTranslator.load(folder)
        return lambda texts: hf.translate(texts, beam_size=beam)
    from aiayn.export.onnx_runtime import OnnxTranslator

    onnx = OnnxTranslator(folder, threads=threads)
    return lambda texts: onnx.translate(texts, beam_size=beam)


def export_engines(run: Path, names: Sequence[str], workdir: Path) -> dict[str, Path | str]:
    """Export the run for each engine: name -> folder, or the one-line reason it could not."""
    source = load_source(run)
    folders: dict[str, Path | str] = {}
    for name in names:
        spec = ENGINES[name]
        if spec is None:
            continue
        fmt, quantization = spec
        writer = FORMATS.get(fmt)
        if writer is None:
            folders[name] = f"format {fmt!r} is not available in this version"
            continue
        try:
            folders[name] = write_export(
                workdir / name,
                source,
                fmt,
                lambda folder, w=writer, q=quantization: w(source, folder, quantization=q),
                force=True,
            )
        except AiaynError as error:
            folders[name] = str(error)
    return folders


def worker(
    name: str, run: Path, folder: Path | None, threads: int, beam: int, workers: int, io: Path
) -> None:
    """One measurement (in its own process): load, translate once untimed, once timed.

    Reads the sentences from `io`/sources.json, writes `io`/<name>.w<workers>.json with the
    outputs and the seconds of the timed pass.
    """
    torch.set_num_threads(threads)
    sources = json.loads((io / "sources.json").read_text())
    translate = engine(name, run, folder, threads, beam, workers)
    translate(sources)
    start = time.perf_counter()
    outputs = translate(sources)
    seconds = time.perf_counter() - start
    result = {"outputs": outputs, "seconds": seconds}
    (io / f"{name}.w{workers}.json").write_text(json.dumps(result))


def measure(
    cases: list[tuple[str, int]], folders: dict[str, Path | str], args: argparse.Namespace, io: Path
) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """Seconds per round of every (engine, workers) case (interleaved, rotating order) and its
    outputs, by row name."""
    seconds: dict[str, list[float]] = {variant(*case): [] for case in cases}
    outputs: dict[str, list[str]] = {}
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for r in range(args.rounds):
        for name, workers in cases[r % len(cases) :] + cases[: r % len(cases)]:
            folder = folders.get(name)
            command = [sys.executable, "-m", "benchmarks.export", "--run", str(args.run)]
            command += ["--worker", name, "--io", str(io), "--threads", str(args.threads)]
            command += ["--beam", str(args.beam), "--workers", str(workers)]
            if isinstance(folder, Path):
                command += ["--folder", str(folder)]
            subprocess.run(command, check=True, env=env)
            row = variant(name, workers)
            result = json.loads((io / f"{name}.w{workers}.json").read_text())
            seconds[row].append(result["seconds"])
            outputs.setdefault(row, result["outputs"])
    return seconds, outputs


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export", description=__doc__)
    parser.add_argument("--run", required=True, type=Path, help="a trained run")
    parser.add_argument("--split", help="Multi30k split (default: as `aiayn evaluate`)")
    parser.add_argument("--threads", type=int, default=2, help="threads of every engine")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per engine")
    parser.add_argument("--beam", type=int, default=1, help="beams of every engine (1: greedy)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="batches decoded at once, sharing the threads; each engine that can is measured "
        "with each value (module docstring)",
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=list(ENGINES),
        default=[name for name in ENGINES if name != "ours-k-finished"],  # beam only: ask for it
    )
    parser.add_argument("--data-dir", help="folder with the Multi30k files (default: the run's)")
    parser.add_argument("--max-sentences", type=int, help="only the first N sentences")
    parser.add_argument("--workdir", type=Path, help="where the exports go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--worker", choices=list(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--io", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Export, translate, score and time every engine; every figure, with the machine."""
    if "ours" not in args.engines:
        args.engines = ["ours", *args.engines]
    if 1 not in args.workers or min(args.workers) < 1:
        raise SystemExit("--workers: values >= 1, and 1 among them (the ours row is the yardstick)")
    torch.set_num_threads(args.threads)
    data = evaluation_data(
        RunConfig.load(args.run / "config.yaml").data, split=args.split, data_dir=args.data_dir
    )
    if args.max_sentences:
        data = data.head(args.max_sentences)
    with tempfile.TemporaryDirectory(prefix="aiayn-export-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        folders = export_engines(args.run, args.engines, workdir)
        skipped = {name: f for name, f in folders.items() if isinstance(f, str)}
        for name in args.engines:
            if name not in skipped and ENGINES[name] is not None:
                try:  # is the engine installed? (one line if not)
                    engine(name, args.run, folders[name], args.threads)  # type: ignore[arg-type]
                except AiaynError as error:
                    skipped[name] = str(error)
        cases = [
            (n, w)
            for n in args.engines
            if n not in skipped
            for w in args.workers
            if w == 1 or takes_workers(n)
        ]
        for n in args.engines:
            if n not in skipped and not takes_workers(n) and set(args.workers) != {1}:
                skipped[variant(n, max(args.workers))] = "no workers option"
        io = Path(tmp)
        (io / "sources.json").write_text(json.dumps(data.sources))
        seconds, outputs = measure(cases, folders, args, io)
    rows = []
    for name in (variant(*case) for case in cases):
        card = data.score(outputs[name])
        same = sum(a == b for a, b in zip(outputs[name], outputs["ours"], strict=True))
        ratios = [o / s for o, s in zip(seconds["ours"], seconds[name], strict=True)]
        rows.append(
            {
                "engine": name,
                "bleu_tok_lc": card.report.bleu_tok_lc,
                "sacrebleu": card.report.sacre.bleu,
                "same_as_ours": same,
                "sentences": len(data.sources),
                "sentences_per_s": len(data.sources) / statistics.median(seconds[name]),
                "speedup_vs_ours": statistics.median(ratios),
                "seconds": seconds[name],
            }
        )
    info: dict[str, Any] = {
        "run": str(args.run),
        "data": data.description,
        "threads": args.threads,
        "beam": args.beam,
        "workers": args.workers,
        "rounds": args.rounds,
        "machine": machine(),
        "rows": rows,
        "skipped": skipped,
    }
    return info


def table(info: dict[str, Any]) -> str:
    """The markdown table docs/export.md shows, with what was measured on which machine."""
    rows = info["rows"]
    m = info["machine"]
    search = "greedy" if info["beam"] == 1 else f"beam {info['beam']}"
    lines = [
        f"{info['run']} on {rows[0]['sentences']} sentences of {info['data']}, {search}, "
        f"{info['threads']} threads, {info['rounds']} rounds",
        f"machine: {m.get('cpu_model')} ({m.get('cpu_capability')}), torch {torch.__version__}",
        "| engine | BLEU tok-lc | sacreBLEU | same as ours | sentences/s | vs ours |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['bleu_tok_lc']:.2f} | {r['sacrebleu']:.2f} | "
            f"{r['same_as_ours']}/{r['sentences']} | {r['sentences_per_s']:.1f} | "
            f"{r['speedup_vs_ours']:.2f}x |"
        )
    lines += [f"skipped {name}: {reason}" for name, reason in info["skipped"].items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Export, translate, score and time; print a markdown table (and write --json)."""
    args = parse_args(argv)
    if args.worker:
        workers = args.workers[0]
        worker(args.worker, args.run, args.folder, args.threads, args.beam, workers, args.io)
        return 0
    info = benchmark(args)
    print(table(info))
    if args.json:
        args.json.write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
