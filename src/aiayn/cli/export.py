"""`aiayn export`: write a run's model for another engine (see aiayn.export).

Examples:
    aiayn export --run runs/en-de --format ct2 --out exports/en-de-ct2
    aiayn export --run runs/en-de --format ct2 --out exports/en-de-ct2-int8 --quantization int8
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiayn.export import load_source, write_export
from aiayn.export.formats import FORMATS


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "export",
        help="write a run's model for another engine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run", required=True, type=Path, help="run directory from `aiayn train`")
    p.add_argument("--checkpoint", type=Path, help="checkpoint folder (default: the run's)")
    p.add_argument("--format", required=True, choices=sorted(FORMATS), help="target engine")
    p.add_argument("--out", required=True, type=Path, help="folder to create")
    p.add_argument(
        "--quantization", choices=("int8",), help="quantize weights, where the engine can"
    )
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the run, write the export folder atomically, say what was written."""
    source = load_source(args.run, args.checkpoint)
    writer = FORMATS[args.format]
    out = write_export(
        args.out,
        source,
        args.format,
        lambda folder: writer(source, folder, quantization=args.quantization),
        force=args.force,
    )
    print(f"exported {source.run} ({source.checkpoint.name}) as {args.format} to {out}")
    return 0
