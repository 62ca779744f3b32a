"""The encoder's output and the decoder's key/value cache, as explicit typed objects.

Nothing here is hidden state on a module: `Transformer.encode` returns a `Memory`,
`Transformer.init_cache` returns a `DecoderCache`, and `Transformer.decode` takes a cache and
returns the next one. Search code (greedy, beam) only ever calls `reorder` and `expand_beams` on
a cache.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class Memory:
    """The encoder output together with the source padding mask, so neither travels alone.

    Attributes:
        states: encoder output, (B, S, D).
        src_mask: True = real source token, (B, S).
    """

    states: Tensor
    src_mask: Tensor

    def reorder(self, indices: Tensor) -> Memory:
        """Rows `indices` of the batch (select, repeat or permute sentences; e.g. for beams)."""
        return Memory(self.states.index_select(0, indices), self.src_mask.index_select(0, indices))


@dataclass(frozen=True)
class LayerCache:
    """One decoder layer's cache.

    Attributes:
        self_k: self-attention keys, preallocated (R, H, capacity, Dh); [:length] are filled.
        self_v: self-attention values, same shape.
        cross_k: cross-attention keys of the encoder output, (B, H, S, Dh), computed once: one
            row per sentence, shared by its R / B beams (see `DecoderCache`).
        cross_v: cross-attention values, same shape.
    """

    self_k: Tensor
    self_v: Tensor
    cross_k: Tensor
    cross_v: Tensor

    def append_self(self, k: Tensor, v: Tensor, start: int) -> tuple[Tensor, Tensor]:
        """Write self-attention keys/values of positions [start, start + T) into the buffers.

        Args:
            k: the new positions' keys.
            v: their values.
            start: positions already filled.

        Returns:
            The keys and values of all `start + T` positions (views of the buffers).

        Shape:
            k, v: (R, H, T, Dh) -> two (R, H, start + T, Dh)
        """
        end = start + k.shape[-2]
        self.self_k[:, :, start:end] = k
        self.self_v[:, :, start:end] = v
        return self.self_k[:, :, :end], self.self_v[:, :, :end]

    def reorder(self, rows: Tensor, sentences: Tensor | None, length: int) -> LayerCache:
        """Self-attention rows `rows` (only the first `length` positions are copied) and
        cross-attention rows `sentences` (None: the same sentences, kept without a copy).

        The self-attention buffers keep their capacity, but the unfilled tail is left
        uninitialised instead of copied: beam search reorders every step, and the tail of a
        preallocated buffer is most of it early on.

        Under autograd (grad enabled and the buffers part of a graph) the rows are selected and
        then assigned into the new buffers, which autograd can differentiate; otherwise they are
        written straight into them (`out=`, which autograd refuses), one copy fewer for search.
        """
        _, h, capacity, dh = self.self_k.shape
        k = self.self_k.new_empty(len(rows), h, capacity, dh)
        v = self.self_v.new_empty(len(rows), h, capacity, dh)
        if torch.is_grad_enabled() and (self.self_k.requires_grad or self.self_v.requires_grad):
            k[:, :, :length] = self.self_k[:, :, :length].index_select(0, rows)
            v[:, :, :length] = self.self_v[:, :, :length].index_select(0, rows)
        else:
            torch.index_select(self.self_k[:, :, :length], 0, rows, out=k[:, :, :length])
            torch.index_select(self.self_v[:, :, :length], 0, rows, out=v[:, :, :length])
        if sentences is None:
            return LayerCache(k, v, self.cross_k, self.cross_v)
        return LayerCache(
            k, v, self.cross_k.index_select(0, sentences), self.cross_v.index_select(0, sentences)
        )

    def grown(self, capacity: int, length: int) -> LayerCache:
        """A copy with self-attention buffers of `capacity` positions, the first `length` kept."""
        b, h, _, dh = self.self_k.shape
        k = self.self_k.new_empty(b, h, capacity, dh)
        v = self.self_v.new_empty(b, h, capacity, dh)
        k[:, :, :length] = self.self_k[:, :, :length]
        v[:, :, :length] = self.self_v[:, :, :length]
        return replace(self, self_k=k, self_v=v)


@dataclass(frozen=True)
class DecoderCache:
    """Everything incremental decoding needs besides the new tokens.

    Self-attention keys/values are written in place into preallocated buffers (no `torch.cat` per
    step); the buffers double when full. A cache passed to `Transformer.decode` is consumed: keep
    using the one it returns.

    Rows and sentences: the cache holds R = B x `beams` rows (what `decode` takes as its batch),
    `beams` consecutive rows per sentence. What depends on the source alone (the cross-attention
    keys/values and the source mask) is kept once per sentence, not once per row: the beams of a
    sentence would hold identical copies, which beam search would otherwise copy at every step.

    Attributes:
        layers: one `LayerCache` per decoder layer.
        src_mask: True = real source token, (B, S).
        length: how many target positions are already cached.
        beams: rows per sentence (1 until `expand_beams`).
    """

    layers: tuple[LayerCache, ...]
    src_mask: Tensor
    length: int = 0
    beams: int = 1

    @property
    def capacity(self) -> int:
        """Positions the self-attention buffers can hold before they grow."""
        return self.layers[0].self_k.shape[2]

    @property
    def batch_size(self) -> int:
        """Rows in the cache (sentences x beams)."""
        return self.src_mask.shape[0] * self.beams

    def expand_beams(self, k: int) -> DecoderCache:
        """`k` rows (beams) for each row (sentence), as beam search needs after its first step.

        Row b of this cache becomes rows b*k .. b*k + k - 1 of the result (copies of its
        self-attention keys/values so far). The source side (cross-attention keys/values and
        the source mask) stays once per sentence: the k beams share it.

        Raises:
            ValueError: if the cache already holds beams.
        """
        if self.beams != 1:
            raise ValueError(f"expand_beams: the cache already holds {self.beams} beams per row")
        if k == 1:
            return self
        rows = torch.arange(self.batch_size, device=self.src_mask.device).repeat_interleave(k)
        layers = tuple(layer.reorder(rows, None, self.length) for layer in self.layers)
        return DecoderCache(layers, self.src_mask, self.length, k)

    def reorder(self, indices: Tensor) -> DecoderCache:
        """Rows `indices` of the cache: row i of the result is row `indices[i]` of this one.

        Without beams, rows may be selected, repeated, permuted or dropped freely. With beams
        (after `expand_beams`), the rows must stay in blocks of `beams` per sentence, as beam
        search keeps them: each block of `beams` consecutive indices comes from one sentence,
        and the sentences keep their order, some dropped (finished). The source side is then
        selected per sentence, and not at all while no sentence is dropped, which the number
        of indices tells without reading them (no host sync).

        Args:
            indices: LongTensor (R_new,) of old row numbers.

        Raises:
            ValueError: with beams, if the indices do not make whole blocks.
        """
        indices = indices.to(self.src_mask.device)
        sentences: Tensor | None
        if self.beams == 1:
            sentences = indices
        elif len(indices) % self.beams:
            raise ValueError(
                f"reorder: {len(indices)} rows are not whole blocks of {self.beams} beams"
            )
        elif len(indices) == self.batch_size:
            sentences = None  # all sentences kept, in order: beams moved within them
        else:
            sentences = indices[:: self.beams] // self.beams  # (B_new,) each block's sentence
        src_mask = self.src_mask if sentences is None else self.src_mask.index_select(0, sentences)
        return DecoderCache(
            tuple(layer.reorder(indices, sentences, self.length) for layer in self.layers),
            src_mask,
            self.length,
            self.beams,
        )

    def with_room_for(self, n_new: int) -> DecoderCache:
        """This cache, grown (by doubling) if `n_new` more positions would not fit."""
        needed = self.length + n_new
        if needed <= self.capacity:
            return self
        capacity = max(needed, 2 * self.capacity)
        return replace(
            self, layers=tuple(layer.grown(capacity, self.length) for layer in self.layers)
        )

    def advanced(self, n_new: int) -> DecoderCache:
        """The same buffers, with `n_new` more positions counted as filled."""
        return replace(self, length=self.length + n_new)


def empty_self_kv(
    batch: int, n_heads: int, capacity: int, d_head: int, like: Tensor
) -> tuple[Tensor, Tensor]:
    """Uninitialised self-attention buffers (B, H, capacity, Dh), dtype and device of `like`."""
    shape = (batch, n_heads, capacity, d_head)
    return (
        torch.empty(shape, dtype=like.dtype, device=like.device),
        torch.empty(shape, dtype=like.dtype, device=like.device),
    )
