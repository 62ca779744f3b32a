"""Translate with an `aiayn export --format hf` folder through transformers alone.

    translator = HFTranslator.load("exports/en-de-hf")
    translator.translate(["A dog runs.", "Two children play."])          # greedy

This is how the export is measured against our own decoder (docs/export.md): the same
sentences, the same limits, transformers' `generate` doing the search. It reads only the export
folder (config.json, model.safetensors, generation_config.json, tokenizer files, export.json).

Matching our search exactly takes three things a plain `generate` call does not do:

- the tokenizer is called with `add_special_tokens=False` (no `</s>` on sources);
- each sentence may have source length + `max_len_offset` tokens, EOS counted, as ours, where a
  `generate` call has one `max_length` per batch (which counts the decoder start token too).
  Greedy batches mix lengths, run to the batch's longest limit and cut each row to its own
  (greedy choices do not depend on the limit, so this is exact); beam batches hold sentences of
  one source length, since a beam search's outcome does depend on its limit. At the limit EOS
  is forced (`forced_eos_token_id`), as ours does;
- sources longer than the positional table (max_position_embeddings) are cut to it, with a
  warning: transformers' sinusoids are a fixed table where ours are computed for any position.

Beam search (`beam_size` > 1) runs with `early_stopping=False` and `length_penalty=alpha`:
transformers divides a hypothesis's log-probability by its length^alpha, ours by GNMT's
((5 + length) / 6)^alpha, so only alpha = 0 asks both for the same ranking.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from aiayn.decoding.translator import token_batches
from aiayn.export.common import EXPORT_INFO, ExportError, require
from aiayn.export.hf import EXTRA, quiet_progress

log = logging.getLogger(__name__)


class HFTranslator:
    """A transformers model and tokenizer loaded from an hf export folder.

    Args:
        model: the seq2seq model (eval mode).
        tokenizer: its tokenizer.
        max_len_offset: output limit = source length + this, EOS counted (the run's
            decode.max_len_offset, from export.json).
    """

    def __init__(self, model: Any, tokenizer: Any, max_len_offset: int) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_len_offset = max_len_offset

    @classmethod
    def load(cls, folder: str | Path) -> HFTranslator:
        """Load an export folder offline (`local_files_only`): nothing is downloaded.

        Raises:
            ExportError: transformers is not installed, or the folder is no hf export.
        """
        transformers = require("transformers", EXTRA)
        folder = Path(folder)
        info_path = folder / EXPORT_INFO
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ExportError(f"{info_path}: not an aiayn export ({error})") from None
        if info.get("format") != "hf":
            raise ExportError(f"{info_path}: format {info.get('format')!r}, not 'hf'")
        with quiet_progress():
            model = transformers.AutoModelForSeq2SeqLM.from_pretrained(
                str(folder), local_files_only=True, dtype=torch.float32
            )
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True
            )
        return cls(model, tokenizer, int(info["max_len_offset"]))

    def encode(self, text: str) -> list[int]:
        """Source ids as our models take them: no `</s>` appended."""
        return self.tokenizer(text, add_special_tokens=False).input_ids

    @torch.no_grad()
    def generate_ids(
        self,
        sources: Sequence[Sequence[int]],
        *,
        beam_size: int = 1,
        alpha: float = 0.0,
        max_tokens: int = 8000,
    ) -> list[list[int]]:
        """Search for each source's output ids (without decoder start, EOS or padding).

        Args:
            sources: source ids, one list per sentence (may be empty: gives []).
            beam_size: 1 = greedy.
            alpha: transformers' length_penalty (see the module docstring).
            max_tokens: padded source tokens x beams per `generate` call, as decode.max_tokens.

        Returns:
            Output ids per sentence, in input order.
        """
        table = self.model.config.max_position_embeddings
        cut = []
        for ids in sources:
            if len(ids) > table:
                log.warning("source of %d tokens cut to the table's %d positions", len(ids), table)
            cut.append(list(ids[:table]))
        # Each sentence's limit, EOS counted; decoder positions 0 .. limit - 1 fit the table.
        limits = [min(len(ids) + self.max_len_offset, table) for ids in cut]
        results: list[list[int]] = [[] for _ in sources]
        # Greedy batches mix lengths (see `_strip`); a beam search's outcome depends on its
        # limit, and `generate` takes one per call, so beam batches hold one source length.
        for batch in token_batches(cut, beam_size, max_tokens, same_length=beam_size > 1):
            longest = max(len(cut[i]) for i in batch)
            input_ids = torch.full((len(batch), longest), self.model.config.pad_token_id)
            for row, i in enumerate(batch):
                input_ids[row, : len(cut[i])] = torch.tensor(cut[i])
            search = {"num_beams": beam_size, "length_penalty": alpha, "early_stopping": False}
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=(input_ids != self.model.config.pad_token_id).long(),
                max_length=1 + max(limits[i] for i in batch),  # + the decoder start token
                do_sample=False,
                **(search if beam_size > 1 else {}),
            )
            for i, ids in zip(batch, out.tolist(), strict=True):
                results[i] = self._strip(ids, limits[i])
        return results

    def _strip(self, ids: list[int], limit: int) -> list[int]:
        """The output ids of a row: without the decoder start token, at most `limit` - 1 of
        them (greedy rows of a batch run to the batch's longest limit, and greedy choices do
        not depend on the limit, so cutting gives what the row's own limit would have), and
        nothing from the first EOS on (EOS, then padding)."""
        ids = ids[1:limit]
        eos = self.model.config.eos_token_id
        return ids[: ids.index(eos)] if eos in ids else ids

    def translate(
        self, texts: Sequence[str], *, beam_size: int = 1, alpha: float = 0.0
    ) -> list[str]:
        """Translate raw sentences; an empty or blank one gives "" (as our Translator).

        Args:
            texts: source sentences.
            beam_size: 1 = greedy.
            alpha: transformers' length_penalty (see the module docstring).

        Returns:
            Detokenised translations, in input order.
        """
        sources = [self.encode(t) if t.strip() else [] for t in texts]
        outputs = self.generate_ids(sources, beam_size=beam_size, alpha=alpha)
        return [self.tokenizer.decode(ids, skip_special_tokens=True) for ids in outputs]
