"""What the ranks of a torchrun run learn from the run directory, read by global rank 0 alone.

Rank 0 writes the run directory and is the only rank that reads it: the others get what they
need from it over the process group (the config of a resumed run, whether the run has
checkpoints, the vocabulary; the checkpoint itself comes in aiayn.training.checkpointing). So
the run directory need only be on rank 0's node: another node may lack it, or see it through a
shared filesystem, possibly late (NFS caches), without effect. See docs/distributed.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiayn.config import RunConfig
from aiayn.data import Vocabularies
from aiayn.data.vocab import TOKENIZER_DIR
from aiayn.resuming import check_unedited
from aiayn.runs import RunDir, RunError, step_checkpoints
from aiayn.training.distributed import DistInfo, broadcast_object, join, on_main, process_info


def saved_config(out: str | Path) -> RunConfig:
    """The config of the run in `out`, checked against the fingerprint run.json recorded.

    Raises:
        RunError: `out` holds no run.
        ConfigError: its config.yaml was edited in a field that defines the run.
    """
    run = RunDir(Path(out))
    if not run.config_file.exists():
        raise RunError(f"cannot --resume: {run.path} holds no run (no config.yaml)")
    config = RunConfig.load(run.config_file)
    recorded = run.info().get("config_fingerprint") if run.info_file.exists() else None
    check_unedited(config, recorded, str(run.config_file))
    return config


def resumed_config(out: str | Path) -> RunConfig:
    """`saved_config(out)` read by rank 0 alone and known to every rank.

    Joins the process group first (see `aiayn.training.distributed.join`): the config, which
    says which device to use and how long to wait for other ranks, is known only to rank 0
    until then.

    Raises:
        RunError, ConfigError: what `saved_config` raised on rank 0, on every rank.
    """
    info = process_info()
    join(info)
    return broadcast_object(on_main(lambda: saved_config(out), info), info)


def has_checkpoints(run: RunDir, info: DistInfo) -> bool:
    """Whether the run directory holds step checkpoints (as rank 0 sees it, on every rank)."""
    return bool(broadcast_object(bool(step_checkpoints(run.checkpoints)), info))


def tokenizer_saved(run: RunDir, info: DistInfo) -> bool:
    """Whether the run directory holds a vocabulary (as rank 0 sees it, on every rank)."""
    return bool(broadcast_object((run.path / TOKENIZER_DIR).is_dir(), info))


def shared_vocabularies(run: RunDir, info: DistInfo) -> Vocabularies:
    """The vocabulary rank 0 saved in the run directory, on every rank.

    Rank 0 sends the files of `tokenizer/`; the others load them from a temporary folder.

    Raises:
        DataError: the saved vocabulary is missing or damaged (on every rank).
    """
    if not info.enabled:
        return Vocabularies.load(run.path)

    def read() -> tuple[Vocabularies, dict[str, bytes]]:
        folder = run.path / TOKENIZER_DIR
        files = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
        return Vocabularies.load(run.path), files

    loaded = on_main(read, info)
    files = broadcast_object(None if loaded is None else loaded[1], info)
    if loaded is not None:
        return loaded[0]
    with tempfile.TemporaryDirectory(prefix="aiayn-vocab-") as temp:
        folder = Path(temp) / TOKENIZER_DIR
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        return Vocabularies.load(temp)
