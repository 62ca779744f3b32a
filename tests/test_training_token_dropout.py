"""Token dropout (`train.token_dropout`): which tokens it may replace, at what rate, and that
the trainer's update really feeds the model the dropped inputs."""

from __future__ import annotations

import pytest
import torch

from aiayn.data import Batch, Collator
from aiayn.data.tokenizer import BOS_ID, PAD_ID, UNK_ID
from aiayn.errors import ConfigError
from aiayn.model import ModelConfig, Transformer
from aiayn.training import NoamSchedule, TrainConfig, TrainStep
from aiayn.training.optim import make_optimizer
from aiayn.training.token_dropout import drop_tokens

CPU = torch.device("cpu")


def batch_of(lengths: list[tuple[int, int]]) -> Batch:
    # Ids from 4 up: no special id among the real tokens, so every <unk> was put there.
    return Collator()([(list(range(4, 4 + s)), list(range(4, 4 + t))) for s, t in lengths])


def test_only_real_input_tokens_become_unk_at_the_asked_rate() -> None:
    torch.manual_seed(0)
    batch = batch_of([(300, 200), (120, 280), (5, 3)] * 20)
    dropped = drop_tokens(batch, 0.2)
    src_unk = dropped.src == UNK_ID
    tgt_unk = dropped.tgt_in == UNK_ID
    # Changed positions became <unk>; all others are untouched.
    assert torch.equal(dropped.src[~src_unk], batch.src[~src_unk])
    assert torch.equal(dropped.tgt_in[~tgt_unk], batch.tgt_in[~tgt_unk])
    # Never padding, never BOS; labels, masks and counts as they were.
    assert not (src_unk & ~batch.src_mask).any() and not (tgt_unk & ~batch.tgt_mask).any()
    assert (dropped.tgt_in[:, 0] == BOS_ID).all()
    assert (dropped.src[~batch.src_mask] == PAD_ID).all()
    assert torch.equal(dropped.tgt_out, batch.tgt_out)
    assert torch.equal(dropped.src_mask, batch.src_mask)
    assert torch.equal(dropped.tgt_mask, batch.tgt_mask)
    assert (dropped.n_src_tokens, dropped.n_tgt_tokens) == (batch.n_src_tokens, batch.n_tgt_tokens)
    # The rate over real tokens (~8,500 source, ~9,700 decoder inputs after BOS): 0.2 +- 0.02.
    src_rate = src_unk.sum() / batch.src_mask.sum()
    tgt_rate = tgt_unk.sum() / (batch.tgt_mask[:, 1:].sum())
    assert 0.18 < float(src_rate) < 0.22 and 0.18 < float(tgt_rate) < 0.22


def test_zero_is_the_batch_itself_and_draws_nothing() -> None:
    batch = batch_of([(6, 4)])
    state = torch.get_rng_state()
    assert drop_tokens(batch, 0.0) is batch
    assert torch.equal(torch.get_rng_state(), state)  # dropout-free runs keep their draws


def test_the_draws_follow_the_global_generator() -> None:
    # What makes resume exact: the checkpoint saves this generator (and
    # tests/test_training_resume.py trains with token dropout on).
    batch = batch_of([(40, 40)] * 4)
    torch.manual_seed(3)
    a = drop_tokens(batch, 0.3)
    torch.manual_seed(3)
    b = drop_tokens(batch, 0.3)
    torch.manual_seed(4)
    c = drop_tokens(batch, 0.3)
    assert torch.equal(a.src, b.src) and torch.equal(a.tgt_in, b.tgt_in)
    assert not torch.equal(a.src, c.src)


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_the_config_rejects_a_probability_outside_0_1(value: float) -> None:
    with pytest.raises(ConfigError, match=r"train\.token_dropout must be in \[0, 1\)"):
        TrainConfig(token_dropout=value)


def test_the_update_feeds_the_model_dropped_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = Transformer(ModelConfig.tiny(40, 40))
    config = TrainConfig(token_dropout=0.5)
    optimizer = make_optimizer(model, config, CPU)
    step = TrainStep(
        model, optimizer, NoamSchedule(optimizer, model.config.d_model, config.warmup),
        label_smoothing=0.1, clip_norm=0.0, precision="fp32", device=CPU,
        token_dropout=config.token_dropout,
    )  # fmt: skip
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    forward = Transformer.forward

    def recording(self, src, tgt_in, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((src.clone(), tgt_in.clone()))
        return forward(self, src, tgt_in, *args, **kwargs)

    monkeypatch.setattr(Transformer, "forward", recording)
    batch = batch_of([(30, 30)] * 4)
    step([batch])
    (src, tgt_in), = seen  # fmt: skip
    assert (src == UNK_ID).any() and (tgt_in == UNK_ID).any()
    assert not (batch.src == UNK_ID).any()  # the caller's batch is not changed in place
