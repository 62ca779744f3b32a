"""`aiayn tune`: choose beam size, length penalty (and checkpoint) on validation data.

Translates the run's validation data once per setting, scores each, prints the table, and
stores the winner in the run's run.json, which `translate` and `evaluate` then use by default.
Only what was chosen is stored, and the output lists it key by key:

- `decode.beam_size`, and `decode.alpha` only when beam search won (greedy search has no
  length penalty, so a greedy win leaves the run's alpha as it was);
- `default_checkpoint` when checkpoints were chosen on the command line (`--checkpoints`
  compares several; `--checkpoint X` tunes X, which becomes the default);
- `decode_tuning`: the data and number of sentences tuned on, the metric and every result.

Tuning is for validation data: by default the run's own (a Multi30k run: its validation split,
`val`; a synthetic task: its generated validation pairs; files or TSV: the validation files or
the held-out slice). `--split` names another Multi30k split (never a test split) and
`--src-file/--ref-file` your own validation files; their names are not checked, but settings
tuned on test data make that test score optimistic.

Example:
    aiayn tune --run runs/en-de --beams 1 4 5 --alphas 0.6 1.0 --checkpoints average last
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from aiayn.cli.common import add_run_options, positive
from aiayn.config import RunConfig
from aiayn.data import SPLITS
from aiayn.decoding.translator import Translator
from aiayn.errors import UsageError
from aiayn.evaluation.scoring_data import tuning_data
from aiayn.pipeline import resolve_device
from aiayn.runs import RunDir, step_checkpoints

METRICS = ("bleu_tok_lc", "sacrebleu", "chrf", "exact_match")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "tune",
        help="choose beam size and length penalty on validation data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(p)
    p.add_argument(
        "--split",
        choices=SPLITS,
        help="a Multi30k split other than a test split, for a Multi30k run whose languages it "
        "has (default: the run's validation data)",
    )
    p.add_argument("--data-dir", help="folder with the Multi30k files (default: the run's)")
    p.add_argument("--src-file", help="your own validation source file (with --ref-file)")
    p.add_argument("--ref-file", help="its references, aligned with --src-file")
    p.add_argument(
        "--lang",
        help="language whose Moses rules tokenise for tokenised BLEU, for your own files or a "
        "non-Multi30k run (default: the run's data.tgt_lang)",
    )
    p.add_argument("--beams", type=int, nargs="+", default=[1, 4, 5], help="beam sizes")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.6, 1.0], help="length penalties")
    p.add_argument(
        "--max-sentences",
        type=int,
        help="tune on the first N sentences only (default: all; recorded in run.json)",
    )
    p.add_argument(
        "--checkpoints",
        nargs="+",
        metavar="NAME",
        help="compare checkpoints too: 'default', 'last', a folder name under checkpoints/ "
        "(average, best, step-...) or a path; the winner becomes the run's default "
        "(default: the run's default checkpoint, or --checkpoint)",
    )
    p.add_argument("--metric", choices=METRICS, default="bleu_tok_lc", help="what to maximise")
    p.add_argument(
        "--workers",
        type=positive(int),
        help="batches decoded at once, torch's threads shared out among them (faster on "
        "several cores; see `aiayn translate --help`); not stored (default: the run's)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the table, store nothing")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Score every setting on validation data and store the best one."""
    if min(args.beams) < 1 or min(args.alphas) < 0:
        raise UsageError("--beams must be >= 1 and --alphas >= 0")
    if args.max_sentences is not None and args.max_sentences < 1:
        raise UsageError(f"--max-sentences must be >= 1, got {args.max_sentences}")
    run_dir = RunDir(args.run)
    info = run_dir.info()  # also a clear error if this is not a run
    data = tuning_data(
        RunConfig.load(run_dir.config_file).data,
        split=args.split,
        src_file=args.src_file,
        ref_file=args.ref_file,
        lang=args.lang,
        data_dir=args.data_dir,
    )
    available = len(data)
    if args.max_sentences is not None:
        data = data.head(args.max_sentences)
    checkpoints = resolve_checkpoints(run_dir, args.checkpoints, args.checkpoint)
    # Greedy search has no length penalty: score it once, with no alpha.
    settings = sorted(
        {(b, None if b == 1 else a) for b in args.beams for a in args.alphas},
        key=lambda s: (s[0], s[1] or 0.0),
    )
    print(f"{run_dir.path}: tuning on {data.description}")
    if len(data) < available:
        print(f"only the first {len(data)} of {available} sentences (--max-sentences)")
    print(f"maximising {args.metric}; tokenised BLEU in {data.lang}")
    exact = "  exact" if data.show_exact_match else ""
    print(
        f"  {'checkpoint':<14} {'beam':>4} {'alpha':>5} {'BLEU tok-lc':>11} {'sacreBLEU':>9} "
        f"{'chrF':>6}{exact} {'s':>6}"
    )
    results = []
    for checkpoint in checkpoints:
        translator = Translator.from_run(run_dir.path, checkpoint, resolve_device(args.device))
        for beam, alpha in settings:
            start = time.perf_counter()
            hypotheses = translator.translate(
                data.sources, beam_size=beam, alpha=alpha, workers=args.workers
            )
            seconds = time.perf_counter() - start
            scores = data.score(hypotheses).metrics()
            setting = {"checkpoint": str(checkpoint), "beam_size": beam, "alpha": alpha}
            results.append({**setting, **scores, "seconds": round(seconds, 2)})
            shown = "-" if alpha is None else f"{alpha:.2f}"
            exact = f" {scores['exact_match']:>6.2f}" if data.show_exact_match else ""
            print(
                f"  {checkpoint.name:<14} {beam:>4} {shown:>5} {scores['bleu_tok_lc']:>11.2f} "
                f"{scores['sacrebleu']:>9.2f} {scores['chrf']:>6.2f}{exact} {seconds:>6.1f}"
            )
    best = choose_best(results, args.metric)
    alpha = "" if best["alpha"] is None else f", alpha {best['alpha']}"
    print(
        f"best: {Path(best['checkpoint']).name}, beam {best['beam_size']}{alpha} "
        f"({args.metric} {best[args.metric]:.2f})"
    )
    if args.dry_run:
        print("--dry-run: nothing stored")
        return 0
    decode = dict(info.get("decode") or {})
    decode["beam_size"] = best["beam_size"]
    stored = [f"decode.beam_size: {best['beam_size']}"]
    if best["alpha"] is not None:
        decode["alpha"] = best["alpha"]
        stored.append(f"decode.alpha: {best['alpha']}")
    tuning = {
        "data": data.description,
        "sentences": len(data),
        "available_sentences": available,
        "metric": args.metric,
        "results": results,
    }
    run_dir.update_info(decode=decode, decode_tuning=tuning)
    if args.checkpoints or args.checkpoint is not None:
        run_dir.set_default_checkpoint(Path(best["checkpoint"]))
        stored.append(f"default_checkpoint: {run_dir.info()['default_checkpoint']}")
    stored.append(
        f"decode_tuning: {len(results)} results on {len(data)} sentences "
        f"(of {available}), metric {args.metric}"
    )
    print(f"stored in {run_dir.info_file}:")
    for line in stored:
        print("  " + line)
    if best["alpha"] is None:
        print(
            f"  (decode.alpha left at {decode.get('alpha', 'its default')}: greedy search has no "
            "length penalty)"
        )
    print("translate and evaluate now use these by default")
    return 0


