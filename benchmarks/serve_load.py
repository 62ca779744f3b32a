"""Load test of `aiayn serve` (issue #14): concurrent clients against a server on 127.0.0.1.

    python -m benchmarks.serve_load --run runs/en-de --clients 1 8 32 128 --requests 50 \
        [--compare-unbatched] [--split test_2016_flickr] [--data-dir DIR] [--json FILE] \
        [--server-args "--threads 2 --max-wait-ms 10"] [--backend ours ct2] [--ct2-model DIR]

Starts `aiayn serve` on a free loopback port (and, with --compare-unbatched, a second time with
`--max-batch-sentences 1`) for each --backend: `ours` serves the run, `ct2` its CTranslate2
export (--ct2-model, or else the run exported to a temporary folder, float32). Then for each
number of clients it runs that many asyncio clients, each sending --requests requests of one
sentence (the run's test sentences in turn) and waiting for each answer before sending the
next. Everything is bounded: the requests, and the time of each
(--timeout-s). Reported per row: answers by status, requests lost (no answer at all),
sentences/s, latency p50/p95/p99, and the mean number of requests per model call, read from the
server's /metrics before and after the row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass
class LoadResult:
    """What one load run saw, from the clients' side and the server's /metrics."""

    clients: int
    requests: int  # requests sent
    statuses: dict[str, int] = field(default_factory=dict)  # answers by HTTP status
    lost: int = 0  # requests that got no answer (connection error, client timeout)
    wrong: int = 0  # 200 answers that `check` refused
    seconds: float = 0.0  # wall time of the whole run
    latencies_ms: list[float] = field(default_factory=list, repr=False)  # of the 200s
    batches: float = 0.0  # model calls the server made during the run
    batched_requests: float = 0.0  # requests those calls served

    @property
    def sentences_per_s(self) -> float:
        """Translated sentences (200 answers) per second of wall time."""
        return self.statuses.get("200", 0) / self.seconds if self.seconds else 0.0

    @property
    def mean_batch(self) -> float:
        """Mean requests per model call."""
        return self.batched_requests / self.batches if self.batches else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile of the latencies of the 200 answers (nearest rank), in ms."""
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    def row(self) -> dict[str, Any]:
        """The JSON record of the run."""
        record = asdict(self)
        del record["latencies_ms"]
        quantiles = {f"p{q}_ms": self.percentile(q) for q in (50, 95, 99)}
        return {**record, "sentences_per_s": self.sentences_per_s, **quantiles,
                "mean_batch": self.mean_batch}  # fmt: skip


