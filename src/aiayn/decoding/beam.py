"""Beam search with the GNMT length penalty, batched over sentences.

Per sentence, k hypotheses ("beams") are live. Each step:

1. Every live beam is extended by every vocabulary token: k * V candidates, scored by
   log P(prefix, token). At step 1 only the BOS beam is live (the others start at -inf), so the
   k beams don't all pick the same tokens.
2. The top 2k candidates are taken. An EOS candidate ranked within the top k is finished: it
   goes to the sentence's finished list with score log P(Y) / lp(|Y|), |Y| counting the EOS.
   (EOS candidates ranked k+1..2k are dropped, as in fairseq and Hugging Face: a beam of width k
   only commits to its k best candidates. This is what makes beam_size=1 equal greedy search
   when alpha = 0.) Asking for 2k guarantees k non-EOS candidates, since each beam adds at most
   one EOS.
3. The best k non-EOS candidates become the live beams.

Stopping. At step max_len (which counts the EOS) every live beam is forced to finish: EOS is its
only allowed continuation, scored with the model's own log P(EOS | prefix), so forced and natural
endings are ranked on the same scale. Before that, a sentence stops as soon as no live beam can
still enter its n best finished hypotheses. A live beam with log-prob L can at best finish with
score L / lp(max_len): log-probs only fall, and for alpha >= 0 lp only grows with length (with
alpha = 0, lp = 1 and the bound is L itself). A tie does not count as entering, so among equal
scores the earlier finished hypothesis wins. That is `stopping="exact"`, the default: what is
returned is the best the beam can find. With a length penalty the bound is loose (lp(max_len)
is large), so sentences run many steps after their best hypothesis has finished.
`stopping="k-finished"` is fairseq's and CTranslate2's rule instead: a sentence stops once k
hypotheses have finished. It runs fewer steps and can miss a longer hypothesis that would have
scored higher; it never returns a better one than "exact" (both follow the same beams, and
when "k-finished" runs longer, the bound says no later hypothesis wins).

The first step runs once per sentence (its k beams would all read the same BOS); then
`cache.expand_beams(k)` gives each sentence k rows, and from there every step's `cache.reorder`
keeps the rows in blocks of k per sentence, in sentence order, so a cache may keep what depends
on the source alone once per sentence (the Transformer's does). Sentences that stop are dropped
from the batch by the same reorder, so later steps cost less.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aiayn.decoding.hypothesis import Hypothesis, length_penalty
from aiayn.decoding.protocol import Cache, StepModel, max_len_per_sentence

# When a sentence's search stops (module docstring).
STOPPING_RULES = ("exact", "k-finished")


def _check_options(beam_size: int, alpha: float, n_best: int, stopping: str) -> None:
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be between 1 and beam_size={beam_size}, got {n_best}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0 (lp must not shrink with length), got {alpha}")
    if stopping not in STOPPING_RULES:
        raise ValueError(f"stopping must be one of {STOPPING_RULES}, got {stopping!r}")


# Search never backpropagates: inference mode also skips autograd's per-operator bookkeeping
# (version counters, views), which a cached step of small matmuls feels. Tensors it makes stay
# inside; the caller's cache may be a normal tensor.
@torch.inference_mode()
def beam_search(
    model: StepModel,
    cache: Cache,
    *,
    bos_id: int,
    eos_id: int,
    max_len: Tensor | int,
    beam_size: int = 4,
    alpha: float = 0.6,
    n_best: int = 1,
    stopping: str = "exact",
) -> list[list[Hypothesis]]:
    """Translate a batch with beam search (see the module docstring for the exact rules).

    Args:
        model: the step function (see `protocol.StepModel`).
        cache: one row per source sentence; it is expanded to `beam_size` rows per sentence.
        bos_id: the token that starts every output.
        eos_id: the token that ends an output.
        max_len: maximum output length counting the EOS, for all sentences or per sentence.
        beam_size: k, the number of live hypotheses per sentence.
        alpha: length-penalty strength; 0 ranks by log-probability alone.
        n_best: how many hypotheses to return per sentence (<= beam_size).
        stopping: "exact" (stop when no live beam can still enter the n best) or "k-finished"
            (stop once `beam_size` hypotheses have finished, as fairseq and CTranslate2 do).

    Returns:
        Per sentence, in input order: up to `n_best` hypotheses, best score first.

    Raises:
        ValueError: on an invalid beam_size, n_best, alpha, stopping or max_len.

    Shape:
        cache: B rows; max_len: int or (B,)
    """
    _check_options(beam_size, alpha, n_best, stopping)
    k = beam_size
    batch = cache.batch_size
    limit = max_len_per_sentence(max_len, batch)  # (A,); A = active sentences, B at first
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    if batch == 0:
        return []

    # Sentence b owns rows b*k .. b*k + k - 1 of every (A*k, ...) tensor, and of the cache
    # after the first step: until then its k beams are the same BOS, so the first step runs
    # once per sentence and the cache is expanded to k rows after it.
    sentence = torch.arange(batch)  # (A,) input position of each active sentence
    prefix = torch.full((batch * k, 1), bos_id, dtype=torch.long)  # (A*k, t) ids incl. BOS
    beam_log_prob = torch.full((batch, k), float("-inf"))  # (A, k)
    beam_log_prob[:, 0] = 0.0  # only the BOS beam is live at step 1
    nth_best = torch.full((batch, n_best), float("-inf"))  # (A, n) best finished scores
    n_finished = torch.zeros(batch, dtype=torch.long)  # (A,) finished hypotheses so far

    step = 0
    while True:
        step += 1
        tokens = prefix[::k, -1:] if step == 1 else prefix[:, -1:]  # (A, 1) at step 1
        log_probs, cache = model.step(tokens, cache)  # (A*k, V); (A, V) at step 1
        device = log_probs.device  # state follows the model (no-op moves after step 1)
        sentence, limit, prefix = sentence.to(device), limit.to(device), prefix.to(device)
        beam_log_prob, nth_best = beam_log_prob.to(device), nth_best.to(device)
        n_finished = n_finished.to(device)
        n_active, vocab = sentence.numel(), log_probs.shape[-1]
        # (A, k, V); (A, 1, V) at step 1, broadcast below to beams that are all -inf but one.
        log_probs = log_probs.float().view(n_active, -1, vocab)

        at_limit = limit == step  # (A,)
        if bool(at_limit.any()):
            # Out of room: keep only EOS, with its own log-prob.
            only_eos = torch.full_like(log_probs, float("-inf"))
            only_eos[..., eos_id] = log_probs[..., eos_id]
            log_probs = torch.where(at_limit.view(-1, 1, 1), only_eos, log_probs)

        candidates = (beam_log_prob.unsqueeze(2) + log_probs).view(n_active, k * vocab)
        cand_log_prob, cand_index = candidates.topk(min(2 * k, k * vocab), dim=1)  # (A, 2k)
        cand_beam = cand_index // vocab  # (A, 2k) which beam it extends
        cand_token = cand_index % vocab  # (A, 2k) with which token
        is_eos = cand_token == eos_id
        cand_score = cand_log_prob / length_penalty(step, alpha)  # |Y| = step, EOS included

        finishing = is_eos & torch.isfinite(cand_log_prob)  # (A, 2k)
        finishing[:, k:] = False  # only the top k candidates may finish (module docstring)
        if bool(finishing.any()):
            _record(finished, finishing, sentence, prefix, cand_beam, cand_log_prob, cand_score, k)
            new_scores = cand_score.masked_fill(~finishing, float("-inf"))
            nth_best = torch.cat([nth_best, new_scores], dim=1).topk(n_best, dim=1).values
            n_finished = n_finished + finishing.sum(dim=1)

        # The best k non-EOS candidates live on (topk keeps them best first).
        live_log_prob, live_pos = cand_log_prob.masked_fill(is_eos, float("-inf")).topk(k, dim=1)
        live_beam = cand_beam.gather(1, live_pos)  # (A, k)
        live_token = cand_token.gather(1, live_pos)  # (A, k)

        if stopping == "exact":
            # Upper bound on any score a live beam can still reach (module docstring).
            max_penalty = ((5.0 + limit.float()) / 6.0) ** alpha  # (A,) lp(max_len)
            best_reachable = live_log_prob[:, 0] / max_penalty  # (A,)
            done = at_limit | (best_reachable <= nth_best[:, -1])  # (A,)
        else:
            done = at_limit | (n_finished >= k)  # (A,)

        keep = (~done).nonzero().squeeze(1)  # (A',)
        if keep.numel() == 0:
            break
        # One reorder both follows the surviving beams and drops finished sentences.
        rows = (keep.unsqueeze(1) * k + live_beam[keep]).view(-1)  # (A'*k,)
        if step == 1:
            cache = cache.expand_beams(k)
        cache = cache.reorder(rows)
        prefix = torch.cat([prefix[rows], live_token[keep].view(-1, 1)], dim=1)  # (A'*k, t+1)
        beam_log_prob, nth_best, n_finished = live_log_prob[keep], nth_best[keep], n_finished[keep]
        sentence, limit = sentence[keep], limit[keep]

    # sorted() is stable: equal scores stay in finishing order.
    return [sorted(hyps, key=lambda h: h.score, reverse=True)[:n_best] for hyps in finished]


def _record(
    finished: list[list[Hypothesis]],
    finishing: Tensor,
    sentence: Tensor,
    prefix: Tensor,
    cand_beam: Tensor,
    cand_log_prob: Tensor,
    cand_score: Tensor,
    k: int,
) -> None:
    """Append the finishing candidates to their sentences' finished lists.

    Args:
        finished: per input sentence, its finished hypotheses (appended to in place).
        finishing: which candidates finish, (A, 2k) bool.
        sentence: input position of each active sentence, (A,).
        prefix: ids so far including BOS, (A*k, t).
        cand_beam: the beam each candidate extends, (A, 2k).
        cand_log_prob: candidate log-probs, (A, 2k).
        cand_score: candidate scores, (A, 2k).
        k: beam size.
    """
    active, rank = finishing.nonzero().unbind(1)  # (F,), (F,)
    rows = active * k + cand_beam[active, rank]  # (F,) the beam each one extends
    tokens = prefix[rows, 1:].tolist()  # drop BOS; the EOS was never appended
    owners = sentence[active].tolist()
    scores = cand_score[active, rank].tolist()
    log_probs = cand_log_prob[active, rank].tolist()
    for owner, ids, score, log_prob in zip(owners, tokens, scores, log_probs, strict=True):
        finished[owner].append(Hypothesis(ids, score, log_prob))
