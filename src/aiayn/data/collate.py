"""Collation: a list of id pairs becomes one padded ``Batch`` of tensors.

Teacher forcing: the decoder reads the target shifted right by one position and predicts it
unshifted, so that position t sees only tokens before t (with the causal mask):

    y        =      A  B  C
    tgt_in   = BOS  A  B  C      what the decoder reads
    tgt_out  =      A  B  C  EOS what it must predict, position by position

Masks are boolean with True = real token, everywhere in aiayn; padding uses ``PAD_ID`` (0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from aiayn.data.errors import DataError
from aiayn.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass(frozen=True, eq=False)
class Batch:
    """One padded batch of B examples.

    Attributes:
        src: ``(B, S)`` long, source ids, padded with ``PAD_ID``.
        src_mask: ``(B, S)`` bool, True at real source tokens.
        tgt_in: ``(B, T)`` long, decoder input: BOS then the target ids.
        tgt_out: ``(B, T)`` long, decoder labels: the target ids then EOS.
        tgt_mask: ``(B, T)`` bool, True at real positions of ``tgt_in``/``tgt_out``.
        n_src_tokens: Real source tokens in the batch.
        n_tgt_tokens: Real target positions (labels the loss counts), EOS included.
    """

    src: torch.Tensor
    src_mask: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_mask: torch.Tensor
    n_src_tokens: int
    n_tgt_tokens: int

    @property
    def batch_size(self) -> int:
        """B, the number of sentence pairs."""
        return self.src.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``.

        Args:
            device: Where to move the tensors.
            non_blocking: Overlap the copy with computation (needs pinned memory).

        Returns:
            The moved batch.
        """
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """A copy in pinned memory (``DataLoader(pin_memory=True)`` calls this)."""
        return self._map(torch.Tensor.pin_memory)

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        return Batch(
            src=fn(self.src),
            src_mask=fn(self.src_mask),
            tgt_in=fn(self.tgt_in),
            tgt_out=fn(self.tgt_out),
            tgt_mask=fn(self.tgt_mask),
            n_src_tokens=self.n_src_tokens,
            n_tgt_tokens=self.n_tgt_tokens,
        )


class Collator:
    """Turns (source ids, target ids) pairs into a ``Batch``; pass it as ``collate_fn``.

    Args:
        pad_id: Filler id.
        bos_id: Id put before the target in ``tgt_in``.
        eos_id: Id put after the target in ``tgt_out``.
    """

    def __init__(self, pad_id: int = PAD_ID, bos_id: int = BOS_ID, eos_id: int = EOS_ID) -> None:
        self.pad_id = pad_id
        self.bos_id = bos_id
        self.eos_id = eos_id

    def __call__(self, examples: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Batch:
        """Pad and stack a batch.

        Args:
            examples: (source ids, target ids) pairs without BOS/EOS, e.g. from
                ``encode_pairs``.

        Returns:
            The batch.

        Raises:
            DataError: For an empty batch or an example with an empty source (nothing for
                attention to attend to; ``clean_pairs`` drops such pairs).
        """
        if not examples:
            raise DataError("cannot collate an empty batch")
        for i, (src, _) in enumerate(examples):
            if len(src) == 0:
                raise DataError(
                    f"example {i} of the batch has an empty source; drop such pairs first "
                    "(see clean_pairs)"
                )
        src_len = torch.tensor([len(src) for src, _ in examples])
        tgt_len = torch.tensor([len(tgt) for _, tgt in examples]) + 1  # + BOS or EOS
        s, t = int(src_len.max()), int(tgt_len.max())
        # Padded rows as Python lists, then one tensor each: much faster than row-by-row writes.
        src_rows, in_rows, out_rows = [], [], []
        for src, tgt in examples:
            tgt_padding = [self.pad_id] * (t - 1 - len(tgt))
            src_rows.append([*src, *[self.pad_id] * (s - len(src))])
            out_rows.append([*tgt, self.eos_id, *tgt_padding])
            in_rows.append([self.bos_id, *tgt, *tgt_padding])
        # Masks from lengths, not from "id != pad": correct whatever ids the examples hold.
        src_mask = torch.arange(s)[None, :] < src_len[:, None]
        tgt_mask = torch.arange(t)[None, :] < tgt_len[:, None]
        return Batch(
            src=torch.tensor(src_rows, dtype=torch.long),
            src_mask=src_mask,
            tgt_in=torch.tensor(in_rows, dtype=torch.long),
            tgt_out=torch.tensor(out_rows, dtype=torch.long),
            tgt_mask=tgt_mask,
            n_src_tokens=int(src_len.sum()),
            n_tgt_tokens=int(tgt_len.sum()),
        )
