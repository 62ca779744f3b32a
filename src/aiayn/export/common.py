"""What every export shares: the run it reads, the folder it writes, the extra it needs.

Every export folder holds, besides the engine's own files:

    tokenizer/      the run's vocabularies exactly as in the run (sentencepiece models or
                    symbol lists, and vocabularies.json): they turn raw text into the ids the
                    exported model takes (pad 0, unk 1, BOS 2 = decoder start, EOS 3; sources
                    carry no EOS)
    export.json     what was exported: format, run, checkpoint, model config, special ids,
                    aiayn version and the format's own notes

The folder is written under a temporary name and renamed into place (aiayn.runs.write_folder),
so a failed export leaves nothing that looks finished; an existing folder is replaced only when
asked (`--force`).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from aiayn.data import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocabularies
from aiayn.decoding.config import DecodeConfig
from aiayn.decoding.translator import Translator
from aiayn.errors import AiaynError
from aiayn.model import Transformer
from aiayn.runs import RunDir
from aiayn.runs.atomic import write_folder

EXPORT_INFO = "export.json"


class ExportError(AiaynError):
    """An export (or import) that cannot be made: a missing extra, an unsupported model choice,
    an output folder in the way. The message names what and says what to do."""


def require(module: str, extra: str) -> ModuleType:
    """Import an optional engine, or say in one line which extra installs it.

    Args:
        module: the module to import, e.g. "ctranslate2".
        extra: the pip extra of aiayn that brings it, e.g. "ct2".

    Raises:
        ExportError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ExportError(
            f"{module} is not installed ({error}): pip install -e '.[{extra}]' (or "
            f"pip install 'aiayn[{extra}]')"
        ) from None


@dataclass(frozen=True)
class ExportSource:
    """A trained run, loaded for export.

    Attributes:
        model: the model in eval mode, float32, on the CPU.
        vocabs: its source and target vocabularies.
        decode: the run's decoding settings.
        run: the run directory.
        checkpoint: the checkpoint folder the weights came from.
    """

    model: Transformer
    vocabs: Vocabularies
    decode: DecodeConfig
    run: Path
    checkpoint: Path


def load_source(run: str | Path, checkpoint: str | Path | None = None) -> ExportSource:
    """Load a run's model (its default checkpoint unless given one) for export, on the CPU.

    Raises:
        RunError / CheckpointError: a missing or damaged run or checkpoint.
        ExportError: a run imported from Marian (its special ids are not ours).
    """
    run_dir = RunDir(Path(run))
    path = Path(checkpoint) if checkpoint is not None else run_dir.default_checkpoint()
    translator = Translator.from_run(run_dir.path, path, device="cpu")
    if translator.vocabs.kind == "marian":
        # Its ids are not ours (pad = decoder start = the last id, EOS 0, sources end with
        # EOS), and every export folder promises ours.
        raise ExportError(
            f"{run_dir.path} was imported from Marian (aiayn import-hf): its special ids are not "
            "aiayn's, so it cannot be exported; use the original Marian folder in transformers "
            "or convert it with CTranslate2's own Marian converter"
        )
    model = translator.model.float().eval()
    return ExportSource(model, translator.vocabs, translator.decode, run_dir.path, path)


def export_info(source: ExportSource, format_name: str, **notes: Any) -> dict[str, Any]:
    """The contents of export.json for `source` exported as `format_name`."""
    from aiayn import __version__

    return {
        "format": format_name,
        "run": str(source.run),
        "checkpoint": str(source.checkpoint),
        "model_config": source.model.config.to_dict(),
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        "decoder_start_id": BOS_ID,
        "source_eos": False,
        "vocabulary": source.vocabs.kind,
        "aiayn_version": __version__,
        **notes,
    }


def write_export(
    out: str | Path,
    source: ExportSource,
    format_name: str,
    write: Callable[[Path], dict[str, Any]],
    *,
    force: bool = False,
) -> Path:
    """Write an export folder atomically: the engine's files, the tokenizer, export.json.

    Args:
        out: the folder to create.
        source: the run being exported.
        format_name: e.g. "ct2", for export.json.
        write: writes the engine's files into the (temporary) folder it is given and returns
            the notes for export.json (e.g. {"quantization": "int8"}).
        force: replace a folder already at `out`.

    Returns:
        `out` as a Path.

    Raises:
        ExportError: `out` exists and `force` is False, or is a file.
    """
    out = Path(out)
    if out.exists() and not (force and out.is_dir()):
        what = "folder" if out.is_dir() else "file"
        hint = " (pass --force to replace it)" if out.is_dir() else ""
        raise ExportError(f"{out} already exists as a {what}{hint}")

    def fill(tmp: Path) -> None:
        notes = write(tmp)
        source.vocabs.save(tmp)
        info = export_info(source, format_name, **notes)
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    return write_folder(out, fill)
