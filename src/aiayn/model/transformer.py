"""The encoder-decoder Transformer of "Attention Is All You Need", assembled from our own parts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aiayn.model import fast
from aiayn.model.attention import CrossAttention, MultiHeadAttention, SelfAttention
from aiayn.model.cache import DecoderCache, LayerCache, Memory, empty_self_kv
from aiayn.model.config import ATTENTION_KERNELS, ModelConfig
from aiayn.model.embeddings import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
)
from aiayn.model.flops import forward_flops
from aiayn.model.layers import DecoderLayer, EncoderLayer
from aiayn.model.masks import key_mask, padding_mask


@dataclass(frozen=True)
class AttentionWeights:
    """Attention weights of every layer and head, for pictures.

    Attributes:
        encoder: per encoder layer, (B, H, S, S).
        decoder_self: per decoder layer, (B, H, T, T).
        cross: per decoder layer, (B, H, T, S).
    """

    encoder: list[Tensor]
    decoder_self: list[Tensor]
    cross: list[Tensor]


class Transformer(nn.Module):
    """Encoder-decoder Transformer for sequence-to-sequence translation.

    Decoder inputs are the target shifted right: for a target y_1..y_n the decoder reads
    `tgt_in` = BOS y_1 .. y_n and is trained to predict `tgt_out` = y_1 .. y_n EOS, so the logits
    at position t predict token t + 1 given tokens up to t. Causality is applied inside the
    decoder; callers only pass padding masks (True = real token).

    Args:
        config: the model's hyper-parameters.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.src_embed = TokenEmbedding(c.src_vocab_size, c.d_model, c.pad_id, c.scale_embeddings)
        self.tgt_embed = (
            self.src_embed
            if c.share_embeddings
            else TokenEmbedding(c.tgt_vocab_size, c.d_model, c.pad_id, c.scale_embeddings)
        )
        if c.positional == "sinusoidal":
            self.positions: nn.Module = SinusoidalPositionalEncoding(c.d_model, c.max_positions)
        else:
            self.positions = LearnedPositionalEmbedding(c.d_model, c.max_positions)
        self.embed_dropout = fast.Dropout(c.dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(c) for _ in range(c.n_encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(c) for _ in range(c.n_decoder_layers))
        # Pre-norm leaves the residual stream unnormalised, so it needs a final LayerNorm;
        # the paper's post-norm already ends every layer with one.
        self.encoder_norm = nn.LayerNorm(c.d_model, c.layer_norm_eps) if c.norm_first else None
        self.decoder_norm = nn.LayerNorm(c.d_model, c.layer_norm_eps) if c.norm_first else None
        self.generator = nn.Linear(c.d_model, c.tgt_vocab_size)
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform on every projection (each of Q, K, V separately), zero biases."""
        fused = {m.qkv_proj for m in self.modules() if isinstance(m, SelfAttention)}
        fused |= {m.kv_proj for m in self.modules() if isinstance(m, CrossAttention)}
        for module in self.modules():
            if isinstance(module, nn.Linear):
                d_model = module.weight.shape[1]
                # A fused projection stacks several d_model x d_model matrices: one init each.
                chunks = module.weight.data.split(d_model) if module in fused else [module.weight]
                for chunk in chunks:
                    nn.init.xavier_uniform_(chunk)
                nn.init.zeros_(module.bias)
        if self.config.tie_output:
            self.generator.weight = self.tgt_embed.weight

    # ----------------------------------------------------------------------------------- encoder

    def embed(self, embedding: TokenEmbedding, ids: Tensor, start: int = 0) -> Tensor:
        """Token embeddings plus positional encodings, then dropout. (B, T) -> (B, T, D)."""
        x = embedding(ids) + self.positions(ids.shape[1], start)
        return self.embed_dropout(x)

    def encode(
        self, src: Tensor, src_mask: Tensor | None = None, weights_out: list[Tensor] | None = None
    ) -> Memory:
        """Run the encoder.

        Args:
            src: source ids.
            src_mask: True = real token; derived from `pad_id` when None.
            weights_out: if a list, each layer's self-attention weights (B, H, S, S) are appended.

        Returns:
            The encoder output and the source mask.

        Shape:
            src: (B, S) -> Memory(states (B, S, D), src_mask (B, S))
        """
        if src_mask is None:
            src_mask = padding_mask(src, self.config.pad_id)
        x = self.embed(self.src_embed, src)
        mask = key_mask(src_mask)  # (B, 1, 1, S)
        for layer in self.encoder_layers:
            x = layer(x, mask, weights_out)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return Memory(x, src_mask)

    # ----------------------------------------------------------------------------------- decoder

    def init_cache(self, memory: Memory, capacity: int = 16) -> DecoderCache:
        """An empty decoder cache for `memory`: cross-attention K/V are computed here, once.

        Args:
            memory: from `encode`.
            capacity: target positions to preallocate; the cache doubles when it fills.

        Returns:
            A cache to pass to `decode`.
        """
        b = memory.states.shape[0]
        c = self.config
        layers = []
        for layer in self.decoder_layers:
            # Contiguous once here, rather than a strided view that every step would re-read
            # (or copy) inside attention.
            cross_k, cross_v = (
                t.contiguous() for t in layer.cross_attn.project_memory(memory.states)
            )
            self_k, self_v = empty_self_kv(b, c.n_heads, capacity, c.d_head, cross_k)
            layers.append(LayerCache(self_k, self_v, cross_k, cross_v))
        return DecoderCache(tuple(layers), memory.src_mask, 0)

    def decode_states(
        self,
        tgt_in: Tensor,
        memory: Memory | None,
        cache: DecoderCache | None = None,
        tgt_mask: Tensor | None = None,
        weights_out: tuple[list[Tensor], list[Tensor]] | None = None,
    ) -> tuple[Tensor, DecoderCache | None]:
        """The decoder stack without the generator; see `decode`. Returns states (B, T, D)."""
        t = tgt_in.shape[1]
        start = 0 if cache is None else cache.length
        x = self.embed(self.tgt_embed, tgt_in, start)
        if cache is None:
            if memory is None:
                raise ValueError("decode needs the encoder memory when no cache is given")
            if tgt_mask is None:
                tgt_mask = padding_mask(tgt_in, self.config.pad_id)
            self_mask = fast.target_key_mask(tgt_mask)  # None where causality hides the padding
            src_mask = memory.src_mask
            cross_kvs = [
                layer.cross_attn.project_memory(memory.states) for layer in self.decoder_layers
            ]
        else:
            # Cached steps append to positions [start, start + t); all cached tokens are real.
            self_mask = None
            src_mask = cache.src_mask
            cache = cache.with_room_for(t)
            cross_kvs = [(lc.cross_k, lc.cross_v) for lc in cache.layers]
        src_key_mask = key_mask(src_mask)
        # One new query attends to all cached keys: no causal mask needed.
        causal = not (cache is not None and t == 1)
        for i, layer in enumerate(self.decoder_layers):
            x = layer(
                x,
                cross_kvs[i],
                self_mask,
                src_key_mask,
                causal=causal,
                cache=None if cache is None else cache.layers[i],
                start=start,
                weights_out=weights_out,
            )
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        return x, (None if cache is None else cache.advanced(t))

    def decode(
        self, tgt_in: Tensor, memory: Memory | None, cache: DecoderCache | None = None
    ) -> tuple[Tensor, DecoderCache | None]:
        """Run the decoder and the generator.

        Without a cache: the full causal pass over `tgt_in` (padding derived from `pad_id`).
        With a cache (from `init_cache` or a previous call): `tgt_in` holds only the new
        positions, typically (B, 1); their self-attention keys/values are appended to the cache
        and cross-attention reuses the keys/values computed once in `init_cache`.

        Args:
            tgt_in: decoder input ids (the target shifted right; see the class docstring).
            memory: from `encode`; may be None with a cache, which already holds the
                cross-attention keys/values and the source mask.
            cache: None for a full pass, else the cache of the positions before `tgt_in`.

        Returns:
            logits over the target vocabulary, and the updated cache (None without one).

        Shape:
            tgt_in: (B, T) -> logits (B, T, V)
        """
        states, cache = self.decode_states(tgt_in, memory, cache)
        return self.generator(states), cache

    # ----------------------------------------------------------------------------------- whole

    def forward(
        self,
        src: Tensor,
        tgt_in: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        output_mask: Tensor | None = None,
    ) -> Tensor:
        """Teacher-forced pass: logits for every target position.

        Args:
            src: source ids.
            tgt_in: decoder inputs, the target shifted right (BOS y_1 .. y_n).
            src_mask: True = real source token; derived from `pad_id` when None.
            tgt_mask: True = real target token; derived from `pad_id` when None.
            output_mask: if given, logits only at its True positions (e.g. non-pad targets),
                which skips the generator's work on padding.

        Returns:
            logits (B, T, V), or (N, V) for the N True positions of `output_mask`.

        Shape:
            src: (B, S), tgt_in: (B, T)
        """
        memory = self.encode(src, src_mask)
        states, _ = self.decode_states(tgt_in, memory, tgt_mask=tgt_mask)
        if output_mask is not None:
            states = states[output_mask]  # (N, D)
        return self.generator(states)

    def attention_weights(
        self,
        src: Tensor,
        tgt_in: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
    ) -> AttentionWeights:
        """Every layer's and head's attention weights for one teacher-forced pass (eval mode)."""
        enc: list[Tensor] = []
        dec_self: list[Tensor] = []
        cross: list[Tensor] = []
        with torch.no_grad():
            memory = self.encode(src, src_mask, weights_out=enc)
            self.decode_states(tgt_in, memory, tgt_mask=tgt_mask, weights_out=(dec_self, cross))
        return AttentionWeights(enc, dec_self, cross)

    # ----------------------------------------------------------------------------------- utility

    @contextlib.contextmanager
    def use_kernel(self, kernel: str) -> Iterator[None]:
        """Temporarily run every attention block with `kernel` ("sdpa", "explicit" or "auto")."""
        if kernel not in ATTENTION_KERNELS:
            raise ValueError(f"kernel must be one of {ATTENTION_KERNELS}, got {kernel!r}")
        blocks = [m for m in self.modules() if isinstance(m, MultiHeadAttention)]
        previous = [m.kernel for m in blocks]
        for m in blocks:
            m.kernel = kernel
        try:
            yield
        finally:
            for m, k in zip(blocks, previous, strict=True):
                m.kernel = k

    def num_parameters(self) -> int:
        """Number of distinct parameters (a tied table counts once)."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, src_len: int, tgt_len: int, training: bool = True) -> float:
        """Matmul FLOPs per target token for one sentence pair of these lengths (see flops.py)."""
        return forward_flops(self.config, [src_len], [tgt_len]) * (3 if training else 1) / tgt_len