def batch_counts(metrics_text: str) -> tuple[float, float]:
    """(model calls, requests they served) from the text of GET /metrics."""
    found = dict.fromkeys(("count", "sum"), 0.0)
    for line in metrics_text.splitlines():
        match = re.match(r"aiayn_batch_requests_(count|sum) (\S+)$", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found["count"], found["sum"]


async def run_load(
    url: str,
    sentences: Sequence[str],
    clients: int,
    requests_per_client: int,
    timeout_s: float = 60.0,
    body: dict[str, Any] | None = None,
    check: Callable[[str, dict[str, Any]], bool] | None = None,
) -> LoadResult:
    """`clients` clients, each sending `requests_per_client` one-sentence requests in turn.

    Args:
        url: the server, e.g. "http://127.0.0.1:8000".
        sentences: what to translate; request k of client c sends sentence
            (c * requests_per_client + k) mod len(sentences).
        clients: concurrent clients (one connection each).
        requests_per_client: requests each client sends, one after the other.
        timeout_s: how long a client waits for one answer before counting it lost.
        body: other keys of each request (e.g. {"beam": 4}).
        check: `check(sentence, answer JSON)` says whether a 200 answer is right (tests use it
            to prove that no answer carries another request's translation).

    Returns:
        The statuses, latencies and batch sizes seen.
    """
    result = LoadResult(clients, clients * requests_per_client)
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as http:
        before = batch_counts((await http.get("/metrics")).text)

        async def client(c: int) -> None:
            for k in range(requests_per_client):
                text = sentences[(c * requests_per_client + k) % len(sentences)]
                sent = time.perf_counter()
                try:
                    response = await http.post("/v1/translate", json={"text": text, **(body or {})})
                except httpx.HTTPError:
                    result.lost += 1
                    continue
                statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    result.latencies_ms.append((time.perf_counter() - sent) * 1000)
                    if check is not None and not check(text, response.json()):
                        result.wrong += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        result.seconds = time.perf_counter() - started
        after = batch_counts((await http.get("/metrics")).text)
    result.statuses = dict(statuses)
    result.batches, result.batched_requests = after[0] - before[0], after[1] - before[1]
    return result


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running `aiayn serve` process and its address."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path


@contextmanager
def start_server(
    run: str | Path,
    args: Sequence[str] = (),
    log: str | Path | None = None,
    wait_s: float = 120,
    backend: str = "ours",
) -> Iterator[Server]:
    """Start `aiayn serve --run RUN ARGS` (or `--backend ct2 --model RUN ARGS`) on a free
    loopback port; stop it with SIGTERM after.

    Args:
        run: the run directory, or for the ct2 backend the export folder.
        args: more options of `aiayn serve`.
        log: where the server's output goes (default: a file beside nothing: the null device).
        wait_s: how long to wait for /health to say ready.
        backend: "ours" or "ct2".

    Yields:
        The server, ready (GET /health answered 200).

    Raises:
        RuntimeError: the server exited or was not ready in time (its output is in `log`).
    """
    port = free_port()
    log_path = Path(log) if log is not None else Path(os.devnull)
    model = (
        ["--run", str(run)] if backend == "ours" else ["--backend", backend, "--model", str(run)]
    )
    command = [sys.executable, "-m", "aiayn", "serve", *model, "--port", str(port)]
    with open(log_path, "wb") as out:
        process = subprocess.Popen([*command, *args], stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + wait_s
        while not ready(server.url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"aiayn serve did not start (exit {process.poll()}); see {log}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def ready(url: str) -> bool:
    """Whether the server at `url` answers GET /health with 200."""
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the load runs."""
    lines = [
        "| server | clients | requests | 200 | other answers | lost | sentences/s | "
        "p50 ms | p95 ms | p99 ms | mean batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        other = {s: n for s, n in r["statuses"].items() if s != "200"}
        lines.append(
            f"| {r['server']} | {r['clients']} | {r['requests']} | {r['statuses'].get('200', 0)} "
            f"| {other or '-'} | {r['lost']} | {r['sentences_per_s']:.1f} | {r['p50_ms']:.0f} | "
            f"{r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['mean_batch']:.2f} |"
        )
    return "\n".join(lines)


def load_sentences(args: argparse.Namespace) -> list[str]:
    """The sentences to send: --src-file's lines, else the run's test split."""
    from aiayn.config import RunConfig
    from aiayn.data import read_lines
    from aiayn.evaluation.scoring_data import evaluation_data

    if args.src_file is not None:
        lines = [line for line in read_lines(args.src_file) if line.strip()]
    else:
        config = RunConfig.load(Path(args.run) / "config.yaml").data
        lines = evaluation_data(config, split=args.split, data_dir=args.data_dir).sources
    if not lines:
        raise SystemExit("no sentences to send")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__)
    parser.add_argument(
        "--run", required=True, help="run directory to serve (and whose test sentences to send)"
    )
    parser.add_argument(
        "--backend", nargs="+", choices=("ours", "ct2"), default=["ours"],
        help="the backends to measure, one server each (default: ours)",
    )  # fmt: skip
    parser.add_argument(
        "--ct2-model", type=Path,
        help="the ct2 backend's export folder (default: the run exported to a temporary one)",
    )  # fmt: skip
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="per request")
    parser.add_argument("--src-file", help="sentences to send (default: the run's test split)")
    parser.add_argument("--split", help="a Multi30k split (default: test_2016_flickr)")
    parser.add_argument("--data-dir", help="the Multi30k files (default: the run's)")
    parser.add_argument("--server-args", default="", help="more options of `aiayn serve`")
    parser.add_argument(
        "--compare-unbatched",
        action="store_true",
        help="also measure the server with --max-batch-sentences 1",
    )
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--log-dir", type=Path, help="keep the servers' output here")
    return parser.parse_args(argv)


def export_ct2(run: str | Path, folder: Path) -> Path:
    """`aiayn export --run RUN --format ct2 --out FOLDER` (float32), for the ct2 backend."""
    from aiayn.export import load_source, write_export
    from aiayn.export.ct2 import write_ct2

    source = load_source(run)
    return write_export(folder, source, "ct2", lambda out: write_ct2(source, out))


def measure(
    server: AbstractContextManager[Server],
    name: str,
    sentences: list[str],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Start `server`, run each --clients load against it, and return (and print) the rows."""
    rows = []
    with server as running:
        for clients in args.clients:
            result = asyncio.run(
                run_load(running.url, sentences, clients, args.requests, args.timeout_s)
            )
            rows.append({"server": name, **result.row()})
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sentences = load_sentences(args)
    modes = {"batched": shlex.split(args.server_args)}
    if args.compare_unbatched:
        modes["unbatched"] = [*modes["batched"], "--max-batch-sentences", "1"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        models = {"ours": args.run}
        if "ct2" in args.backend:
            models["ct2"] = args.ct2_model or export_ct2(args.run, Path(tmp) / "ct2")
        for backend in args.backend:
            for mode, server_args in modes.items():
                log = args.log_dir / f"serve-{backend}-{mode}.log" if args.log_dir else None
                server = start_server(models[backend], server_args, log=log, backend=backend)
                rows += measure(server, f"{backend} {mode}", sentences, args)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
