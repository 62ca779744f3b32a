"""The training loop: token batches, label-smoothed loss, Adam with the paper's schedule.

The trainer knows nothing of search or scoring. Validation beyond the loss (e.g. BLEU) comes in
as hooks, callables `hook(model, epoch, step) -> {"bleu": 31.2}` run on the main process after
each validation (as minGPT's trainer takes callbacks); the CLI plugs BLEU in.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from aiayn.data import Batch, Collator, IdPair, TokenBatchSampler
from aiayn.model import Transformer
from aiayn.runs import (
    RunDir,
    average_checkpoints,
    load_trainer_state,
    load_weights,
    prune_checkpoints,
    save_checkpoint,
    step_checkpoints,
)
from aiayn.runs.checkpoint import step_dir_name
from aiayn.training.config import TrainConfig
from aiayn.training.distributed import DistInfo, all_reduce_sum, barrier
from aiayn.training.loss import label_smoothed_nll
from aiayn.training.metrics import MetricsLog, plot_curves
from aiayn.training.optim import make_optimizer
from aiayn.training.precision import autocast, resolve_precision
from aiayn.training.rng import rng_state, set_rng_state
from aiayn.training.schedule import NoamSchedule

ValidationHook = Callable[[Transformer, int, int], dict[str, float]]


@dataclass
class TrainResult:
    """What a finished (or interrupted) training run reports."""

    steps: int
    epochs: int
    seconds: float
    tokens_per_second: float
    last_valid: dict[str, float]
    best: float | None
    interrupted: bool = False


class Trainer:
    """Trains a Transformer on encoded sentence pairs and writes checkpoints to a run directory.

    Args:
        model: the model, already on `device`.
        config: training hyper-parameters.
        train: encoded (source ids, target ids) training pairs.
        valid: encoded validation pairs.
        run: the run directory (only the main process writes to it).
        device: where to compute.
        dist: this process's place in a torchrun run.
        hooks: extra validation metrics, run on the main process (see module docstring).
        collator: builds batches; the default shifts targets right (BOS + y -> y + EOS).
    """

    def __init__(
        self,
        model: Transformer,
        config: TrainConfig,
        train: Sequence[IdPair],
        valid: Sequence[IdPair],
        run: RunDir,
        device: torch.device,
        dist: DistInfo | None = None,
        hooks: Sequence[ValidationHook] = (),
        collator: Collator | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.train_data = train
        self.valid_data = valid
        self.run = run
        self.device = device
        self.dist = dist or DistInfo()
        self.hooks = list(hooks)
        self.collator = collator or Collator()
        self.precision = resolve_precision(config.precision, device, model.config.d_model)
        self.sampler = TokenBatchSampler(
            [(len(s), len(t)) for s, t in train],
            config.max_tokens,
            max_sentences=config.max_sentences,
            seed=config.seed,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
        )
        self.optimizer = make_optimizer(model, config, device)
        self.schedule = NoamSchedule(
            self.optimizer, model.config.d_model, config.warmup, config.lr_factor
        )
        self.ddp: nn.Module | None = None
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.ddp = DistributedDataParallel(model, device_ids=ids)
        forward = self.ddp or model
        self.forward: nn.Module = torch.compile(forward) if config.compile else forward
        self.metrics = MetricsLog(run.path, enabled=self.dist.is_main)
        self.step = 0  # updates taken
        self.epoch = 0  # the epoch being trained (from 0)
        self.consumed = 0  # batches of this epoch used by completed updates
        self.best: float | None = None
        self._boundary_rng = rng_state()
        if device.type == "cpu":
            # Adam's second moments of rarely-updated rows decay into subnormal floats, which
            # make CPU arithmetic several times slower.
            torch.set_flush_denormal(True)

    # ------------------------------------------------------------------------------- one update

    def _update(self, batches: list[Batch]) -> tuple[float, float, float]:
        """Forward/backward over the batches of one update, then one optimizer step.

        Returns:
            Global (summed over ranks) smoothed loss, NLL and target tokens.
        """
        self.model.train()
        local = torch.zeros(3, dtype=torch.float64)
        for i, batch in enumerate(batches):
            batch = batch.to(self.device, non_blocking=True)
            last = i == len(batches) - 1
            # Gradients are averaged over ranks once per update, not per batch.
            sync = (
                self.ddp.no_sync()
                if self.ddp is not None and not last
                else contextlib.nullcontext()
            )
            with sync:
                with autocast(self.precision, self.device):
                    logits = self.forward(
                        batch.src,
                        batch.tgt_in,
                        batch.src_mask,
                        batch.tgt_mask,
                        output_mask=batch.tgt_mask,  # the generator only sees real targets
                    )
                loss, nll = label_smoothed_nll(
                    logits, batch.tgt_out[batch.tgt_mask], self.config.label_smoothing
                )
                loss.backward()
            local += torch.tensor(
                [loss.item(), nll.item(), batch.n_tgt_tokens], dtype=torch.float64
            )
        total = all_reduce_sum(local.to(self.device), self.dist).cpu()
        n_tokens = total[2].item()
        # The gradient of the summed loss, divided by the target tokens of the whole update over
        # every rank: equal to one process on the same global batch. DDP already averaged over
        # ranks (divided by world_size), so multiply that back.
        scale = self.dist.world_size / max(n_tokens, 1.0)
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        torch._foreach_mul_(grads, scale)
        if self.config.clip_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
        self.schedule.step()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total[0].item(), total[1].item(), n_tokens

    def _groups(self) -> Iterator[list[Batch]]:
        """This epoch's remaining batches, `update_freq` at a time."""
        group: list[Batch] = []
        for indices in self.sampler:
            group.append(self.collator([self.train_data[i] for i in indices]))
            if len(group) == self.config.update_freq:
                yield group
                group = []
        if group:
            yield group

    # ------------------------------------------------------------------------------- validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation loss, NLL and perplexity per target token, plus the hooks' metrics."""
        self.model.eval()
        sampler = TokenBatchSampler(
            [(len(s), len(t)) for s, t in self.valid_data],
            self.config.max_tokens,
            shuffle=False,
        )
        sums = torch.zeros(3, dtype=torch.float64)
        for indices in sampler:
            batch = self.collator([self.valid_data[i] for i in indices]).to(self.device)
            with autocast(self.precision, self.device):
                logits = self.model(
                    batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask, batch.tgt_mask
                )
            loss, nll = label_smoothed_nll(
                logits, batch.tgt_out[batch.tgt_mask], self.config.label_smoothing
            )
            sums += torch.tensor([loss.item(), nll.item(), batch.n_tgt_tokens], dtype=torch.float64)
        loss, nll, tokens = sums.tolist()
        metrics = {"loss": loss / tokens, "nll": nll / tokens, "ppl": math.exp(nll / tokens)}
        if self.dist.is_main:
            for hook in self.hooks:
                metrics.update(hook(self.model, self.epoch, self.step))
        self.model.train()
        return metrics

    def _is_better(self, metrics: dict[str, float]) -> bool:
        """Whether these validation metrics beat the best so far (NLL lower, BLEU higher)."""
        if self.config.best_metric == "bleu" and "bleu" in metrics:
            value = -metrics["bleu"]
        else:
            value = metrics["nll"]
        if self.best is None or value < self.best:
            self.best = value
            return True
        return False

    # ------------------------------------------------------------------------------ checkpoints

    def _trainer_state(self, epoch: int, consumed: int) -> dict[str, Any]:
        sampler_state = self.sampler.state_dict(batches_consumed=consumed)
        sampler_state["epoch"] = epoch
        return {
            "step": self.step,
            "epoch": epoch,
            "consumed": consumed,
            "best": self.best,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "sampler": sampler_state,
            "rng": self._boundary_rng,
        }

    def save(self, epoch: int, consumed: int, meta: dict[str, Any] | None = None) -> Path | None:
        """Checkpoint the state after the last completed update (main process only)."""
        path = None
        if self.dist.is_main:
            path = self.run.checkpoints / step_dir_name(self.step)
            save_checkpoint(
                path,
                self.model,
                self.model.config,
                self._trainer_state(epoch, consumed),
                {"step": self.step, "epoch": epoch, **(meta or {})},
            )
            prune_checkpoints(self.run.checkpoints, self.config.keep_last)
        barrier(self.dist)
        return path

    def resume(self) -> bool:
        """Continue from the newest checkpoint of the run, if there is one."""
        found = step_checkpoints(self.run.checkpoints)
        if not found:
            return False
        latest = found[-1]
        load_weights(latest, self.model, self.model.config)
        state = load_trainer_state(latest)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.sampler.load_state_dict(state["sampler"])
        self.step, self.epoch, self.consumed = state["step"], state["epoch"], state["consumed"]
        self.best = state["best"]
        set_rng_state(state["rng"])
        self._boundary_rng = state["rng"]
        self.metrics.truncate_after(self.step)
        return True

    # ---------------------------------------------------------------------------------- the loop

    def _done(self) -> bool:
        c = self.config
        return bool(c.max_steps and self.step >= c.max_steps) or bool(
            c.max_epochs and self.epoch >= c.max_epochs
        )

    def _validate_and_checkpoint(
        self, epoch: int, consumed: int, validate: bool
    ) -> dict[str, float]:
        """Validate (if asked), checkpoint the position (`epoch`, `consumed`) and keep the best."""
        metrics: dict[str, float] = {}
        if validate:
            metrics = self.validate()
            self.metrics.log("valid", self.step, epoch=epoch, **metrics)
        better = bool(metrics) and self._is_better(metrics)
        path = self.save(epoch, consumed, {"valid": metrics})
        if better and path is not None:
            meta = {"step": self.step, "epoch": epoch, "valid": metrics}
            save_checkpoint(
                self.run.checkpoints / "best", self.model, self.model.config, None, meta
            )
        return metrics

    def _report(self, bar: tqdm, metrics: dict[str, float]) -> None:
        """One line under the progress bar after a validation."""
        if not metrics or not (self.dist.is_main and self.config.progress):
            return
        line = f"epoch {self.epoch}: valid loss {metrics['loss']:.3f} ppl {metrics['ppl']:.2f}"
        if "bleu" in metrics:
            line += f" BLEU {metrics['bleu']:.2f}"
        bar.write(line)

    def fit(self) -> TrainResult:
        """Train until `max_steps` updates or `max_epochs` epochs, whichever comes first."""
        c = self.config
        per_epoch = math.ceil(len(self.sampler) / c.update_freq)
        total = c.max_steps or per_epoch * c.max_epochs
        if c.max_steps and c.max_epochs:
            total = min(c.max_steps, per_epoch * c.max_epochs)
        bar = tqdm(
            total=total,
            initial=self.step,
            disable=not (c.progress and self.dist.is_main),
            unit="upd",
            dynamic_ncols=True,
        )
        start, tokens_seen, last_valid = time.perf_counter(), 0.0, {}
        interrupted = False
        window = _Window()
        try:
            while not self._done():
                self.sampler.set_epoch(self.epoch)
                epoch_start, epoch_tokens = time.perf_counter(), 0.0
                for group in self._groups():
                    loss, nll, n = self._update(group)
                    self.step += 1
                    self.consumed += len(group)
                    self._boundary_rng = rng_state()
                    tokens_seen += n
                    epoch_tokens += n
                    window.add(loss, nll, n)
                    bar.update(1)
                    if self.step % c.log_every == 0 or self.step == 1:
                        record = window.flush(self.optimizer.param_groups[0]["lr"])
                        self.metrics.log("train", self.step, epoch=self.epoch + 1, **record)
                        bar.set_postfix(
                            loss=f"{record['loss']:.3f}",
                            lr=f"{record['lr']:.2e}",
                            tok_s=f"{record['tokens_per_s']:.0f}",
                        )
                    if c.save_every and self.step % c.save_every == 0:
                        self.save(self.epoch, self.consumed)
                    if c.max_steps and self.step >= c.max_steps:
                        break
                if self.consumed >= len(self.sampler):  # the epoch is complete
                    seconds = time.perf_counter() - epoch_start
                    speed = epoch_tokens / max(seconds, 1e-9)  # per epoch: shows any slowdown
                    self.metrics.log(
                        "epoch",
                        self.step,
                        epoch=self.epoch + 1,
                        seconds=seconds,
                        tokens_per_s=speed,
                    )
                    self.epoch += 1
                    self.consumed = 0
                    due = self.epoch % c.validate_every == 0 or self._done()
                    last_valid = self._validate_and_checkpoint(self.epoch, 0, due)
                else:  # stopped by max_steps inside an epoch
                    last_valid = self._validate_and_checkpoint(self.epoch, self.consumed, True)
                self._report(bar, last_valid)
        except KeyboardInterrupt:
            # Ctrl-C: keep the last completed update (a partial one is dropped).
            interrupted = True
            self.optimizer.zero_grad(set_to_none=True)
            self.save(self.epoch, self.consumed)
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        if not interrupted:
            self._finish()
        self.metrics.close()
        return TrainResult(
            steps=self.step,
            epochs=self.epoch,
            seconds=seconds,
            tokens_per_second=tokens_seen / max(seconds, 1e-9),
            last_valid=last_valid,
            best=self.best,
            interrupted=interrupted,
        )

    def _finish(self) -> None:
        """Average the last checkpoints if asked, name the default checkpoint, draw curves."""
        if not self.dist.is_main:
            return
        best = self.run.checkpoints / "best"
        default = best if best.is_dir() else self.run.latest_checkpoint()
        if self.config.average_last:
            last = step_checkpoints(self.run.checkpoints)[-self.config.average_last :]
            default = average_checkpoints(last, self.run.checkpoints / "average")
        self.run.set_default_checkpoint(default)
        if self.run.metrics_file.exists():
            plot_curves(self.run.metrics_file, self.run.curves_file)


class _Window:
    """Running sums of the training loss between two log lines."""

    def __init__(self) -> None:
        self.loss = self.nll = self.tokens = 0.0
        self.start = time.perf_counter()

    def add(self, loss: float, nll: float, tokens: float) -> None:
        """Count one update's summed losses and target tokens."""
        self.loss += loss
        self.nll += nll
        self.tokens += tokens

    def flush(self, lr: float) -> dict[str, float]:
        """Per-token averages and throughput since the last flush; then start again."""
        seconds = max(time.perf_counter() - self.start, 1e-9)
        tokens = max(self.tokens, 1.0)
        record = {
            "loss": self.loss / tokens,
            "nll": self.nll / tokens,
            "lr": lr,
            "tokens": self.tokens,
            "tokens_per_s": self.tokens / seconds,
        }
        self.__init__()
        return record
