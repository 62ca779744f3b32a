"""Where training numbers go: a JSONL file, TensorBoard event files, and a PNG at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiayn.runs import RunError
from aiayn.runs.atomic import atomic_write


class MetricsLog:
    """Append-only metrics: one JSON object per line in `metrics.jsonl`, mirrored to TensorBoard.

    Args:
        run_dir: the run directory (files go to `metrics.jsonl` and `tensorboard/`).
        enabled: False on every process but the main one.
    """

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tensorboard_dir = Path(run_dir) / "tensorboard"
        self.enabled = enabled
        self._writer = None  # created on the first record (after any resume has truncated)
        self._purge_step: int | None = None

    def truncate(self, step: int, drop_valid_at_step: bool = False) -> None:
        """Forget what a resumed run will record again: records past `step`.

        Args:
            step: the update the run resumes after.
            drop_valid_at_step: also forget validation records at `step` itself (the resumed
                checkpoint's validation was interrupted and runs again).
        """
        self._purge_step = step + 1  # TensorBoard drops its own events past `step` likewise
        if not self.enabled or not self.path.exists():
            return

        def kept(record: dict[str, Any]) -> bool:
            at = record.get("step", 0)
            return at < step or (
                at == step and not (drop_valid_at_step and record["kind"] == "valid")
            )

        text = "".join(json.dumps(r) + "\n" for r in read_metrics(self.path) if kept(r))
        atomic_write(self.path, lambda tmp: tmp.write_text(text))

    def log(self, kind: str, step: int, **values: Any) -> None:
        """Record one line, e.g. log("train", 100, loss=3.2, lr=1e-4)."""
        if not self.enabled:
            return
        record = {"kind": kind, "step": step, **values}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        writer = self._tensorboard()
        for key, value in values.items():
            if isinstance(value, int | float):
                writer.add_scalar(f"{kind}/{key}", value, step)

    def _tensorboard(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # heavy import: main process only

            self._writer = SummaryWriter(
                log_dir=str(self.tensorboard_dir), purge_step=self._purge_step
            )
        return self._writer

    def close(self) -> None:
        """Flush TensorBoard."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file.

    A last line cut short (the process was killed while appending it) is skipped; a damaged
    line anywhere else is an error naming it.
    """
    lines = Path(path).read_text().splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):
                break
            raise RunError(f"{path}:{number}: not a JSON record ({error})") from None
    return records


def plot_curves(metrics_path: Path, output: Path) -> Path:
    """Training/validation loss (and validation BLEU, if logged) against updates, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [r for r in records if r["kind"] == "train"]
    valid = [r for r in records if r["kind"] == "valid"]
    bleu = [r for r in valid if "bleu" in r]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss (smoothed)")
    if valid:
        ax.plot([r["step"] for r in valid], [r["nll"] for r in valid], "o-", label="valid NLL")
    ax.set_xlabel("update")
    ax.set_ylabel("loss per token (nats)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if bleu:
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in bleu], [r["bleu"] for r in bleu], "s--", color="tab:green")
        ax2.set_ylabel("valid BLEU")
        handles.append(ax2.lines[0])
        labels.append("valid BLEU")
    ax.legend(handles, labels, loc="upper right")
    fig.tight_layout()
    atomic_write(output, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return output
