"""Ctrl-C and SIGTERM stop training between two updates, never inside one.

A signal handler that raised `KeyboardInterrupt` wherever it landed could stop the trainer
between the schedule, the optimizer and the step counter, and the checkpoint written then would
disagree with itself. Instead, while training runs, the first SIGINT or SIGTERM only sets a
flag; the loop looks at it between updates (and between the parts of a validation), saves a
consistent checkpoint and returns. Under torchrun the flag travels in the all-reduce that every
update already makes, so every rank stops after the same update. A second SIGINT aborts at once
(`KeyboardInterrupt`), saving nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """A flag set by SIGINT/SIGTERM while installed (`with StopRequest() as stop: ...`).

    Installing needs the main thread (Python delivers signals only there); elsewhere the object
    is a plain flag that `request()` sets.
    """

    def __init__(self) -> None:
        self.requested = False  # a stop was asked for
        self.signal_name: str | None = None  # which signal asked, for messages
        self._previous: dict[int, object] = {}

    def request(self, name: str = "request") -> None:
        """Ask the loop to stop at the next safe point."""
        self.requested = True
        self.signal_name = self.signal_name or name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: abort now
        self.request(signal.Signals(signum).name)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
