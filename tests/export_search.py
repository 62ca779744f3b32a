"""Another engine's beam search against ours: where the outputs may differ, and why.

Both engines rank the same log-probs, so their beams agree step for step but in two ways:

- float rounding can reorder a near tie, and the beams part there. The output kept must then be
  the one our model scores at least as high (with its EOS); at most 2% of sentences may differ.
- at the length limit the engines end differently. Ours forces EOS and scores it with the
  model's log P(EOS | prefix) (decoding/beam.py), so forced and natural endings rank alike;
  CTranslate2 ends the live beams without an EOS score, and transformers forces an EOS worth 0.
  Where both outputs fill the limit, each engine kept the best output by its own rule: ours
  scores higher with the EOS, theirs at least as high without it. Such sentences (long,
  repetitive outputs of a briefly trained model) do not count towards the 2%.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aiayn.data import BOS_ID, EOS_ID
from aiayn.decoding.translator import Translator
from aiayn.model import Transformer

TOLERANCE = 1e-4  # per-token log-prob, float32


def output_log_probs(model: Transformer, src: Sequence[int], out: Sequence[int]) -> torch.Tensor:
    """Our model's log-prob of each token of `out` and of the EOS after it."""
    target = torch.tensor([*out, EOS_ID])
    with torch.no_grad():
        logits = model(torch.tensor([list(src)]), torch.tensor([[BOS_ID, *out]]))
    return logits[0].float().log_softmax(-1)[torch.arange(len(target)), target]


def assert_beam_differs_only_by_search(
    translator: Translator, sources: Sequence[str], theirs: Sequence[Sequence[int]]
) -> None:
    """Another engine's beam-4 outputs (alpha 0) equal ours, or differ as explained above.

    Args:
        translator: Our translator of the exported run.
        sources: The source sentences.
        theirs: The other engine's best output ids of each sentence (no BOS/EOS).
    """
    model, found = translator.model, translator.translate_full(sources, beam_size=4, alpha=0)
    ours = [t.hypotheses[0].tokens for t in found]
    encoded = [translator.vocabs.src.encode(s) for s in sources]
    offset, table = translator.decode.max_len_offset, model.config.max_positions
    limits = [min(len(src) + offset, table) - 1 for src in encoded]  # tokens before the EOS
    differ, at_limit, worse = [], [], []
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if list(a) == list(b):
            continue
        mine, other = output_log_probs(model, encoded[i], a), output_log_probs(model, encoded[i], b)
        ours_eos, theirs_eos = float(mine.sum()), float(other.sum())  # EOS counted
        ours_no_eos, theirs_no_eos = float(mine[:-1].sum()), float(other[:-1].sum())
        line = (
            f"{i}: lengths {len(a)}/{len(b)} of {limits[i]}, log-prob ours/theirs "
            f"{ours_eos:.4f}/{theirs_eos:.4f} (without EOS {ours_no_eos:.4f}/{theirs_no_eos:.4f})"
        )
        tolerance = TOLERANCE * (len(a) + 1)  # float32 error grows with the tokens summed
        if len(a) == len(b) == limits[i]:
            at_limit.append(line)
            if ours_eos < theirs_eos - tolerance or theirs_no_eos < ours_no_eos - tolerance:
                worse.append(line)
        else:
            differ.append(line)
            if ours_eos < theirs_eos - tolerance:
                worse.append(line)
    assert not worse, f"an output that its own engine's rule does not prefer: {worse}"
    assert len(differ) <= 0.02 * len(ours), f"{len(differ)} outputs differ: {differ}"
    print(f"{len(differ)} outputs differ, {len(at_limit)} more at the length limit: {at_limit}")
