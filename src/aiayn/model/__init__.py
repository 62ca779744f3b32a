"""The model: the paper's Transformer, its parts, masks and the KV cache. Imports only torch.

attention.py, layers.py and transformer.py read like the paper; the speed tricks they call are
in fast.py, each beside the plain code it equals and the test that proves it.
"""

from aiayn.model.attention import explicit_attention
from aiayn.model.cache import DecoderCache, LayerCache, Memory
from aiayn.model.config import PRESETS, ModelConfig, ModelConfigError
from aiayn.model.fast import sdpa_attention
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
