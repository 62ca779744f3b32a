"""Equivalence with torch.nn.Transformer under copied weights (same embeddings and generator)."""

import pytest
import torch
from benchmarks.baselines import nn_transformer
from tests.helpers import padded_batch
from torch import Tensor, nn

from aiayn import ModelConfig, Transformer


def reference_for(model: Transformer) -> nn.Transformer:
    """An nn.Transformer holding a copy of `model`'s encoder/decoder weights."""
    c = model.config
    ref = nn_transformer(c)
    if not c.norm_first:
        # The paper's post-norm has no final norms; nn.Transformer always adds them.
        ref.encoder.norm = nn.Identity()
        ref.decoder.norm = nn.Identity()
    with torch.no_grad():
        for ours, theirs in zip(model.encoder_layers, ref.encoder.layers, strict=True):
            theirs.self_attn.in_proj_weight.copy_(ours.self_attn.qkv_proj.weight)
            theirs.self_attn.in_proj_bias.copy_(ours.self_attn.qkv_proj.bias)
            theirs.self_attn.out_proj.load_state_dict(ours.self_attn.out_proj.state_dict())
            theirs.linear1.load_state_dict(ours.ffn.fc1.state_dict())
            theirs.linear2.load_state_dict(ours.ffn.fc2.state_dict())
            theirs.norm1.load_state_dict(ours.attn_block.norm.state_dict())
            theirs.norm2.load_state_dict(ours.ffn_block.norm.state_dict())
        for ours, theirs in zip(model.decoder_layers, ref.decoder.layers, strict=True):
            theirs.self_attn.in_proj_weight.copy_(ours.self_attn.qkv_proj.weight)
            theirs.self_attn.in_proj_bias.copy_(ours.self_attn.qkv_proj.bias)
            theirs.self_attn.out_proj.load_state_dict(ours.self_attn.out_proj.state_dict())
            cross = ours.cross_attn
            theirs.multihead_attn.in_proj_weight.copy_(
                torch.cat([cross.q_proj.weight, cross.kv_proj.weight])
            )
            theirs.multihead_attn.in_proj_bias.copy_(
                torch.cat([cross.q_proj.bias, cross.kv_proj.bias])
            )
            theirs.multihead_attn.out_proj.load_state_dict(cross.out_proj.state_dict())
            theirs.linear1.load_state_dict(ours.ffn.fc1.state_dict())
            theirs.linear2.load_state_dict(ours.ffn.fc2.state_dict())
            theirs.norm1.load_state_dict(ours.self_attn_block.norm.state_dict())
            theirs.norm2.load_state_dict(ours.cross_attn_block.norm.state_dict())
            theirs.norm3.load_state_dict(ours.ffn_block.norm.state_dict())
        if c.norm_first:
            ref.encoder.norm.load_state_dict(model.encoder_norm.state_dict())
            ref.decoder.norm.load_state_dict(model.decoder_norm.state_dict())
    return ref.eval()


def reference_forward(
    model: Transformer,
    ref: nn.Transformer,
    src: Tensor,
    tgt: Tensor,
    src_mask: Tensor,
    tgt_mask: Tensor,
) -> tuple[Tensor, Tensor]:
    """nn.Transformer wrapped with our embeddings, positions and generator; (memory, logits)."""
    src_x = model.embed(model.src_embed, src)
    tgt_x = model.embed(model.tgt_embed, tgt)
    causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
    memory = ref.encoder(src_x, src_key_padding_mask=~src_mask)
    out = ref.decoder(
        tgt_x,
        memory,
        tgt_mask=causal,
        tgt_key_padding_mask=~tgt_mask,
        memory_key_padding_mask=~src_mask,
        tgt_is_causal=True,
    )
    return memory, model.generator(out)


@pytest.mark.filterwarnings("ignore::UserWarning")  # nn.Transformer's own deprecation notes
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("kernel", ["sdpa", "explicit"])
def test_matches_torch_nn_transformer(norm_first: bool, activation: str, kernel: str) -> None:
    config = ModelConfig.tiny(
        60,
        70,
        d_model=64,
        n_heads=4,
        d_ff=96,
        n_encoder_layers=2,
        n_decoder_layers=3,
        norm_first=norm_first,
        activation=activation,
        attention_kernel=kernel,
    )
    model = Transformer(config).eval()
    ref = reference_for(model)
    ours_params = sum(
        p.numel() for m in (*model.encoder_layers, *model.decoder_layers) for p in m.parameters()
    )
    ours_params += sum(
        p.numel() for m in (model.encoder_norm, model.decoder_norm) if m for p in m.parameters()
    )
    assert ours_params == sum(p.numel() for p in ref.parameters())

    gen = torch.Generator().manual_seed(3)
    src, src_mask = padded_batch([11, 6, 9, 3], 60, gen)
    tgt, tgt_mask = padded_batch([7, 10, 4, 8], 70, gen)
    with torch.no_grad():
        memory = model.encode(src, src_mask)
        logits = model(src, tgt, src_mask, tgt_mask)
        ref_memory, ref_logits = reference_forward(model, ref, src, tgt, src_mask, tgt_mask)
    # Compare at real positions: nn.Transformer's nested-tensor fast path zeroes padded ones.
    mem_err = (memory.states[src_mask] - ref_memory[src_mask]).abs().max().item()
    logit_err = (logits[tgt_mask] - ref_logits[tgt_mask]).abs().max().item()
    assert mem_err < 1e-5, mem_err
    assert logit_err < 1e-5, logit_err
