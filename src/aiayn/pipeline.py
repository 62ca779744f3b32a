"""What `aiayn train` does, as a library call: text -> vocabulary -> model -> trained run.

config (RunConfig) -> load_run_data (text: load_corpus -> build_vocabularies -> encode_pairs;
                   a prepared dataset: memory-mapped) -> Transformer
                   -> Trainer.fit -> run directory (checkpoints, metrics, run.json)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aiayn.config import RunConfig
from aiayn.data import Corpus, IdPair, Vocabularies
from aiayn.data.resampling import SampledSegmentations
from aiayn.errors import ConfigError
from aiayn.model import ModelConfig, Transformer
from aiayn.resuming import fingerprint, resume_changes
from aiayn.run_data import load_run_data
from aiayn.run_sharing import has_checkpoints, resumed_config, tokenizer_saved
from aiayn.runs import RunDir, RunError, atomic_write_json, atomic_write_text
from aiayn.runs.layout import provenance
from aiayn.training import DistInfo, Trainer, TrainResult, ValidationHook
from aiayn.training.distributed import (
    barrier,
    choose_device,
    init_distributed,
    join,
    process_info,
    shutdown,
)
from aiayn.training.lost_rank import LostRankWatch
from aiayn.training.precision import device_description, resolve_precision
from aiayn.training.rng import rank_seed

# Builds validation hooks once the vocabulary and data exist (the CLI passes a BLEU hook).
HookFactory = Callable[[Vocabularies, Corpus, RunConfig], Sequence[ValidationHook]]


@dataclass
class PreparedRun:
    """Everything `train` builds before the first update (returned for tests and tools).

    Attributes:
        changes: on --resume, the fields the resumed run changed (`section.key` -> (old, new)).
    """

    config: RunConfig
    run: RunDir
    corpus: Corpus
    vocabs: Vocabularies
    model: Transformer
    trainer: Trainer
    device: torch.device
    dist: DistInfo
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """The device of a single process: "auto" is the GPU if CUDA is available, else the CPU.

    Raises:
        ConfigError: an unknown name, or CUDA asked for where there is none.
    """
    return choose_device(name)


def check_lengths(longest: int, model_config: ModelConfig) -> None:
    """Refuse data longer than learned positions can take, before training starts.

    Sinusoidal positions continue beyond their table; a learned table has `max_positions` rows
    and a longer sequence would fail in the middle of training.

    Args:
        longest: the longest source, or target with its BOS/EOS, of the training and
            validation data.
        model_config: the model.

    Raises:
        ConfigError: a source, or a target with its BOS/EOS, is longer than the table.
    """
    if model_config.positional != "learned" or longest <= model_config.max_positions:
        return
    raise ConfigError(
        f"the longest training or validation sequence has {longest} tokens but "
        f"model.max_positions is {model_config.max_positions} with learned positions: raise "
        "model.max_positions or lower data.max_len"
    )


def prepare(
    config: RunConfig | None,
    out: str | Path,
    *,
    resume: bool = False,
    hook_factory: HookFactory | None = None,
) -> PreparedRun:
    """Set up a run directory, data, vocabulary, model and trainer (no training yet).

    Args:
        config: the run's configuration. When resuming: None for the saved one, or the saved
            one with some of `aiayn.resuming.RESUMABLE` changed (e.g. a later max_epochs),
            which are then written back to the run's config.yaml.
        out: the run directory.
        resume: continue the run in `out` from its newest intact checkpoint.
        hook_factory: builds extra validation hooks (e.g. BLEU).

    Returns:
        The prepared pieces. Under torchrun the process group is joined here; `train` leaves
        it at the end (call `aiayn.training.distributed.shutdown` after `prepare` alone).

    Raises:
        RunError: `out` already holds a run and `resume` is False, or holds none and it is True.
        ConfigError: a resumed run asked to change a field that defines it.
    """
    run = RunDir(Path(out))
    # Only global rank 0 reads the run directory; the others learn from it (run_sharing.py).
    dist = process_info()
    join(dist)
    trained = has_checkpoints(run, dist)
    changes: dict[str, tuple[Any, Any]] = {}
    if resume:
        saved = resumed_config(run.path)
        if config is None:
            config = saved
        changes = resume_changes(saved, config)
    elif trained:
        raise RunError(
            f"{run.path} already holds a trained run; pass --resume to continue it or choose "
            "another --out"
        )
    if config is None:
        raise ValueError("prepare needs a config unless it resumes a run")
    device = choose_device(config.train.device, dist)
    dist = init_distributed(device, dist, config.train.dist_timeout)
    torch.manual_seed(config.train.seed)

    has_vocab = tokenizer_saved(run, dist) and (resume or trained)
    data = load_run_data(config.data, run, dist, has_vocab)
    corpus, vocabs, train_ids, valid_ids = data.corpus, data.vocabs, data.train, data.valid
    model_config = config.model_config(vocabs.src.vocab_size, vocabs.tgt.vocab_size)
    check_lengths(data.longest, model_config)
    if model_config.share_embeddings and not vocabs.joint:
        raise ConfigError("model.share_embeddings needs data.joint_vocab: true")
    train_pairs: Sequence[IdPair] | SampledSegmentations = train_ids
    if config.data.subword_sampling:
        learned = model_config.positional == "learned"
        train_pairs = SampledSegmentations(
            corpus.train,
            vocabs,
            config.data.subword_sampling,
            config.data.seed,
            best=train_ids,
            longest=model_config.max_positions if learned else None,
        )

    if dist.is_main and not resume:
        atomic_write_text(run.config_file, config.to_yaml())
        run.update_info(
            model_config=model_config.to_dict(),
            decode=config.to_dict()["decode"],
            config_fingerprint=fingerprint(config),
            data=config.data.name,
            **data.info,
        )
        record = provenance(device_description(device))
        record["precision"] = resolve_precision(
            config.train.precision, device, model_config.d_model
        )
        record["world_size"] = dist.world_size
        atomic_write_json(run.provenance_file, record)
    barrier(dist)

    # The same initial weights on every rank (DDP also broadcasts rank 0's), then a random
    # stream of each rank's own, so that dropout masks differ between ranks.
    torch.manual_seed(config.train.seed)
    model = Transformer(model_config).to(device)
    torch.manual_seed(rank_seed(config.train.seed, dist.rank))
    hooks = hook_factory(vocabs, corpus, config) if hook_factory and dist.is_main else ()
    trainer = Trainer(
        model,
        config.train,
        train_pairs,
        valid_ids,
        run,
        device,
        dist,
        hooks,
    )
    if resume:
        trainer.resume()
        if changes and dist.is_main:
            atomic_write_text(run.config_file, config.to_yaml())
            history = run.info().get("resumed_with_changes", [])
            history.append(
                {"step": trainer.step, "changes": {k: list(v) for k, v in changes.items()}}
            )
            run.update_info(decode=config.to_dict()["decode"], resumed_with_changes=history)
    return PreparedRun(config, run, corpus, vocabs, model, trainer, device, dist, changes)


def train(
    config: RunConfig | None,
    out: str | Path,
    *,
    resume: bool = False,
    hook_factory: HookFactory | None = None,
) -> tuple[PreparedRun, TrainResult]:
    """Prepare a run (see `prepare`) and train it to the end of its schedule, or to a stop.

    Under torchrun every process calls this; the process group is left when it returns.

    Raises:
        LostRankError: under torchrun, another rank died or stopped answering.
    """
    # A rank that dies or hangs raises LostRankError on the others (training/lost_rank.py).
    with LostRankWatch(process_info(), Path(out)) as watch:
        prepared = prepare(config, out, resume=resume, hook_factory=hook_factory)
        watch.info, watch.step = prepared.dist, prepared.trainer.step
        try:
            result = prepared.trainer.fit()
            if prepared.dist.is_main:
                prepared.run.update_info(
                    trained_steps=result.steps,
                    trained_epochs=result.epochs,
                    train_seconds=round(result.seconds, 1),
                    train_tokens_per_second=round(result.tokens_per_second, 1),
                    last_valid=result.last_valid,
                )
        finally:
            watch.step = prepared.trainer.step
            shutdown(prepared.dist)
    return prepared, result
