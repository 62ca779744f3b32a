"""`aiayn import-hf`: a local MarianMTModel directory (e.g. OPUS-MT) as a run to translate with.

The directory holds what transformers' save_pretrained writes for a MarianMTModel and its
MarianTokenizer: config.json, model.safetensors (or pytorch_model.bin), source.spm, target.spm
and vocab.json. Nothing is downloaded and transformers is not needed. The run has no data of its
own: score it with `aiayn evaluate --run RUN --src-file F --ref-file F`. Multilingual models
take the target-language token at the start of each source line (`>>fra<< Hello`).

Examples:
    aiayn import-hf opus-mt-en-de --out runs/opus-en-de
    echo "A dog runs." | aiayn translate --run runs/opus-en-de --beam 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiayn.data import MarianTokenizer
from aiayn.export.marian_import import import_marian


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "import-hf",
        help="import a local MarianMTModel (OPUS-MT) directory as a run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("directory", type=Path, metavar="DIR", help="the MarianMTModel directory")
    p.add_argument("--out", required=True, type=Path, help="run directory to create (new)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Import, write the run atomically, say what it holds."""
    imported = import_marian(args.directory, args.out)
    c = imported.model.config
    src = imported.vocabs.src
    codes = src.language_codes if isinstance(src, MarianTokenizer) else []
    print(
        f"imported {args.directory} into {args.out}: {c.n_encoder_layers}+{c.n_decoder_layers} "
        f"layers, d_model {c.d_model}, {c.activation}, vocabulary {c.src_vocab_size}, "
        f"{imported.model.num_parameters():,} parameters"
    )
    if codes:
        print(f"multilingual: start each source line with a target-language token, e.g. {codes[0]}")
    print(f"translate with: aiayn translate --run {args.out}")
    return 0
