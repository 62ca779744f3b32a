"""`aiayn train`: train a model on a built-in task, Multi30k, or your own parallel text.

Examples:
    aiayn train                                   # the built-in reverse task, a few CPU minutes
    aiayn train --task add --out runs/add
    aiayn train --corpus multi30k --src de --tgt en --data-dir DIR --out runs/de-en
    aiayn train --config configs/multi30k_de_en.yaml --out runs/de-en
    aiayn train --out runs/de-en --resume         # continue where it stopped
    aiayn train --prepared data/wmt --config ... --out runs/wmt  # from `aiayn prepare`
    torchrun --nproc_per_node=2 -m aiayn train --config ... --out ...
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from aiayn.config import RunConfig, yaml_problem
from aiayn.data import TASKS, Corpus, Vocabularies
from aiayn.decoding.translator import Translator
from aiayn.errors import UsageError
from aiayn.evaluation.validation import exact_match, make_bleu_hook
from aiayn.model import PRESETS
from aiayn.pipeline import train
from aiayn.resuming import resume_changes
from aiayn.run_sharing import resumed_config
from aiayn.training import ValidationHook
from aiayn.training.distributed import process_info

# The quickstart: what `aiayn train` with no options does.
DEFAULT_OUT = Path("runs/quickstart")

# CLI option -> (config section, field). Only options given on the command line override.
OPTION_FIELDS = {
    "corpus": ("data", "corpus"),
    "task": ("data", "task"),
    "src": ("data", "src_lang"),
    "tgt": ("data", "tgt_lang"),
    "data_dir": ("data", "data_dir"),
    "src_file": ("data", "src_file"),
    "tgt_file": ("data", "tgt_file"),
    "valid_src_file": ("data", "valid_src_file"),
    "valid_tgt_file": ("data", "valid_tgt_file"),
    "tsv": ("data", "tsv"),
    "max_len": ("data", "max_len"),
    "vocab_size": ("data", "vocab_size"),
    "prepared": ("data", "prepared_dir"),
    "preset": ("model", "preset"),
    "max_steps": ("train", "max_steps"),
    "max_epochs": ("train", "max_epochs"),
    "max_minutes": ("train", "max_minutes"),
    "max_tokens": ("train", "max_tokens"),
    "update_freq": ("train", "update_freq"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
    "precision": ("train", "precision"),
    "lr_factor": ("train", "lr_factor"),
    "warmup": ("train", "warmup"),
    "label_smoothing": ("train", "label_smoothing"),
    "clip_norm": ("train", "clip_norm"),
    "save_every": ("train", "save_every"),
    "keep_last": ("train", "keep_last"),
    "average_last": ("train", "average_last"),
    "beam": ("decode", "beam_size"),
    "valid_bleu": ("train", "valid_bleu"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "train",
        help="train a translation model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="YAML config (sections model, data, train, decode)")
    p.add_argument("--out", type=Path, help=f"run directory (default: {DEFAULT_OUT})")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out with its own config; options given with it may change "
        "only the length, device, precision, logging, checkpointing and averaging (e.g. "
        "--max-epochs 30), anything else is refused",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config field, e.g. --set model.dropout=0.3 (repeatable)",
    )
    p.add_argument(
        "--valid-bleu",
        type=int,
        default=None,
        metavar="N",
        help="translate the first N validation sentences after each validation and report "
        "BLEU (train.valid_bleu, default 500; 0 = off)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    add_data_options(p)
    p.add_argument(
        "--prepared",
        metavar="DATA_DIR",
        help="train from a dataset made by `aiayn prepare` (data.corpus prepared)",
    )

    model = p.add_argument_group("model")
    model.add_argument("--preset", choices=PRESETS, help="model size (override fields with --set)")

    train_group = p.add_argument_group("training")
    train_group.add_argument("--max-steps", type=int, help="stop after N updates (0 = no limit)")
    train_group.add_argument("--max-epochs", type=int, help="stop after N epochs (0 = no limit)")
    train_group.add_argument(
        "--max-minutes",
        type=float,
        help="also stop at the first epoch end after M minutes of training (0 = no limit)",
    )
    train_group.add_argument("--max-tokens", type=int, help="tokens per batch per process")
    train_group.add_argument("--update-freq", type=int, help="batches accumulated per update")
    train_group.add_argument("--seed", type=int, help="random seed")
    train_group.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    train_group.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    train_group.add_argument("--compile", action="store_true", help="use torch.compile")
    train_group.add_argument("--lr-factor", type=float, help="learning-rate schedule factor")
    train_group.add_argument("--warmup", type=int, help="warmup updates")
    train_group.add_argument("--label-smoothing", type=float, help="label smoothing epsilon")
    train_group.add_argument("--clip-norm", type=float, help="gradient clipping (0 = off)")
    train_group.add_argument("--save-every", type=int, help="also checkpoint every N updates")
    train_group.add_argument("--keep-last", type=int, help="step checkpoints to keep")
    train_group.add_argument("--average-last", type=int, help="average the last N at the end")
    train_group.add_argument("--beam", type=int, help="beam size the run will decode with")
    p.set_defaults(handler=run)


def add_data_options(p: argparse.ArgumentParser) -> None:
    """The data options, shared with `aiayn prepare` (which reads the same text)."""
    data = p.add_argument_group("data")
    data.add_argument("--corpus", choices=("task", "multi30k", "wmt14", "files", "tsv"))
    data.add_argument("--task", choices=TASKS, help="built-in synthetic task (default: reverse)")
    data.add_argument("--src", help="Multi30k source language: en, de, fr, cs")
    data.add_argument("--tgt", help="Multi30k target language")
    data.add_argument(
        "--data-dir", help="folder with the Multi30k or WMT14 files (else downloaded)"
    )
    data.add_argument("--src-file", help="training source file (plain or .gz)")
    data.add_argument("--tgt-file", help="training target file, aligned line by line")
    data.add_argument("--valid-src-file", help="validation source (else a held-out slice)")
    data.add_argument("--valid-tgt-file", help="validation target")
    data.add_argument("--tsv", help="one file of source<TAB>target lines")
    data.add_argument("--max-len", type=int, help="drop training pairs longer than this")
    data.add_argument("--vocab-size", type=int, help="subword vocabulary size")


def parse_set(items: list[str]) -> list[tuple[str, str, Any]]:
    """`section.key=value` strings -> (section, key, YAML-parsed value).

    The value is parsed as YAML (0.3 is a number, true a bool, "128" a string) and checked
    against the field's type with the rest of the config, in `RunConfig.from_dict`.

    Raises:
        UsageError: an item is not SECTION.KEY=VALUE or its value is not valid YAML.
    """
    parsed = []
    for item in items:
        name, sep, text = item.partition("=")
        section, dot, key = name.partition(".")
        if not sep or not dot:
            raise UsageError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. model.dropout=0.3")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise UsageError(f"--set {item!r}: not valid YAML ({yaml_problem(error)})") from None
        parsed.append((section.strip(), key.strip(), value))
    return parsed


def build_config(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """The config file (else `base`, else the defaults), then options, then --set overrides.

    Args:
        args: the parsed options.
        base: what to start from without --config (a resumed run's saved config).
    """
    if args.config:
        config = RunConfig.load(args.config)
    elif base is not None:
        config = base
    elif args.corpus in (None, "task") and not (
        args.src or args.tgt or args.src_file or args.tsv or getattr(args, "prepared", None)
    ):
        config = RunConfig.quickstart()
    else:
        config = RunConfig.text_default()
    values = config.to_dict()
    for option, (section, key) in OPTION_FIELDS.items():
        value = getattr(args, option, None)  # `aiayn prepare` has only the data options
        if value is not None:
            values[section][key] = value
    if getattr(args, "compile", False):
        values["train"]["compile"] = True
    if getattr(args, "no_progress", False):
        values["train"]["progress"] = False
    if args.corpus is None and (args.src_file or args.tsv):
        values["data"]["corpus"] = "tsv" if args.tsv else "files"
    if getattr(args, "prepared", None):
        values["data"]["corpus"] = "prepared"
    for section, key, value in parse_set(args.set):
        if section not in values:
            raise UsageError(
                f"--set {section}.{key}: unknown section {section!r}; use {', '.join(values)}"
            )
        values[section][key] = value
    return RunConfig.from_dict(values, source="command line")


def hook_factory(vocabs: Vocabularies, corpus: Corpus, config: RunConfig) -> list[ValidationHook]:
    """Validation BLEU on the first `train.valid_bleu` validation pairs (none when 0)."""
    n_sentences = config.train.valid_bleu
    if n_sentences <= 0:
        return []
    return [make_bleu_hook(vocabs, corpus.valid, n_sentences)]


def run(args: argparse.Namespace) -> int:
    """Train, then show what the model learned on a few validation sentences."""
    out = args.out or DEFAULT_OUT
    if args.resume:
        saved = resumed_config(out)  # rank 0 reads it; under torchrun the others learn it
        config = build_config(args, base=saved)
        # Refused here, before any data is read, if the options change what the run is.
        for key, (old, new) in sorted(resume_changes(saved, config).items()):
            if process_info().is_main:
                print(f"resuming {out} with {key} {old!r} -> {new!r}")
    else:
        config = build_config(args)
    prepared, result = train(config, out, resume=args.resume, hook_factory=hook_factory)
    if not prepared.dist.is_main:
        return 130 if result.interrupted else 0
    if result.interrupted:
        print(f"stopped after {result.steps} updates; checkpoint saved. Continue with:")
        print(f"  aiayn train --out {out} --resume")
        return 130
    print(
        f"\ntrained {result.steps} updates ({result.epochs} epochs) in "
        f"{result.seconds / 60:.1f} min, {result.tokens_per_second:,.0f} target tokens/s"
    )
    valid = result.last_valid
    if valid:
        print("validation: " + ", ".join(f"{k} {v:.3f}" for k, v in valid.items()))
    translator = Translator.from_run(out, device=prepared.device)
    sample = prepared.corpus.valid[:200]
    hyps = translator.translate([s for s, _ in sample])
    refs = [r for _, r in sample]
    print(
        f"\n{len(sample)} held-out validation sentences, beam {translator.decode.beam_size}: "
        f"exact match {exact_match(hyps, refs):.1f}%"
    )
    for (src, ref), hyp in list(zip(sample, hyps, strict=True))[:5]:
        print(f"  source:     {src}\n  reference:  {ref}\n  translated: {hyp}\n")
    print(f"run directory: {out}  (translate with: aiayn translate --run {out})")
    return 0
