"""What training reports: the running training-loss window and the final `TrainResult`."""

from __future__ import annotations

import time
from dataclasses import dataclass

from torch import Tensor


@dataclass
class TrainResult:
    """What a finished (or interrupted) training run reports.

    Attributes:
        steps: updates taken since the run began.
        epochs: epochs completed.
        seconds: training time of the whole run (every session of a resumed run).
        tokens_per_second: target tokens per second over the whole run.
        last_valid: the latest validation metrics.
        best: the best validation value so far (NLL, or minus BLEU).
        interrupted: stopped by a signal before the end of its schedule.
    """

    steps: int
    epochs: int
    seconds: float
    tokens_per_second: float
    last_valid: dict[str, float]
    best: float | None
    interrupted: bool = False


class LossWindow:
    """Running sums of the training loss between two log lines.

    The losses may be device tensors (`step.UpdateResult`): they are summed where they are and
    read only at `flush`, so that logging, not every update, waits for the device.
    """

    def __init__(self) -> None:
        self.loss: float | Tensor = 0.0
        self.nll: float | Tensor = 0.0
        self.tokens = 0.0
        self.start = time.perf_counter()

    def add(self, loss: float | Tensor, nll: float | Tensor, tokens: float) -> None:
        """Count one update's summed losses and target tokens."""
        self.loss = self.loss + loss
        self.nll = self.nll + nll
        self.tokens += tokens

    def flush(self, lr: float) -> dict[str, float]:
        """Per-token averages and throughput since the last flush; then start again."""
        seconds = max(time.perf_counter() - self.start, 1e-9)
        tokens = max(self.tokens, 1.0)
        record = {
            "loss": float(self.loss) / tokens,
            "nll": float(self.nll) / tokens,
            "lr": lr,
            "tokens": self.tokens,
            "tokens_per_s": self.tokens / seconds,
        }
        self.__init__()
        return record


def validation_line(epoch: int, metrics: dict[str, float]) -> str:
    """The line shown under the progress bar after a validation."""
    line = f"epoch {epoch}: valid loss {metrics['loss']:.3f} ppl {metrics['ppl']:.2f}"
    if "bleu" in metrics:
        line += f" BLEU {metrics['bleu']:.2f}"
    return line
