"""aiayn.export: our trained models in the engines people deploy, and theirs in ours.

`aiayn export --run R --format F --out DIR` writes a folder that another engine loads
(CTranslate2, Hugging Face transformers, ONNX Runtime), holding the weights and the run's
tokenizer; `aiayn import-hf` goes the other way for OPUS-MT Marian checkpoints. Each engine is an
optional extra (`pip install -e ".[ct2]"`, `[hf]`, `[onnx]`), imported only when used.

Layering: beside decoding. It reads a run (model, vocabularies, decoding settings) and uses the
model and the Translator; nothing below imports it.
"""

from aiayn.export.common import ExportError, ExportSource, load_source, require, write_export

__all__ = ["ExportError", "ExportSource", "load_source", "require", "write_export"]
