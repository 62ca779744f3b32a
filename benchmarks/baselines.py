"""The baseline: `torch.nn.Transformer`. FROZEN: never optimise this file.

The model wraps `nn.Transformer(batch_first=True)` with the same token embeddings, positional
encodings and generator as ours (`aiayn.model.embeddings`), so the comparison is between the
two encoder-decoder stacks and how they are driven. It is driven two ways (benchmarks/training.py):

- like for like (the headline): through our trainer's own `TrainStep`, which calls
  `forward(src, tgt_in, src_mask, tgt_mask, output_mask=...)` exactly as it calls ours: the same
  optimizer, schedule, loss, autocast and positions; its attention dropout is set to ours
  (`attention_dropout`; nn.Transformer would otherwise apply `dropout` to attention weights);
- as its users write it (`train_step` below): boolean padding masks (True = pad, nn's
  polarity), the float causal mask from `nn.Transformer.generate_square_subsequent_mask`, the
  generator over every target position and `nn.CrossEntropyLoss(ignore_index=pad,
  label_smoothing=...)` over all of them, plain Adam, autocast on the batch's device;
- decoding: no cache; each step re-runs the decoder over the whole prefix and projects only
  the last position (the PyTorch tutorial's `greedy_decode`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aiayn.data import Batch
from aiayn.model import ModelConfig
from aiayn.model.embeddings import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
)


def nn_transformer(config: ModelConfig) -> nn.Transformer:
    """`nn.Transformer(batch_first=True)` with the sizes of `config` (tests compare against it)."""
    c = config
    return nn.Transformer(
        d_model=c.d_model,
        nhead=c.n_heads,
        num_encoder_layers=c.n_encoder_layers,
        num_decoder_layers=c.n_decoder_layers,
        dim_feedforward=c.d_ff,
        dropout=c.dropout,
        activation=c.activation,
        layer_norm_eps=c.layer_norm_eps,
        batch_first=True,
        norm_first=c.norm_first,
    )


class TorchTransformer(nn.Module):
    """`nn.Transformer` with our embeddings, positions and generator, for the same config.

    Args:
        config: the sizes (ours).
        attention_dropout: dropout on the attention weights; None keeps nn.Transformer's own
            (`config.dropout`, which it cannot tell apart from the other dropouts).
    """

    def __init__(self, config: ModelConfig, attention_dropout: float | None = None) -> None:
        super().__init__()
        c = config
        self.config = c
        self.src_embed = TokenEmbedding(c.src_vocab_size, c.d_model, c.pad_id, c.scale_embeddings)
        self.tgt_embed = TokenEmbedding(c.tgt_vocab_size, c.d_model, c.pad_id, c.scale_embeddings)
        if c.positional == "sinusoidal":
            self.positions: nn.Module = SinusoidalPositionalEncoding(c.d_model, c.max_positions)
        else:
            self.positions = LearnedPositionalEmbedding(c.d_model, c.max_positions)
        self.dropout = nn.Dropout(c.dropout)
        self.transformer = nn_transformer(c)
        if attention_dropout is not None:
            for module in self.transformer.modules():
                if isinstance(module, nn.MultiheadAttention):
                    module.dropout = attention_dropout  # read at every call
        self.generator = nn.Linear(c.d_model, c.tgt_vocab_size)

    def embed(self, embedding: TokenEmbedding, ids: Tensor) -> Tensor:
        return self.dropout(embedding(ids) + self.positions(ids.shape[1]))

    def forward(
        self,
        src: Tensor,
        tgt_in: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        output_mask: Tensor | None = None,
    ) -> Tensor:
        """Logits (B, T, V) for every target position, or (N, V) for those of `output_mask`.

        The masks are ours (True = real token), as `aiayn.Transformer.forward` takes them;
        None derives them from the pad id.
        """
        pad = self.config.pad_id
        src_padding = src == pad if src_mask is None else ~src_mask
        tgt_padding = tgt_in == pad if tgt_mask is None else ~tgt_mask
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], src.device)
        out = self.transformer(
            self.embed(self.src_embed, src),
            self.embed(self.tgt_embed, tgt_in),
            tgt_mask=causal,
            src_key_padding_mask=src_padding,
            tgt_key_padding_mask=tgt_padding,
            memory_key_padding_mask=src_padding,
        )
        if output_mask is not None:
            out = out[output_mask]  # (N, D): real positions only, as ours
        return self.generator(out)

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder output and the source padding mask (True = pad)."""
        src_padding = src == self.config.pad_id
        memory = self.transformer.encoder(
            self.embed(self.src_embed, src), src_key_padding_mask=src_padding
        )
        return memory, src_padding

    def decode(self, ys: Tensor, memory: Tensor, src_padding: Tensor) -> Tensor:
        """Decoder states (B, T, D) for the whole prefix `ys`."""
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(ys.shape[1], ys.device)
        return self.transformer.decoder(
            self.embed(self.tgt_embed, ys),
            memory,
            tgt_mask=tgt_mask,
            memory_key_padding_mask=src_padding,
        )


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """Adam with the paper's betas and epsilon, default implementation."""
    return torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)


def train_step(
    model: TorchTransformer,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    batch: Batch,
    precision: str = "fp32",
) -> None:
    """Forward, loss over all positions (pad ignored), backward, Adam; bf16 = autocast on the
    batch's device."""
    device = batch.src.device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits = model(batch.src, batch.tgt_in)
        loss = criterion(logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def make_criterion(config: ModelConfig, label_smoothing: float = 0.1) -> nn.Module:
    return nn.CrossEntropyLoss(ignore_index=config.pad_id, label_smoothing=label_smoothing)


@torch.no_grad()
def greedy_recompute(
    model: TorchTransformer, src: Tensor, *, bos_id: int, eos_id: int, steps: int
) -> Tensor:
    """Greedy decoding without a cache: `steps` tokens per sentence, EOS never chosen.

    Returns:
        The generated ids (B, steps).
    """
    memory, src_padding = model.encode(src)
    ys = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
    for _ in range(steps):
        out = model.decode(ys, memory, src_padding)
        logits = model.generator(out[:, -1])
        logits[:, eos_id] = float("-inf")  # fixed length: the benchmark disables EOS
        next_token = logits.argmax(dim=-1)
        ys = torch.cat([ys, next_token[:, None]], dim=1)
    return ys[:, 1:]
