"""The training loop: token batches, label-smoothed loss, Adam with the paper's schedule.

One update (forward, loss, backward, optimizer step) is `TrainStep` (step.py); this module
drives it: batches, epochs, validation, checkpoints, logging. Validation, with its hooks
(BLEU comes in as one) and the best result so far, is `Validator` (validator.py).

Checkpoints are written at boundaries between updates, each a consistent picture of the run
(weights, optimizer, schedule, data position, every rank's random state, time and tokens so
far): at the end of an epoch (after its validation), every `save_every` updates, where
`max_steps` stops, and where Ctrl-C or SIGTERM stops training (see interrupt.py). Their kinds
decide what is kept and averaged (see aiayn.runs.retention).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from aiayn.data import Batch, Collator, IdPair, TokenBatchSampler, pair_lengths
from aiayn.data.resampling import PerEpochPairs
from aiayn.model import Transformer
from aiayn.runs import RunDir
from aiayn.training.checkpointing import Checkpointer
from aiayn.training.config import TrainConfig
from aiayn.training.distributed import DistInfo, all_reduce_sum, gather_objects
from aiayn.training.interrupt import StopRequest
from aiayn.training.metrics import MetricsLog
from aiayn.training.optim import make_optimizer
from aiayn.training.precision import resolve_precision
from aiayn.training.progress import LossWindow, TrainResult, validation_line
from aiayn.training.rng import rng_state, set_rng_state
from aiayn.training.schedule import make_schedule
from aiayn.training.step import TrainStep
from aiayn.training.validator import ValidationHook, Validator, stop_agreed

log = logging.getLogger(__name__)


class Trainer:
    """Trains a Transformer on encoded sentence pairs and writes checkpoints to a run directory.

    Args:
        model: the model, already on `device`.
        config: training hyper-parameters.
        train: encoded (source ids, target ids) training pairs, or pairs drawn anew for each
            epoch (`aiayn.data.resampling.PerEpochPairs`: subword sampling).
        valid: encoded validation pairs.
        run: the run directory (only the main process writes to it).
        device: where to compute.
        dist: this process's place in a torchrun run.
        hooks: extra validation metrics, run on the main process (see validator.py).
    """

    def __init__(
        self,
        model: Transformer,
        config: TrainConfig,
        train: Sequence[IdPair] | PerEpochPairs,
        valid: Sequence[IdPair],
        run: RunDir,
        device: torch.device,
        dist: DistInfo | None = None,
        hooks: Sequence[ValidationHook] = (),
    ) -> None:
        self.model = model
        self.config = config
        self._train_source = train
        # Data drawn per epoch is drawn on first use, so a resumed run draws only its epoch.
        self._data_epoch: int | None = None  # the epoch _train_data and _sampler were made for
        self._train_data: Sequence[IdPair] | None = None
        self._sampler: TokenBatchSampler | None = None
        self.run = run
        self.device = device
        self.dist = dist or DistInfo()
        if not isinstance(train, PerEpochPairs):
            self._train_data, self._sampler = train, self._make_sampler(train)
        self.collator = Collator()  # shifts targets right: BOS + y -> y + EOS
        self.precision = resolve_precision(config.precision, device, model.config.d_model)
        self.validator = Validator(
            model, valid, config, self.collator, self.precision, device, self.dist, hooks
        )
        self.optimizer = make_optimizer(model, config, device)
        self.schedule = make_schedule(
            self.optimizer, model.config.d_model, config, self._planned_updates
        )
        self.ddp: DistributedDataParallel | None = None
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.ddp = DistributedDataParallel(model, ids, process_group=self.dist.group)
        forward = self.ddp or model
        self.train_step = TrainStep(  # one update; the benchmark times this same object
            model,
            self.optimizer,
            self.schedule,
            label_smoothing=config.label_smoothing,
            token_dropout=config.token_dropout,
            clip_norm=config.clip_norm,
            precision=self.precision,
            device=device,
            dist=self.dist,
            forward=torch.compile(forward) if config.compile else forward,
            ddp=self.ddp,
        )
        self.metrics = MetricsLog(run.path, enabled=self.dist.is_main)
        self.checkpoints = Checkpointer(run, model, config, self.dist)
        self.step = 0  # updates taken
        self.epoch = 0  # epochs completed (= the epoch being trained, from 0)
        self.consumed = 0  # batches of this epoch used by completed updates
        self.pending_validation = False  # the last epoch's validation was interrupted
        self.last_valid: dict[str, float] = {}
        self.stop = StopRequest()
        self._resumed_kinds: set[str] = set()  # kinds of the checkpoint resumed from
        self._boundary_rng = rng_state()
        self._seconds_before = 0.0  # training time of earlier sessions (resumed runs)
        self._out_of_time = False  # max_minutes spent at the last epoch end
        self._tokens_before = 0.0  # target tokens of earlier sessions
        self._session_tokens = 0.0
        self._session_start = time.perf_counter()
        if device.type == "cpu":
            # Adam's second moments of rarely-updated rows decay into subnormal floats, which
            # make CPU arithmetic several times slower.
            torch.set_flush_denormal(True)

    def _make_sampler(self, train: Sequence[IdPair]) -> TokenBatchSampler:
        # Bare lengths (the sampler adds the target's BOS/EOS), as an array: a prepared
        return TokenBatchSampler(  # dataset's memory-mapped one, not copied
            pair_lengths(train),
            self.config.max_tokens,
            max_sentences=self.config.max_sentences,
            seed=self.config.seed,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
        )

    @property
    def train_data(self) -> Sequence[IdPair]:
        """The encoded training pairs of the current epoch."""
        if self._train_data is None:
            self._draw(self.epoch)
        assert self._train_data is not None
        return self._train_data

    @property
    def sampler(self) -> TokenBatchSampler:
        """The batch sampler over `train_data`."""
        if self._sampler is None:
            self._draw(self.epoch)
        assert self._sampler is not None
        return self._sampler

    def _draw(self, epoch: int) -> None:
        """Data that changes per epoch (subword sampling): draw `epoch`'s, with a sampler over
        its lengths (same seed: the batch order stays a function of the epoch)."""
        assert isinstance(self._train_source, PerEpochPairs)
        self._train_data = self._train_source.for_epoch(epoch)
        self._sampler = self._make_sampler(self._train_data)
        self._data_epoch = epoch

    def _use_epoch(self, epoch: int) -> None:
        """Give the sampler `epoch`, drawing the epoch's data first if it changes per epoch."""
        if isinstance(self._train_source, PerEpochPairs) and epoch != self._data_epoch:
            self._draw(epoch)
        self.sampler.set_epoch(epoch)

    def _planned_updates(self) -> int:
        """Updates the run is configured for: max_steps, else max_epochs' worth (the smaller)."""
        per_epoch = math.ceil(len(self.sampler) / self.config.update_freq)
        by_epochs = self.config.max_epochs * per_epoch
        return min(n for n in (self.config.max_steps, by_epochs) if n > 0)

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

    # ------------------------------------------------------------------------------ checkpoints

    def seconds(self) -> float:
        """Training time of the whole run so far, resumed sessions included."""
        return self._seconds_before + time.perf_counter() - self._session_start

    def tokens(self) -> float:
        """Target tokens trained on in the whole run so far."""
        return self._tokens_before + self._session_tokens

    def _trainer_state(self) -> dict[str, Any]:
        """The state after the last completed update; collective (every rank's RNG state)."""
        sampler_state = self.sampler.state_dict(batches_consumed=self.consumed)
        sampler_state["epoch"] = self.epoch
        return {
            "step": self.step,
            "epoch": self.epoch,
            "consumed": self.consumed,
            "best": self.validator.best,
            "pending_validation": self.pending_validation,
            "train_seconds": self.seconds(),
            "train_tokens": self.tokens(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "sampler": sampler_state,
            "rng": gather_objects(self._boundary_rng, self.dist),  # one entry per rank
        }

    def save(self, kinds: set[str], metrics: dict[str, float] | None = None) -> Path | None:
        """Checkpoint the state after the last completed update (written by the main process).

        Args:
            kinds: why it is written ("epoch", "periodic", "final", "interrupt").
            metrics: the validation metrics of this point, if it was validated.

        Returns:
            The checkpoint folder on the main process, else None.
        """
        state = self._trainer_state()  # every rank takes part: it gathers RNG states
        meta = {
            "step": self.step,
            "epoch": self.epoch,
            "kinds": sorted(kinds),
            "valid": metrics or {},
            "pending_validation": self.pending_validation,
        }
        better = bool(metrics) and self.validator.is_better(metrics)
        return self.checkpoints.save(self.step, state, meta, better)

    def resume(self) -> bool:
        """Continue from the newest intact checkpoint of the run, if there is one."""
        found = self.checkpoints.load_latest()
        if found is None:
            return False
        state, meta = found
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self._use_epoch(int(state["sampler"]["epoch"]))
        self.sampler.load_state_dict(state["sampler"])
        self.step, self.epoch, self.consumed = state["step"], state["epoch"], state["consumed"]
        self.validator.best = state["best"]
        self.pending_validation = state.get("pending_validation", False)
        self._seconds_before = state.get("train_seconds", 0.0)
        self._tokens_before = state.get("train_tokens", 0.0)
        rng = state["rng"]
        # One state per rank; checkpoints from before that held rank 0's alone.
        self._boundary_rng = rng[self.dist.rank] if isinstance(rng, list) else rng
        set_rng_state(self._boundary_rng)
        self.last_valid = meta.get("valid") or {}
        self._resumed_kinds = set(meta.get("kinds", []))
        self.metrics.truncate(self.step, drop_valid_at_step=self.pending_validation)
        return True

    # ---------------------------------------------------------------------------------- the loop

    def _done(self) -> bool:
        c = self.config
        by_epochs = bool(c.max_epochs and self.epoch >= c.max_epochs)
        return self._max_steps_reached() or by_epochs or self._out_of_time

    def _minutes_up(self, seconds: float) -> bool:
        """Whether `max_minutes` is spent, on any rank (collective under torchrun: the ranks'
        clocks differ a little, and all must stop at the same epoch end)."""
        if not self.config.max_minutes:
            return False
        over = torch.tensor([float(seconds >= 60.0 * self.config.max_minutes)])
        return all_reduce_sum(over.to(self.device, torch.float64), self.dist).item() > 0

    def _max_steps_reached(self) -> bool:
        return bool(self.config.max_steps and self.step >= self.config.max_steps)

    def _boundary(self, kinds: set[str], validate: bool) -> bool:
        """Validate (if asked) and checkpoint at a boundary; True if training must stop now.

        A stop asked for during validation leaves it pending: the checkpoint says so, and the
        resumed run validates this point first.
        """
        metrics: dict[str, float] | None = None
        if validate:
            metrics = self.validator(self.stop, self.epoch, self.step)
            self.pending_validation = metrics is None
            if metrics is not None:
                self.metrics.log("valid", self.step, epoch=self.epoch, **metrics)
                self.last_valid = metrics
                if self.dist.is_main and self.config.progress:
                    tqdm.write(validation_line(self.epoch, metrics))
        stopping = stop_agreed(self.stop, self.device, self.dist)
        if stopping:
            kinds = kinds | {"interrupt"}
            log.warning(
                "stopping after update %d (%s): saving the run to resume later",
                self.step,
                self.stop.signal_name or "asked",
            )
        if kinds:
            self.save(kinds, metrics)
        return stopping

    def _train_to_boundary(self, window: LossWindow, bar: tqdm) -> bool:
        """Update until the epoch ends, `max_steps` is reached or a stop is asked for; then
        validate and checkpoint that boundary. Periodic checkpoints are written on the way.

        Returns:
            True if training must stop now (a stop was asked for).
        """
        c = self.config
        self._use_epoch(self.epoch)
        epoch_start, epoch_tokens = time.perf_counter(), 0.0
        kinds: set[str] = set()
        for group in self._groups():
            update = self.train_step(group, lambda: self.stop.requested)
            loss, nll, n, stop = update.loss, update.nll, update.tokens, update.stop
            # A signal that came after the update's all-reduce is seen by every rank only at
            # the next update; a single process can stop right here.
            stop = stop or (self.stop.requested and not self.dist.enabled)
            self.step += 1
            self.consumed += len(group)
            self._boundary_rng = rng_state()
            self._session_tokens += n
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
            at_boundary = stop or self.consumed >= len(self.sampler) or self._max_steps_reached()
            if c.save_every and self.step % c.save_every == 0:
                if at_boundary:  # one checkpoint of several kinds, written below
                    kinds.add("periodic")
                elif self._boundary({"periodic"}, validate=False):
                    return True
            if at_boundary:
                break
        validate = False
        if self.consumed >= len(self.sampler):  # the epoch is complete
            seconds = time.perf_counter() - epoch_start
            self.metrics.log(
                "epoch",
                self.step,
                epoch=self.epoch + 1,
                seconds=seconds,
                tokens_per_s=epoch_tokens / max(seconds, 1e-9),  # shows any slowdown
            )
            self.epoch += 1
            self.consumed = 0
            kinds.add("epoch")
            self._out_of_time = self._minutes_up(self.seconds())
            if self._out_of_time:
                log.warning(
                    "train.max_minutes (%g) spent after epoch %d: training ends here",
                    self.config.max_minutes,
                    self.epoch,
                )
            validate = self.epoch % c.validate_every == 0 or self._done()
        if self._max_steps_reached():
            kinds.add("final")
            validate = True
        return self._boundary(kinds, validate)

    def fit(self) -> TrainResult:
        """Train until `max_steps` updates or `max_epochs` epochs, whichever comes first.

        Ctrl-C or SIGTERM stops it after the current update (see interrupt.py), with a
        checkpoint to resume from; a second Ctrl-C aborts at once.
        """
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
        self._session_start, self._session_tokens = time.perf_counter(), 0.0
        # A run resumed after its time was spent (the same record on every rank) trains no more.
        self._out_of_time = self._minutes_up(self._seconds_before)
        self.stop = StopRequest()
        window = LossWindow()
        stopped = False
        with self.stop, contextlib.closing(bar):
            if self.pending_validation:  # interrupted in this point's validation last time
                stopped = self._boundary(self._resumed_kinds - {"interrupt"}, validate=True)
            while not stopped and not self._done():
                stopped = self._train_to_boundary(window, bar)
        if not stopped:
            self.checkpoints.finish()
        self.metrics.close()
        seconds = self.seconds()
        return TrainResult(
            steps=self.step,
            epochs=self.epoch,
            seconds=seconds,
            tokens_per_second=self.tokens() / max(seconds, 1e-9),
            last_valid=self.last_valid,
            best=self.validator.best,
            interrupted=stopped,
        )
