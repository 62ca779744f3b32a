"""A local HTTP server standing in for a download host (127.0.0.1, a free port, a folder)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files of a folder without logging each request."""

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@contextmanager
def serve(
    root: Path, handler: type[http.server.BaseHTTPRequestHandler] = QuietHandler
) -> Iterator[str]:
    """Serve `root` with `handler` while the block runs; yields the base URL."""

    class Handler(handler):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[misc]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
