"""`aiayn serve`: a trained run behind HTTP, with dynamic batching and the attention page.

    aiayn serve --run runs/en-de                         # our model (--backend ours)
    aiayn serve --backend ct2 --model exports/en-de-ct2  # its CTranslate2 export

The backend is loaded before any port is bound, so a bad run or folder is a one-line error.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import torch

from aiayn.cli.common import add_run_options, load_translator, positive
from aiayn.errors import UsageError
from aiayn.pipeline import resolve_device
from aiayn.serve import ServeConfig
from aiayn.serve.backend import Backend

log = logging.getLogger(__name__)

INSTALL_HINT = 'aiayn serve needs the [serve] extra: pip install "aiayn[serve]"'


# The ServeConfig fields that are options of their own: (field, argparse type, help). The option
# is the field's name with dashes, its default the field's.
SERVE_LIMITS: tuple[tuple[str, Callable[[str], int | float], str], ...] = (
    ("max_batch_tokens", positive(int), "source tokens x beams in one model call"),
    ("max_batch_sentences", positive(int), "sentences in one model call; 1 turns batching off"),
    ("max_wait_ms", float, "how long a request waits for others to join its batch"),
    ("max_queue", positive(int), "requests waiting at most; more get 503"),
    ("timeout_s", positive(float), "a request not answered by then gets 504"),
    ("max_chars", positive(int), "characters in one request"),
    ("max_sentences", positive(int), "sentences in one request"),
    ("max_beam", positive(int), "largest beam a request may ask for"),
    ("max_n_best", positive(int), "most hypotheses per sentence a request may ask for"),
    ("max_attention_tokens", positive(int), "source subwords of a sentence sent to /v1/attention"),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    d = ServeConfig()
    p = sub.add_parser(
        "serve",
        help="serve a trained run over HTTP (JSON API, metrics, and a page showing attention)",
        description="POST /v1/translate and /v1/attention, GET /health, /metrics, and the page at "
        "/. Concurrent requests with the same search settings are translated together. There "
        "is no authentication: it binds to 127.0.0.1 unless told otherwise. Ctrl-C or SIGTERM "
        "stops taking requests, answers those in flight, then exits.",
    )
    p.add_argument(
        "--backend", choices=("ours", "ct2"), default="ours",
        help="ours: the run's model in PyTorch (--run); ct2: a CTranslate2 export of it "
        "(--model), faster on the CPU, without attention maps (default: ours)",
    )  # fmt: skip
    add_run_options(p, run_required=False)
    p.add_argument(
        "--model", type=Path,
        help="with --backend ct2: the folder written by `aiayn export --format ct2`",
    )  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free)")
    for name, kind, help_text in SERVE_LIMITS:
        default = getattr(d, name)
        p.add_argument(
            "--" + name.replace("_", "-"), type=kind, default=default,
            help=f"{help_text} (default: {default:g})",
        )  # fmt: skip
    p.add_argument(
        "--threads", type=positive(int),
        help="threads for decoding: torch's (ours) or CTranslate2's intra_threads (ct2) "
        "(default: the engine's choice)",
    )  # fmt: skip
    p.set_defaults(handler=run)


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def run(args: argparse.Namespace) -> int:
    """Load the model (before binding any port), then serve it until Ctrl-C or SIGTERM."""
    try:
        import uvicorn

        from aiayn.serve.app import create_app
    except ImportError as error:
        raise UsageError(f"{INSTALL_HINT} ({error})") from None
    if args.max_wait_ms < 0:
        raise UsageError(f"--max-wait-ms must be >= 0, got {args.max_wait_ms:g}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    config = ServeConfig(**{name: getattr(args, name) for name, _, _ in SERVE_LIMITS})
    translator = load_backend(args)
    if not is_loopback(args.host):
        log.warning(
            "bound to %s: anyone who can reach this address can use the server, which has no "
            "authentication (put it behind a proxy that has, or bind to 127.0.0.1)",
            args.host,
        )
    app = create_app(translator, config)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info"))
    # uvicorn handles SIGTERM itself (stop accepting, finish in-flight requests, run the app's
    # shutdown), then raises it again once done: by then there is nothing left to stop.
    signal.signal(signal.SIGTERM, stopped)
    server.run()
    print("aiayn serve: stopped", file=sys.stderr)
    return 0


def load_backend(args: argparse.Namespace) -> Backend:
    """The engine the options name: our Translator for a run, or Ct2Translator for an export.

    Raises:
        UsageError: options of the other backend, or the model missing.
        RunError, CheckpointError, ExportError: a run or export folder that cannot be loaded.
    """
    if args.backend == "ours":
        if args.model is not None:
            raise UsageError("--model is for --backend ct2; --backend ours serves --run DIR")
        if args.run is None:
            raise UsageError("--run DIR is required (or --backend ct2 --model EXPORT_DIR)")
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        return load_translator(args)
    if args.run is not None or args.checkpoint is not None:
        raise UsageError(
            "--backend ct2 serves an export folder: give --model EXPORT_DIR (from "
            "`aiayn export --format ct2`), not --run or --checkpoint"
        )
    if args.model is None:
        raise UsageError(
            "--backend ct2 needs --model EXPORT_DIR (from `aiayn export --format ct2`)"
        )
    device = resolve_device(args.device)
    if device.index not in (None, 0):
        raise UsageError(f"--device {args.device}: --backend ct2 runs on cpu or cuda (GPU 0)")
    from aiayn.export.ct2 import Ct2Translator

    return Ct2Translator(args.model, device=device.type, threads=args.threads or 0)


def stopped(signum: int, frame: FrameType | None) -> None:
    """What SIGTERM does after uvicorn's graceful shutdown: nothing, so the command exits 0."""
