"""`aiayn serve` as a real process on 127.0.0.1: it holds load without losing or mixing answers,
survives bad input and clients that leave, and on SIGTERM answers what is in flight, then exits."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchmarks.serve_load import run_load, start_server


def reversal(line: str) -> str:
    return " ".join(reversed(line.split()))


def digits(n: int) -> list[str]:
    """n sentences of 4-6 digits (what the reverse model learnt)."""
    return [" ".join(str((i * 7 + j * 3) % 10) for j in range(4 + i % 3)) for i in range(n)]


def metric(url: str, line_start: str) -> float:
    """The value of the /metrics line that starts with `line_start` (0 if there is none)."""
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.slow  # a server process, and reverse_run trains a model
def test_eight_clients_lose_nothing_get_their_own_answers_and_share_batches(
    reverse_run: Path, tmp_path: Path
) -> None:
    def right(text: str, answer: dict[str, Any]) -> bool:
        return [t["text"] for t in answer["translations"]] == [reversal(text)]

    with start_server(reverse_run, ["--threads", "1"], log=tmp_path / "serve.log") as server:
        result = asyncio.run(run_load(server.url, digits(50), 8, 50, timeout_s=60, check=right))
        assert result.lost == 0 and result.statuses == {"200": 400}, result
        assert result.wrong == 0  # every answer is the reversal of its own request's sentence
        assert result.mean_batch > 1, result
        # Bad input over a real socket: a 4xx, and the server goes on serving.
        for body, status in [(b'{"text": "1 2', 400), (b'{"text": "\xc3\x28"}', 400),
                             (b'{"text": 5}', 422), (b'{"text": ""}', 422)]:  # fmt: skip
            assert httpx.post(f"{server.url}/v1/translate", content=body).status_code == status
        try:  # 10 MB: refused at its Content-Length; the client may see the answer or a reset
            big = httpx.post(f"{server.url}/v1/translate", content=b"1 " * (5 << 20))
            assert big.status_code == 413
        except httpx.TransportError:
            pass
        answer = httpx.post(f"{server.url}/v1/translate", json={"text": "1 2 3 4"})
        assert answer.json()["translations"][0]["text"] == "4 3 2 1"


def send_raw_and_leave(url: str, body: bytes) -> None:
    """Send a request over a socket and close it without reading the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        head = f"POST /v1/translate HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
        s.sendall(f"{head}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        time.sleep(0.3)


@pytest.mark.slow  # a server process, and reverse_run trains a model
def test_a_client_that_leaves_is_dropped_and_sigterm_answers_the_request_in_flight(
    reverse_run: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    # A lone request waits 1.5 s for company: long enough to leave, or to be in flight.
    with start_server(reverse_run, ["--max-wait-ms", "1500"], log=log) as server:
        send_raw_and_leave(server.url, b'{"text": "1 2 3 4"}')
        deadline = time.monotonic() + 10
        gone = 'aiayn_requests_total{endpoint="translate",status="499"}'
        while metric(server.url, gone) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metric(server.url, gone) == 1  # noticed at once, not after its batch
        assert metric(server.url, "aiayn_queue_depth") == 0  # it left the queue

        answers: list[httpx.Response] = []
        in_flight = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{server.url}/v1/translate", json={"text": "5 6 7 8"}, timeout=30)
            )
        )
        in_flight.start()
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.ConnectError):  # no new connections once stopping
            httpx.get(f"{server.url}/health")
        in_flight.join(timeout=30)
        assert answers and answers[0].status_code == 200
        assert answers[0].json()["translations"][0]["text"] == "8 7 6 5"
        assert server.process.wait(timeout=30) == 0
    assert "aiayn serve: stopped" in log.read_text()
