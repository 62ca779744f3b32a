"""What `aiayn train` does, as a library call: text -> vocabulary -> model -> trained run.

config (RunConfig) -> load_corpus -> build_vocabularies -> encode_pairs -> Transformer
                   -> Trainer.fit -> run directory (checkpoints, metrics, run.json)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from aiayn.config import RunConfig
from aiayn.data import Corpus, Vocabularies, build_vocabularies, encode_pairs, load_corpus
from aiayn.model import Transformer
from aiayn.runs import RunDir, RunError, atomic_write_json, atomic_write_text, step_checkpoints
from aiayn.runs.layout import provenance
from aiayn.training import DistInfo, Trainer, TrainResult, ValidationHook
from aiayn.training.distributed import barrier, init_distributed
from aiayn.training.precision import device_description, resolve_precision

# Builds validation hooks once the vocabulary and data exist (the CLI passes a BLEU hook).
HookFactory = Callable[[Vocabularies, Corpus, RunConfig], Sequence[ValidationHook]]


@dataclass
class PreparedRun:
    """Everything `train` builds before the first update (returned for tests and tools)."""

    config: RunConfig
    run: RunDir
    corpus: Corpus
    vocabs: Vocabularies
    model: Transformer
    trainer: Trainer
    device: torch.device
    dist: DistInfo


def resolve_device(name: str, dist_local_rank: int = 0) -> torch.device:
    """ "auto" -> this process's GPU if CUDA is available, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist_local_rank)
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return device


def prepare(
    config: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    hook_factory: HookFactory | None = None,
) -> PreparedRun:
    """Set up a run directory, data, vocabulary, model and trainer (no training yet).

    Args:
        config: the run's configuration (ignored in favour of the saved one when resuming).
        out: the run directory.
        resume: continue the run in `out` from its newest checkpoint.
        hook_factory: builds extra validation hooks (e.g. BLEU).

    Returns:
        The prepared pieces.

    Raises:
        RunError: `out` already holds a run and `resume` is False, or holds none and it is True.
    """
    run = RunDir(Path(out))
    has_checkpoints = bool(step_checkpoints(run.checkpoints))
    if resume:
        if not run.config_file.exists():
            raise RunError(f"cannot --resume: {run.path} holds no run (no config.yaml)")
        config = RunConfig.load(run.config_file)
    elif has_checkpoints:
        raise RunError(
            f"{run.path} already holds a trained run; pass --resume to continue it or choose "
            "another --out"
        )
    probe = resolve_device(config.train.device)
    dist = init_distributed(probe)
    device = resolve_device(config.train.device, dist.local_rank)
    torch.manual_seed(config.train.seed)

    corpus = load_corpus(config.data)
    tokenizer_ready = (run.path / "tokenizer").is_dir() and (resume or has_checkpoints)
    if dist.is_main and not tokenizer_ready:
        vocabs = build_vocabularies(
            corpus.train,
            vocab_size=config.data.vocab_size,
            joint=config.data.joint_vocab,
            kind=config.data.vocab_kind,
            model_type=config.data.subword,
            seed=config.data.seed,
        )
        run.path.mkdir(parents=True, exist_ok=True)
        vocabs.save(run.path)
    barrier(dist)
    vocabs = Vocabularies.load(run.path)
    model_config = config.model_config(vocabs.src.vocab_size, vocabs.tgt.vocab_size)
    if model_config.share_embeddings and not vocabs.joint:
        raise ValueError("model.share_embeddings needs data.joint_vocab: true")

    if dist.is_main and not resume:
        atomic_write_text(run.config_file, config.to_yaml())
        run.update_info(
            model_config=model_config.to_dict(),
            decode=config.to_dict()["decode"],
            data=config.data.name,
            train_pairs=len(corpus.train),
            valid_pairs=len(corpus.valid),
            filtered=str(corpus.stats),
        )
        record = provenance(device_description(device))
        record["precision"] = resolve_precision(
            config.train.precision, device, model_config.d_model
        )
        record["world_size"] = dist.world_size
        atomic_write_json(run.provenance_file, record)
    barrier(dist)

    torch.manual_seed(config.train.seed)
    model = Transformer(model_config).to(device)
    hooks = hook_factory(vocabs, corpus, config) if hook_factory and dist.is_main else ()
    trainer = Trainer(
        model,
        config.train,
        encode_pairs(corpus.train, vocabs),
        encode_pairs(corpus.valid, vocabs),
        run,
        device,
        dist,
        hooks,
    )
    if resume:
        trainer.resume()
    return PreparedRun(config, run, corpus, vocabs, model, trainer, device, dist)


def train(
    config: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    hook_factory: HookFactory | None = None,
) -> tuple[PreparedRun, TrainResult]:
    """Prepare a run (see `prepare`) and train it to the end of its schedule."""
    prepared = prepare(config, out, resume=resume, hook_factory=hook_factory)
    result = prepared.trainer.fit()
    if prepared.dist.is_main and not result.interrupted:
        prepared.run.update_info(
            trained_steps=result.steps,
            trained_epochs=result.epochs,
            train_seconds=round(result.seconds, 1),
            train_tokens_per_second=round(result.tokens_per_second, 1),
            last_valid=result.last_valid,
        )
    return prepared, result
