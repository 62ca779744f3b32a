"""The export formats `aiayn export --format` knows: name -> the function that writes one.

A writer is called as `writer(source, folder, quantization=None)`: it writes the engine's files
into `folder` (a fresh temporary folder; the tokenizer and export.json are added after it) and
returns notes for export.json. It imports its engine with `aiayn.export.require`, so importing
this module needs none of them, and raises `ExportError` for a model choice or quantization the
engine cannot express, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiayn.export.common import ExportSource
from aiayn.export.ct2 import write_ct2

Writer = Callable[..., dict[str, Any]]

FORMATS: dict[str, Writer] = {}
FORMATS["ct2"] = write_ct2


__all__ = ["FORMATS", "ExportSource", "Writer"]
