"""`aiayn tune`: choose beam size, length penalty (and checkpoint) on validation data.

Translates the validation split once per setting, scores each, prints the table, and writes the
best setting into the run's run.json (`decode`, and `default_checkpoint` when several
checkpoints were compared), which `translate` and `evaluate` then use by default. Tuning happens
on validation data only; the test set is for the final score.

Example:
    aiayn tune --run runs/en-de --beams 1 4 5 --alphas 0.6 1.0 --checkpoints average last
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from aiayn.cli.common import add_run_options
from aiayn.config import RunConfig
from aiayn.data import load_multi30k, load_multi30k_tok_reference
from aiayn.decoding.translator import Translator
from aiayn.evaluation.report import evaluate_translations
from aiayn.pipeline import resolve_device
from aiayn.runs import RunDir

METRICS = ("bleu_tok_lc", "sacrebleu", "chrf")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "tune",
        help="choose beam size and length penalty on validation data",
        description="Grid-searches beam size x length penalty on a validation split and "
        "stores the best setting in the run, so that translate/evaluate use it by default.",
    )
    add_run_options(p)
    p.add_argument("--split", default="val", help="Multi30k validation split (default: val)")
    p.add_argument("--data-dir", help="folder with the Multi30k files (default: the run's)")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 4, 5], help="beam sizes")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.6, 1.0], help="length penalties")
    p.add_argument(
        "--max-sentences", type=int, help="tune on the first N sentences only (default: all)"
    )
    p.add_argument(
        "--checkpoints",
        nargs="+",
        metavar="NAME",
        help="compare checkpoints too: 'default', 'last', a folder name under checkpoints/ "
        "(average, best, step-...) or a path (default: the run's default checkpoint only)",
    )
    p.add_argument("--metric", choices=METRICS, default="bleu_tok_lc", help="what to maximise")
    p.add_argument("--dry-run", action="store_true", help="print the table, change nothing")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Score every setting on the validation split and store the best one."""
    if args.split.startswith("test"):
        raise ValueError(f"--split {args.split}: tune on validation data, never on a test set")
    if min(args.beams) < 1 or min(args.alphas) < 0:
        raise ValueError("--beams must be >= 1 and --alphas >= 0")
    run_dir = RunDir(args.run)
    run_dir.info()  # a clear error if this is not a run
    data = RunConfig.load(run_dir.config_file).data
    data_dir = args.data_dir or data.data_dir
    pairs = load_multi30k(args.split, data.src_lang, data.tgt_lang, data_dir=data_dir)
    if args.max_sentences is not None:
        if args.max_sentences < 1:
            raise ValueError(f"--max-sentences must be >= 1, got {args.max_sentences}")
        pairs = pairs[: args.max_sentences]
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    # Validation has no shipped tokenised reference; the scorer builds it exactly as the
    # shipped test references were made (tests/test_scoring.py proves that on test_2016).
    tok_refs = load_multi30k_tok_reference(
        args.split, data.tgt_lang, data_dir=data_dir, download=False
    )
    if tok_refs is not None:
        tok_refs = tok_refs[: len(sources)]
    checkpoints = resolve_checkpoints(run_dir, args.checkpoints, args.checkpoint)
    # Greedy search ignores the length penalty: score it once.
    settings = sorted({(b, 0.0 if b == 1 else a) for b in args.beams for a in args.alphas})
    print(f"{run_dir.path}: {len(sources)} {args.split} sentences, maximising {args.metric}")
    print(
        f"  {'checkpoint':<14} {'beam':>4} {'alpha':>5} {'BLEU tok-lc':>11} {'sacreBLEU':>9} "
        f"{'chrF':>6} {'s':>6}"
    )
    results = []
    for checkpoint in checkpoints:
        translator = Translator.from_run(run_dir.path, checkpoint, resolve_device(args.device))
        for beam, alpha in settings:
            start = time.perf_counter()
            hypotheses = translator.translate(sources, beam_size=beam, alpha=alpha)
            seconds = time.perf_counter() - start
            report = evaluate_translations(hypotheses, references, data.tgt_lang, tok_refs)
            scores = {
                "bleu_tok_lc": report.bleu_tok_lc,
                "sacrebleu": report.sacre.bleu,
                "chrf": report.sacre.chrf,
            }
            setting = {"checkpoint": str(checkpoint), "beam_size": beam, "alpha": alpha}
            results.append({**setting, **scores, "seconds": seconds})
            print(
                f"  {checkpoint.name:<14} {beam:>4} {alpha:>5.2f} {scores['bleu_tok_lc']:>11.2f} "
                f"{scores['sacrebleu']:>9.2f} {scores['chrf']:>6.2f} {seconds:>6.1f}"
            )
    # Ties go to the smaller beam (the same score for less decoding time), then to the
    # checkpoint listed first.
    best = max(
        enumerate(results),
        key=lambda ir: (round(ir[1][args.metric], 2), -ir[1]["beam_size"], -ir[0]),
    )[1]
    decode = dataclasses.replace(
        translator.decode, beam_size=best["beam_size"], alpha=best["alpha"]
    )
    chosen = Path(best["checkpoint"])
    print(
        f"best: {chosen.name}, beam {decode.beam_size}, alpha {decode.alpha} ({args.metric} "
        f"{best[args.metric]:.2f})"
    )
    if args.dry_run:
        return 0
    run_dir.update_info(
        decode=dataclasses.asdict(decode),
        decode_tuning={"split": args.split, "metric": args.metric, "results": results},
    )
    if len(checkpoints) > 1:
        run_dir.set_default_checkpoint(chosen)
    print(f"stored in {run_dir.info_file}; translate and evaluate now use it by default")
    return 0


def resolve_checkpoints(
    run_dir: RunDir, names: list[str] | None, checkpoint: Path | None
) -> list[Path]:
    """The checkpoint folders to compare: by name, or the one --checkpoint / the run's default."""
    if not names:
        return [checkpoint if checkpoint is not None else run_dir.default_checkpoint()]
    found = []
    for name in names:
        if name == "default":
            path = run_dir.default_checkpoint()
        elif name == "last":
            path = run_dir.latest_checkpoint()
            if path is None:
                raise ValueError(f"--checkpoints last: {run_dir.path} has no step checkpoint")
        elif (run_dir.checkpoints / name).is_dir():
            path = run_dir.checkpoints / name
        elif Path(name).is_dir():
            path = Path(name)
        else:
            raise ValueError(
                f"--checkpoints: no checkpoint {name!r} in {run_dir.checkpoints} (try default, "
                "last, average, best, step-...)"
            )
        if path not in found:
            found.append(path)
    return found
