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
boundaries, and hence ``len(sampler)``, are the same every epoch: they are cut once, when the
sampler is built.

Scale: everything is numpy arrays, never Python lists of the examples. The lengths may be a
memory-mapped ``(n, 2)`` array (a prepared dataset's, see ``aiayn.data.prepared``); an epoch is
planned with one random permutation and one stable ``argsort`` (ties broken by the
permutation), and the batches are a permutation of (start, end) slices into that order, so
planning 4.5 million examples takes under a second and about 100 MB of temporaries that are
given back to the system (``give_back_freed_memory``); what stays is the epoch's order, 4 bytes
an example. The first epoch is planned in a background thread while training sets up.
The random stream is numpy's PCG64, seeded from ``(seed, epoch)``; aiayn before this sampler
used Python's ``random`` instead, so the same seed gives other (equally good) batches than it
did then, and a checkpoint saved by it mid-epoch cannot be resumed exactly (see
``load_state_dict``).

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

import ctypes
import ctypes.util
import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from aiayn.data.errors import DataError

ORDER = "pcg64-argsort"
"""How batches are drawn, recorded in ``state_dict``: a saved position is exact only under it."""


def give_back_freed_memory() -> None:
    """Ask the C allocator to return freed memory to the system (glibc's ``malloc_trim``).

    Planning millions of examples makes temporaries of tens of MB; once one is freed, glibc
    raises its threshold for serving allocations from mmap and keeps later ones of that size on
    its heap when they are freed, about 40 MB at 4.5 million pairs that would otherwise stay
    resident for the whole run. A no-op where the C library has no ``malloc_trim``.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def pair_lengths(pairs: Any) -> np.ndarray:
    """The ``(n, 2)`` array of (source, target) lengths of encoded pairs.

    Args:
        pairs: A sequence of (source ids, target ids), or a dataset with a ``lengths`` array
            (a prepared split), whose array is returned as is, without reading the examples.

    Returns:
        An integer array of shape ``(n, 2)``.
    """
    lengths = getattr(pairs, "lengths", None)
    if isinstance(lengths, np.ndarray):
        return lengths
    return np.array([(len(s), len(t)) for s, t in pairs], dtype=np.int64).reshape(-1, 2)


class TokenBatchSampler(Sampler[list[int]]):
    """Yields lists of example indices, one list per batch; pass it as a ``batch_sampler``.

    Args:
        lengths: ``(source length, target length)`` of each example, in tokens without
            BOS/EOS: a sequence of pairs or an ``(n, 2)`` integer array (which may be
            memory-mapped; it is not copied). See ``pair_lengths``.
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
        lengths: Sequence[tuple[int, int]] | np.ndarray,
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
        if len(lengths) == 0:
            raise DataError("TokenBatchSampler needs at least one example")
        if max_tokens < 1:
            raise DataError(f"max_tokens must be positive, got {max_tokens}")
        if max_sentences is not None and max_sentences < 1:
            raise DataError(f"max_sentences must be positive or None, got {max_sentences}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise DataError(f"need 0 <= rank < num_replicas, got rank={rank}, {num_replicas=}")
        array = lengths if isinstance(lengths, np.ndarray) else np.asarray(lengths)
        if array.ndim != 2 or array.shape[1] != 2 or array.dtype.kind not in "iu":
            raise DataError(f"lengths must be (source, target) integer pairs, got {array.shape}")
        if array.min() < 0:
            raise DataError("example lengths must be >= 0")
        self._lengths = array
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
        # Batch boundaries in the sorted order: the same every epoch (ties have equal sizes).
        # A training sampler (shuffled) cuts them, and plans its first epoch, in a background
        # thread while training sets up (see _plan_ahead).
        self._cut_done: Future[np.ndarray] | None = None
        self._cut_starts: np.ndarray | None = None
        self._ahead: tuple[int, Future[tuple[np.ndarray, np.ndarray]]] | None = None
        if shuffle:
            self._plan_ahead(self._epoch)
        else:
            self._cut_starts = self._cut_sorted()

    @property
    def _starts(self) -> np.ndarray:
        """Where each batch starts in an epoch's order, and the end (waits for the cut)."""
        if self._cut_starts is None:
            assert self._cut_done is not None
            self._cut_starts = self._cut_done.result()
        return self._cut_starts

    @property
    def _batches_per_rank(self) -> int:
        total = len(self._starts) - 1
        per_rank, extra = divmod(total, self.num_replicas)
        return per_rank if self.drop_last or extra == 0 else per_rank + 1

    def _cut_sorted(self) -> np.ndarray:
        starts = self._cut(self._order(None))
        give_back_freed_memory()
        return starts

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
        order, batches = self.plan(self._epoch)
        starts = self._starts  # once, not per batch (a property that may wait for the cut)
        start = self._resume_at or 0
        self._resume_at = None
        self._consumed = start
        for i in range(start, len(batches)):
            self._consumed = i + 1
            b = batches[i]
            yield order[starts[b] : starts[b + 1]].tolist()

    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """This rank's batches of an epoch as arrays: what ``__iter__`` walks through.

        Args:
            epoch: The epoch number.

        Returns:
            ``(order, batches)``: the example indices in (length, random tie) order, and the
            numbers of this rank's ``len(self)`` batches in the order they are served; batch
            ``b`` is ``order[starts[b]:starts[b + 1]]``.
        """
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == epoch:
            return ahead[1].result()
        return self._plan(epoch)

    def _plan_ahead(self, epoch: int) -> None:
        """Start planning ``epoch`` in a background thread, for the next ``plan(epoch)`` (and
        cutting the batches first, if not done yet).

        The sampler is built while training sets up (model, optimizer), and its batches are
        needed only when the first one is: cut and drawn meanwhile (numpy's sorting and
        shuffling release the GIL), the second or so they take at millions of pairs no longer
        delays the first update. Only one plan is held ahead: an epoch's order is 4 bytes a pair.
        """
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiayn-sampler")
        if self._cut_done is None and self._cut_starts is None:
            self._cut_done = pool.submit(self._cut_sorted)  # runs first: one worker
        self._ahead = (epoch, pool.submit(self._plan, epoch))
        pool.shutdown(wait=False)  # the thread ends when both are done

    def _plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``plan``, drawn now."""
        rng = self._rng(epoch) if self.shuffle else None
        order = self._order(rng)
        give_back_freed_memory()
        total = len(self._starts) - 1
        batches = rng.permutation(total) if rng is not None else np.arange(total)
        n = self.num_replicas
        if self.drop_last:
            batches = batches[: total - total % n]
        else:
            batches = np.concatenate([batches, batches[np.arange(-total % n) % total]])
        return order, batches[self.rank :: n]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All of this rank's batches of an epoch, in order (ignores the resume position).

        Builds Python lists of every index: for tests and small data; training iterates.

        Args:
            epoch: The epoch number.

        Returns:
            ``len(self)`` lists of example indices.
        """
        order, batches = self.plan(epoch)
        return [order[self._starts[b] : self._starts[b + 1]].tolist() for b in batches]

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
            "order": ORDER,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by ``state_dict``: the next iteration yields the rest.

        Args:
            state: What ``state_dict`` returned.

        Raises:
            DataError: If the state belongs to a different seed, number of processes or data
                (different batches per epoch), where skipping would not be exact; or if it was
                saved mid-epoch by an aiayn whose batches were drawn otherwise (no ``order``).
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
        if state.get("order", "python-random") != ORDER and 0 < consumed < self._batches_per_rank:
            raise DataError(
                f"cannot resume the batch sampler mid-epoch: the checkpoint was saved by an "
                f"older aiayn that drew batches with {state.get('order', 'python-random')!r}, "
                f"this one uses {ORDER!r}, so the rest of the epoch would not be the rest; "
                "resume from an end-of-epoch checkpoint (--checkpoint) or start the run again"
            )
        if int(state["epoch"]) != self._epoch and self.shuffle:
            self._plan_ahead(int(state["epoch"]))
        self._epoch = int(state["epoch"])
        self._consumed = consumed
        self._resume_at = consumed

    def _rng(self, epoch: int) -> np.random.Generator:
        """The random stream of an epoch, the same on every rank and in every process."""
        digest = hashlib.sha256(f"aiayn-batches:{self.seed}:{epoch}".encode()).digest()
        return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))

    def _order(self, rng: np.random.Generator | None) -> np.ndarray:
        """Indices by (source length, target length), ties random (or by index without rng)."""
        # The smallest types that hold the key and the indices: at millions of examples every
        # temporary is tens of MB, and the C allocator keeps some of what it frees. A key that
        # fits 16 bits (lengths up to about 250) is sorted by numpy's radix sort, in linear time.
        span = int(self._lengths[:, 1].max()) + 1
        top = int(self._lengths[:, 0].max()) * span + span
        key_type = np.uint16 if top <= 2**16 else np.uint32 if top <= 2**32 else np.int64
        key = self._lengths[:, 0].astype(key_type)
        key *= key_type(span)
        np.add(key, self._lengths[:, 1], out=key, casting="unsafe")
        index_type = np.int32 if len(key) < 2**31 else np.int64
        if rng is None:
            return np.argsort(key, kind="stable").astype(index_type)
        perm = rng.permutation(len(key)).astype(index_type)
        key = key[perm]
        return perm[np.argsort(key, kind="stable")]

    def _cut(self, order: np.ndarray) -> np.ndarray:
        """Batch starts (and the end) over sorted indices, greedily within the bounds.

        A batch grows while ``(sentences + 1) * max(size so far, next size)`` stays within
        ``max_tokens`` (and ``max_sentences``); a batch holds at least one example. The sorted
        sizes come in runs of equal values (a few thousand runs for millions of examples), and
        within a run the cut is arithmetic, so the Python loop runs once per run, not once per
        example or batch.
        """
        sizes = self._lengths[:, 1].astype(np.int32)  # contiguous columns, then one gather
        sizes += 1
        np.maximum(sizes, self._lengths[:, 0], out=sizes, casting="unsafe")
        sizes = sizes[order]
        n = len(sizes)
        run_starts = np.flatnonzero(np.diff(sizes)) + 1
        run_sizes = sizes[np.concatenate([[0], run_starts])].tolist()
        run_counts = np.diff(run_starts, prepend=0, append=n).tolist()
        tokens, cap = self.max_tokens, self.max_sentences or n
        ends: list[int] = []  # where each batch ends
        pos = held = high = 0  # next example; sentences and largest size of the open batch
        for size, count in zip(run_sizes, run_counts, strict=True):
            top = max(high, size)
            room = min(cap, tokens // top) - held  # how many of this run the open batch takes
            if held and room <= 0:
                ends.append(pos)
                held, top, room = 0, size, min(cap, tokens // size)
            room = max(room, 1)  # an example too long for max_tokens gets a batch of its own
            if count <= room:
                pos, held, high = pos + count, held + count, top
                continue
            pos += room
            count -= room
            ends.append(pos)
            per = max(1, min(cap, tokens // size))  # full batches of this size alone
            ends.extend(range(pos + per, pos + count - count % per + 1, per))
            pos += count - count % per
            held = count % per  # the rest opens a batch
            high = size if held else 0
            pos += held
        if held:
            ends.append(pos)
        return np.array([0, *ends], dtype=np.int64)
