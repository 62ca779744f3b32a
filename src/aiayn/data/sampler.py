"""Batches bounded by tokens, not sentences: ``TokenBatchSampler``.

Sentences differ a lot in length, so a fixed number of sentences per batch either wastes
memory on padding or runs out of it on long ones. The paper batched "by approximate sequence
length", about 25000 source and 25000 target tokens per batch. Like fairseq, this sampler:

1. sorts the examples by (source length, target length), breaking ties at random, so that
   examples of similar length end up together and padding stays small;
2. cuts the sorted list greedily into batches whose *cost* stays within ``max_tokens``, the
   cost being ``n_sentences * max(longest source, longest target + 1)``: the padded size of
   the larger of the two tensors (the target gains BOS or EOS). An example that alone
   exceeds ``max_tokens`` gets a batch of its own rather than being dropped;
3. shuffles the order of the batches, from ``(seed, epoch)``.

Only examples of identical (source, target) lengths trade places between epochs, so the batch
boundaries, and hence ``len(sampler)``, are the same every epoch.

Distributed training: each of ``num_replicas`` processes builds the same list and takes
batches ``rank, rank + num_replicas, ...``. Every rank must run the same number of steps
(otherwise gradient synchronisation waits forever), so the list is padded by repeating its
first batches until its length divides by ``num_replicas``: up to ``num_replicas - 1``
batches of an epoch are seen twice. With ``drop_last=True`` the surplus batches are dropped
instead (and their examples are not seen that epoch).

Resuming: ``state_dict()`` records the epoch and how many of this rank's batches were
consumed; after ``load_state_dict``, iteration continues with exactly the remaining batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import Sampler

from aiayn.data.errors import DataError


class TokenBatchSampler(Sampler[list[int]]):
    """Yields lists of example indices, one list per batch; pass it as a ``batch_sampler``.

    Args:
        lengths: ``(source length, target length)`` of each example, in tokens without
            BOS/EOS (e.g. ``[(len(s), len(t)) for s, t in encode_pairs(...)]``).
        max_tokens: Upper bound on a batch's cost (see the module docstring).
        max_sentences: Optional upper bound on the sentences of a batch.
        shuffle: Shuffle ties and batch order each epoch; False gives batches in length order
            (for validation and translation).
        seed: Seed of the shuffling; all ranks must use the same one.
        num_replicas: Number of distributed processes.
        rank: This process's index, ``0 .. num_replicas - 1``.
        drop_last: Drop surplus batches instead of repeating some so that every rank gets
            the same number.

    Raises:
        DataError: For no examples, negative lengths or non-positive bounds, or a bad rank.
    """

    def __init__(
        self,
        lengths: Sequence[tuple[int, int]],
        max_tokens: int,
        *,
        max_sentences: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        if not lengths:
            raise DataError("TokenBatchSampler needs at least one example")
        if max_tokens < 1:
            raise DataError(f"max_tokens must be positive, got {max_tokens}")
        if max_sentences is not None and max_sentences < 1:
            raise DataError(f"max_sentences must be positive or None, got {max_sentences}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise DataError(f"need 0 <= rank < num_replicas, got rank={rank}, {num_replicas=}")
        self._src_lens = [int(s) for s, _ in lengths]
        self._tgt_lens = [int(t) for _, t in lengths]
        if min(self._src_lens) < 0 or min(self._tgt_lens) < 0:
            raise DataError("example lengths must be >= 0")
        self.max_tokens = max_tokens
        self.max_sentences = max_sentences
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self._epoch = 0
        self._consumed = 0  # batches yielded so far in this epoch
        self._resume_at: int | None = None  # set by load_state_dict, used by the next __iter__
        total = len(self._chunk(self._sorted_indices(None)))  # same for every epoch
        per_rank, extra = divmod(total, num_replicas)
        self._batches_per_rank = per_rank if drop_last or extra == 0 else per_rank + 1

    @property
    def epoch(self) -> int:
        """The epoch whose batches ``__iter__`` yields."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch to iterate (its shuffle); call it before each epoch.

        Setting the epoch the sampler is already in changes nothing, so a position restored
        by ``load_state_dict`` survives the usual ``set_epoch`` call at the top of the loop.

        Args:
            epoch: The epoch number.
        """
        if epoch != self._epoch:
            self._epoch = epoch
            self._consumed = 0
            self._resume_at = None

    def __len__(self) -> int:
        """Batches per epoch for this rank (a whole epoch, also when resuming mid-epoch)."""
        return self._batches_per_rank

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.epoch_batches(self._epoch)
        start = self._resume_at or 0
        self._resume_at = None
        self._consumed = start
        for i in range(start, len(batches)):
            self._consumed = i + 1
            yield batches[i]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All of this rank's batches of an epoch, in order (ignores the resume position).

        Args:
            epoch: The epoch number.

        Returns:
            ``len(self)`` lists of example indices.
        """
        rng = random.Random(f"aiayn-batches:{self.seed}:{epoch}")
        batches = self._chunk(self._sorted_indices(rng if self.shuffle else None))
        if self.shuffle:
            rng.shuffle(batches)
        n = self.num_replicas
        if self.drop_last:
            batches = batches[: len(batches) - len(batches) % n]
        else:
            batches += [batches[i % len(batches)] for i in range(-len(batches) % n)]
        return batches[self.rank :: n]

    def state_dict(self, batches_consumed: int | None = None) -> dict[str, Any]:
        """The position in the data, for a checkpoint.

        Args:
            batches_consumed: How many of this epoch's batches the training loop has used.
                Defaults to how many this sampler has yielded, which is exact when it is
                iterated directly or by a ``DataLoader`` with ``num_workers=0``; a loader with
                workers fetches batches ahead, so pass the loop's own count then.

        Returns:
            A small dict of plain values.
        """
        if batches_consumed is None:
            pending = self._resume_at
            batches_consumed = self._consumed if pending is None else pending
        return {
            "epoch": self._epoch,
            "batches_consumed": batches_consumed,
            "seed": self.seed,
            "num_replicas": self.num_replicas,
            "batches_per_epoch": self._batches_per_rank,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by ``state_dict``: the next iteration yields the rest.

        Args:
            state: What ``state_dict`` returned.

        Raises:
            DataError: If the state belongs to a different seed, number of processes or data
                (different batches per epoch), where skipping would not be exact.
        """
        expected = {
            "seed": self.seed,
            "num_replicas": self.num_replicas,
            "batches_per_epoch": self._batches_per_rank,
        }
        for key, mine in expected.items():
            if state.get(key) != mine:
                raise DataError(
                    f"cannot resume the batch sampler: saved {key}={state.get(key)!r} but this "
                    f"run has {mine!r}; resume with the same data, seed and number of processes"
                )
        consumed = int(state["batches_consumed"])
        if not 0 <= consumed <= self._batches_per_rank:
            raise DataError(f"batches_consumed={consumed} is outside 0..{self._batches_per_rank}")
        self._epoch = int(state["epoch"])
        self._consumed = consumed
        self._resume_at = consumed

    def _sorted_indices(self, rng: random.Random | None) -> list[int]:
        """Indices by (source length, target length), ties random (or by index without rng)."""
        n = len(self._src_lens)
        tie = list(range(n))
        if rng is not None:
            rng.shuffle(tie)
        return sorted(range(n), key=lambda i: (self._src_lens[i], self._tgt_lens[i], tie[i]))

    def _chunk(self, order: list[int]) -> list[list[int]]:
        """Cut sorted indices greedily into batches within ``max_tokens``/``max_sentences``."""
        batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0  # max(source length, target length + 1) over the batch so far
        for i in order:
            size = max(self._src_lens[i], self._tgt_lens[i] + 1)
            grown = max(longest, size)
            full = self.max_sentences is not None and len(batch) >= self.max_sentences
            if batch and (full or (len(batch) + 1) * grown > self.max_tokens):
                batches.append(batch)
                batch, grown = [], size
            batch.append(i)
            longest = grown
        if batch:
            batches.append(batch)
        return batches
