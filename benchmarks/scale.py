"""Data at scale: `aiayn prepare` on a WMT-sized corpus, and training memory against corpus size.

    python -m benchmarks.scale [--pairs 4500000] [--small 29000] [--workdir /tmp/aiayn-scale]
                               [--json FILE] [--quick]

1. Generates two corpora (English-German, from Multi30k's training sentences: each line joins
   two or three random sentences, the same on both sides, so that a side averages >= 25
   words, as WMT14's does): ``--pairs`` and ``--small`` lines, plain text under ``--workdir``.
2. Prepares each with `aiayn prepare` (a subprocess; all cores): wall time, and peak resident
   memory of the main process and of all its processes together (polled from /proc).
3. Trains the tiny preset for 100 updates from each dataset (a fresh process each): start-up
   seconds (to the trainer ready) and resident memory after the updates: ``VmRSS``, and its
   parts ``RssAnon`` (the process's own memory) and ``RssFile`` (pages of mapped files, which
   the page cache shares and can drop).
4. Times the sampler's epoch planning (``TokenBatchSampler.plan``) on the big lengths array.
5. Start-up, the issue's "within 10%": seconds from process start to the first update ready
   (run folder set up, dataset opened and checked, model built, first epoch planned), in fresh
   processes alternating between the two datasets ``--startup-repeats`` times; medians, ranges
   and the median ratio.

``--quick`` (a test runs it) does the same at 200,000 vs 20,000 pairs, with a vocabulary of
500 learnt on 10,000 sentences and batches of 256 tokens. Prints
one JSON object (and writes it to ``--json``). Needs the Multi30k files ($AIAYN_DATA_DIR or
$AIAYN_TEST_DATA or ``--data-dir``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

STEPS = 100
# --quick: the memory test (tests/test_data_prepared.py runs it)
QUICK = {"pairs": 200_000, "small": 20_000, "steps": 100, "vocab_size": 500, "sample": 10_000}
QUICK_STARTUP_REPEATS = 1
QUICK_MAX_TOKENS = 256  # small batches: the test is about memory, not speed


def make_corpus(folder: Path, pairs: int, data_dir: str | None, seed: int = 0) -> dict[str, Any]:
    """Write ``pairs`` English-German lines of joined Multi30k sentences to folder/{en,de}.

    Args:
        folder: Where to write ``train.en`` and ``train.de`` (created).
        pairs: Lines to write.
        data_dir: The Multi30k folder.
        seed: Which sentences are joined.

    Returns:
        The paths and the average words per line of each side.
    """
    from aiayn.data import load_multi30k

    base = load_multi30k("train", "en", "de", data_dir=data_dir)
    en, de = np.array([s for s, _ in base], dtype=object), np.array([t for _, t in base], object)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"en": folder / "train.en", "de": folder / "train.de"}
    rng = np.random.default_rng(seed)
    words = {"en": 0, "de": 0}
    with (
        paths["en"].open("w", encoding="utf-8") as fe,
        paths["de"].open("w", encoding="utf-8") as fd,
    ):
        for start in range(0, pairs, 100_000):
            n = min(100_000, pairs - start)
            picks = rng.integers(0, len(base), size=(n, 3))
            three = rng.random(n) < 0.3  # two sentences a line, three on 30% of lines
            for side, sentences, f in (("en", en, fe), ("de", de, fd)):
                lines = [
                    " ".join(sentences[row[: 3 if t else 2]])
                    for row, t in zip(picks, three, strict=True)
                ]
                words[side] += sum(line.count(" ") + 1 for line in lines)
                f.write("\n".join(lines) + "\n")
    corpus = {
        "src": str(paths["en"]),
        "tgt": str(paths["de"]),
        "pairs": pairs,
        "words_per_line": {k: round(v / pairs, 2) for k, v in words.items()},
    }
    (folder / "corpus.json").write_text(json.dumps(corpus))  # written last: the corpus is whole
    return corpus


def corpus_at(folder: Path, pairs: int, data_dir: str | None) -> dict[str, Any]:
    """The corpus ``make_corpus`` wrote in ``folder`` before, else a new one."""
    done = folder / "corpus.json"
    if done.exists() and json.loads(done.read_text())["pairs"] == pairs:
        return json.loads(done.read_text())
    return make_corpus(folder, pairs, data_dir)


def _tree_rss_kib(root: int) -> tuple[int, int]:
    """(RSS of ``root``, RSS of ``root`` and all its descendants), in KiB, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry.name)] = int(line.split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    return rss.get(root, 0), sum(rss.get(p, 0) for p in tree)


def run_measured(cmd: list[str], interval: float = 0.5) -> dict[str, Any]:
    """Run a command; its wall time, the CPU time of its process tree, and the peak RSS of it
    and of its process tree (MiB, polled every ``interval`` seconds)."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = [0, 0]

    def poll() -> None:
        while process.poll() is None:
            main, tree = _tree_rss_kib(process.pid)
            peaks[0], peaks[1] = max(peaks[0], main), max(peaks[1], tree)
            time.sleep(interval)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = process.communicate()
    watcher.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({process.returncode}):\n{err[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the whole tree, once waited for
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_rss_main_mib": round(peaks[0] / 1024, 1),
        "peak_rss_all_mib": round(peaks[1] / 1024, 1),
        "stdout": out.strip(),
    }


def prepare(corpus: dict[str, Any], out: Path, options: list[str]) -> dict[str, Any]:
    """`aiayn prepare` the corpus into ``out`` (replacing it) with more options, measured."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "aiayn", "prepare", "--src-file", corpus["src"]]
    cmd += ["--tgt-file", corpus["tgt"], "--out", str(out), *options]
    measured = run_measured(cmd)
    manifest = json.loads((out / "manifest.json").read_text())
    measured["phases_s"] = manifest["seconds"]
    measured["train_pairs"] = manifest["splits"]["train"]["pairs"]
    measured["bytes"] = sum(f["bytes"] for f in manifest["files"].values())
    return measured


def train_rss(
    dataset: str | Path, out: str | Path, steps: int, max_tokens: int = 1024
) -> dict[str, Any]:
    """In this process: train the tiny preset from a prepared dataset; start-up time and RSS.

    Args:
        dataset: The prepared dataset folder.
        out: A fresh run folder.
        steps: Updates to take.
        max_tokens: Tokens per batch.

    Returns:
        ``startup_s`` (process start to the trainer ready), ``plan_s`` (the first epoch's
        batch plan), ``rss_mib``/``rss_anon_mib``/``rss_file_mib`` after the updates.
    """
    import torch

    from aiayn.config import RunConfig
    from aiayn.data import DataConfig
    from aiayn.pipeline import prepare as prepare_run
    from aiayn.training import TrainConfig

    torch.set_num_threads(1)
    train = TrainConfig(
        max_steps=steps, max_tokens=max_tokens, valid_bleu=0, progress=False, device="cpu"
    )
    config = RunConfig(
        model={"preset": "tiny"},
        data=DataConfig(corpus="prepared", prepared_dir=str(dataset)),
        train=train,
    )
    prepared = prepare_run(config, out)
    startup = time.perf_counter() - _PROCESS_START
    clock = time.perf_counter()
    prepared.trainer.sampler.plan(0)
    plan = time.perf_counter() - clock
    if steps == 0:  # start-up only
        return {"startup_s": round(startup, 3), "plan_s": round(plan, 3)}
    result = prepared.trainer.fit()
    status = {k: _status_mib(k) for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}
    return {
        "pairs": len(prepared.trainer.train_data),
        "steps": result.steps,
        "startup_s": round(startup, 2),
        "plan_s": round(plan, 3),
        "rss_mib": status["VmRSS"],
        "rss_anon_mib": status["RssAnon"],
        "rss_file_mib": status["RssFile"],
        "peak_rss_mib": status["VmHWM"],
    }


_PROCESS_START = time.perf_counter()


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {field} in /proc/self/status")


def train_rss_subprocess(
    dataset: Path, out: Path, steps: int, max_tokens: int = 1024
) -> dict[str, Any]:
    """``train_rss`` in a fresh process (so that nothing of this one is counted), into a new
    ``out`` (an earlier run there is deleted)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "benchmarks.scale", "--train-rss", str(dataset), str(out)]
    cmd += ["--max-tokens", str(max_tokens)]
    done = subprocess.run(
        [*cmd, "--steps", str(steps)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(__file__).resolve().parents[1],  # where `benchmarks` is a package
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


SIZES = ("big", "small")


def startup_seconds(folders: dict[str, Path], repeats: int, max_tokens: int) -> dict[str, Any]:
    """Seconds from process start to the first update being ready (run set up, first epoch
    planned), for each corpus, in fresh processes alternating between them ``repeats`` times.

    Args:
        folders: Corpus name -> its folder (with ``prepared/``).
        repeats: Rounds; each starts one process per corpus.
        max_tokens: Tokens per batch.

    Returns:
        Per corpus the median and range of the seconds, and the median ratio big / small.
    """

    seconds: dict[str, list[float]] = {name: [] for name in folders}
    for _ in range(repeats):
        for name, folder in folders.items():
            measured = train_rss_subprocess(
                folder / "prepared", folder / "startup-run", 0, max_tokens
            )
            seconds[name].append(measured["startup_s"] + measured["plan_s"])
    result: dict[str, Any] = {
        name: {
            "median_s": round(float(np.median(v)), 2),
            "min_s": round(min(v), 2),
            "max_s": round(max(v), 2),
        }
        for name, v in seconds.items()
    }
    if set(folders) == set(SIZES):
        ratios = [b / s for b, s in zip(seconds["big"], seconds["small"], strict=True)]
        result["ratio_big_small"] = round(float(np.median(ratios)), 3)
    return result


def plan_seconds(dataset: Path, max_tokens: int = 4096, repeats: int = 3) -> dict[str, float]:
    """Seconds to build the sampler (cut batches once) and to plan an epoch, on a dataset, as
    if done in the foreground (training does both in a background thread while it sets up)."""
    from aiayn.data import TokenBatchSampler
    from aiayn.data.prepared import PreparedDataset

    lengths = PreparedDataset.open(dataset, verify="size").train.lengths
    clock = time.perf_counter()
    sampler = TokenBatchSampler(lengths, max_tokens, seed=1)
    len(sampler)  # waits for the cut
    build = time.perf_counter() - clock
    sampler.plan(0)  # planned ahead while the cut was waited for: not timed
    plans = []
    for epoch in range(1, repeats + 1):
        clock = time.perf_counter()
        sampler.plan(epoch)
        plans.append(time.perf_counter() - clock)
    return {
        "build_s": round(build, 2),
        "plan_s": round(float(np.median(plans)), 2),
        "batches": len(sampler),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--pairs", type=int, default=4_500_000, help="pairs of the big corpus")
    parser.add_argument("--small", type=int, default=29_000, help="pairs of the small corpus")
    parser.add_argument("--steps", type=int, default=STEPS, help="updates of each training")
    parser.add_argument("--max-tokens", type=int, default=1024, help="tokens per batch")
    parser.add_argument("--vocab-size", type=int, default=32000, help="as in `aiayn prepare`")
    parser.add_argument("--vocab-sample", type=int, help="as in `aiayn prepare`")
    parser.add_argument("--subword", default="unigram", help="unigram or bpe")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/aiayn-scale"))
    parser.add_argument("--data-dir", default=None, help="Multi30k folder")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument(
        "--startup-repeats", type=int, default=5, help="rounds of the start-up measurement"
    )
    parser.add_argument(
        "--quick", action="store_true", help="200,000 vs 20,000 pairs, a small vocabulary"
    )
    parser.add_argument("--train-rss", nargs=2, metavar=("DATASET", "RUN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_rss:
        result = train_rss(*args.train_rss, steps=args.steps, max_tokens=args.max_tokens)
        print(json.dumps(result))
        return result
    if args.quick:
        args.pairs, args.small, args.steps = QUICK["pairs"], QUICK["small"], QUICK["steps"]
        args.vocab_size, args.vocab_sample = QUICK["vocab_size"], QUICK["sample"]
        args.max_tokens = QUICK_MAX_TOKENS
        args.startup_repeats = QUICK_STARTUP_REPEATS
    data_dir = (
        args.data_dir or os.environ.get("AIAYN_DATA_DIR") or os.environ.get("AIAYN_TEST_DATA")
    )
    result: dict[str, Any] = {"quick": args.quick, "cpu": _cpu(), "corpora": {}}
    for name, pairs in zip(SIZES, (args.pairs, args.small), strict=True):
        folder = args.workdir / f"{name}-{pairs}"
        corpus = corpus_at(folder / "text", pairs, data_dir)
        options = ["--vocab-size", str(args.vocab_size), "--set", f"data.subword={args.subword}"]
        if args.vocab_sample is not None:
            options += ["--vocab-sample", str(args.vocab_sample)]
        measured = prepare(corpus, folder / "prepared", options)
        measured.pop("stdout")
        run = train_rss_subprocess(folder / "prepared", folder / "run", args.steps, args.max_tokens)
        result["corpora"][name] = {"corpus": corpus, "prepare": measured, "train": run}
    result["sampler"] = plan_seconds(args.workdir / f"big-{args.pairs}" / "prepared")
    result["startup"] = startup_seconds(
        {k: args.workdir / f"{k}-{getattr(args, 'pairs' if k == 'big' else k)}" for k in SIZES},
        args.startup_repeats,
        args.max_tokens,
    )
    big, small = (result["corpora"][k]["train"] for k in ("big", "small"))
    result["rss_ratio"] = round(big["rss_mib"] / small["rss_mib"], 3)
    result["rss_anon_ratio"] = round(big["rss_anon_mib"] / small["rss_anon_mib"], 3)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return result


def _cpu() -> dict[str, Any]:
    import torch

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {
        "model": model,
        "cores": len(os.sched_getaffinity(0)),
        "capability": torch.backends.cpu.get_cpu_capability(),
    }


if __name__ == "__main__":
    main()
