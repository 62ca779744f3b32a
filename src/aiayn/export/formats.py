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
from aiayn.export.hf import write_hf
from aiayn.export.onnx_format import write_onnx

Writer = Callable[..., dict[str, Any]]

FORMATS: dict[str, Writer] = {"ct2": write_ct2, "hf": write_hf, "onnx": write_onnx}


__all__ = ["FORMATS", "ExportSource", "Writer"]