def choose_best(results: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """The best result row by `metric` (scores compared to 2 decimals, as printed).

    Ties go to the smaller beam (the same score for less decoding time), then to the row
    listed first (the checkpoint named first).
    """
    return max(
        enumerate(results),
        key=lambda ir: (round(ir[1][metric], 2), -ir[1]["beam_size"], -ir[0]),
    )[1]


def resolve_checkpoints(
    run_dir: RunDir, names: list[str] | None, checkpoint: Path | None
) -> list[Path]:
    """The checkpoint folders to compare: by name, or the one --checkpoint / the run's default.

    Raises:
        UsageError: both --checkpoint and --checkpoints, or a name the run does not have (the
            message lists the checkpoints it has).
    """
    if names and checkpoint is not None:
        raise UsageError(
            "--checkpoint and --checkpoints: give one (--checkpoints default X compares the "
            "run's default checkpoint with X)"
        )
    if not names:
        return [checkpoint if checkpoint is not None else run_dir.default_checkpoint()]
    found: list[Path] = []
    for name in names:
        if name == "default":
            path = run_dir.default_checkpoint()
        elif name == "last":
            path = run_dir.latest_checkpoint()
            if path is None:
                raise UsageError(
                    f"--checkpoints last: {run_dir.path} has no step checkpoint; {_has(run_dir)}"
                )
        elif (run_dir.checkpoints / name).is_dir():
            path = run_dir.checkpoints / name
        elif Path(name).is_dir():
            path = Path(name)
        else:
            hint = f" (make one with `aiayn average --run {run_dir.path}`)"
            raise UsageError(
                f"--checkpoints {name}: {run_dir.path} has no checkpoint {name!r}"
                f"{hint if name == 'average' else ''}; {_has(run_dir)}"
            )
        if all(path.resolve() != other.resolve() for other in found):
            found.append(path)
    return found


def _has(run_dir: RunDir) -> str:
    """'it has step-00000100, best' or 'it has none': the checkpoints a user can name."""
    steps = step_checkpoints(run_dir.checkpoints)
    others = []
    if run_dir.checkpoints.is_dir():
        others = sorted(
            p.name
            for p in run_dir.checkpoints.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p not in steps
        )
    names = [p.name for p in steps] + others
    return f"it has {', '.join(names)}" if names else "it has none"
