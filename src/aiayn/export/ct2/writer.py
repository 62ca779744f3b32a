"""`aiayn export --format ct2`: write a run's model as a CTranslate2 model folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from aiayn.export.common import ExportError, ExportSource, require

QUANTIZATIONS = (None, "int8")


def write_ct2(
    source: ExportSource, folder: Path, quantization: str | None = None
) -> dict[str, Any]:
    """Write `source`'s model into `folder` as CTranslate2 files (model.bin, config.json and
    shared_vocabulary.json, or source_ and target_vocabulary.json).

    Args:
        source: the run being exported.
        folder: an empty folder (the export's temporary folder).
        quantization: None (float32 weights) or "int8" (int8 weights with float32 scales).

    Returns:
        Notes for export.json: the quantization, the CTranslate2 version, the length limit and
        the run's decoding settings (which `Ct2Translator` uses).

    Raises:
        ExportError: ctranslate2 is missing (naming the `ct2` extra), an unknown quantization,
            or a model choice CTranslate2 cannot express (naming it).
    """
    ctranslate2 = require("ctranslate2", "ct2")
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization {quantization} is not supported for ct2 (use int8)")
    from aiayn.export.ct2.converter import AiaynConverter  # imports ctranslate2

    # convert() wants to create its folder: with force it replaces the empty one we were given.
    AiaynConverter(source.model, source.vocabs).convert(
        str(folder), quantization=quantization, force=True
    )
    config = source.model.config
    return {
        "ctranslate2_version": ctranslate2.__version__,
        "quantization": quantization or "float32",
        "positions": f"{config.positional} table of max_positions = {config.max_positions} rows",
        "max_source_tokens": config.max_positions,
        "max_output_tokens": config.max_positions - 1,
        "length_limit": (
            "CTranslate2 raises an error for a position beyond the exported table; "
            "Ct2Translator truncates longer sources to max_source_tokens (with a warning) and "
            "stops outputs at max_output_tokens"
        ),
        "decode": dataclasses.asdict(source.decode),
    }
