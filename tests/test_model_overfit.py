"""A tiny model learns: it overfits one batch of a copy task."""

import torch
from tests.helpers import BOS, EOS

from aiayn import ModelConfig, Transformer


def test_tiny_model_overfits_a_copy_batch() -> None:
    torch.manual_seed(0)
    model = Transformer(ModelConfig.tiny(20, 20, d_model=64, d_ff=128)).train()
    y = torch.randint(4, 20, (16, 8))
    src = y
    tgt_in = torch.cat([torch.full((16, 1), BOS), y], dim=1)
    tgt_out = torch.cat([y, torch.full((16, 1), EOS)], dim=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.98))
    first = None
    for _ in range(200):
        logits = model(src, tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 20), tgt_out.reshape(-1))
        first = first if first is not None else loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert first > 2.5
    assert loss.item() < 0.05, loss.item()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(src, tgt_in).argmax(-1), tgt_out)
