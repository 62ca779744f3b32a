"""The model: the paper's Transformer, its parts, masks and the KV cache. Imports only torch."""

from aiayn.model.attention import explicit_attention, sdpa_attention
from aiayn.model.cache import DecoderCache, LayerCache, Memory
from aiayn.model.config import PRESETS, ModelConfig, ModelConfigError
from aiayn.model.flops import forward_flops
from aiayn.model.masks import causal_mask, padding_mask, subsequent_mask
from aiayn.model.transformer import AttentionWeights, Transformer

__all__ = [
    "PRESETS",
    "AttentionWeights",
    "DecoderCache",
    "LayerCache",
    "Memory",
    "ModelConfig",
    "ModelConfigError",
    "Transformer",
    "causal_mask",
    "explicit_attention",
    "forward_flops",
    "padding_mask",
    "sdpa_attention",
    "subsequent_mask",
]
