"""The two graphs of an ONNX export, as thin export-only wrappers around our own model.

ONNX Runtime runs a fixed graph per call, so translation is split the way our cached decoding
already is (`aiayn.decoding.stepper`):

    encoder.onnx        src (B, S) int64, src_mask (B, S) bool
                        -> memory (B, S, D), and per decoder layer i the cross-attention keys
                           and values of the memory, cross_k_i / cross_v_i (B, H, S, Dh),
                           computed once per sentence
    decoder_step.onnx   tokens (B, 1) int64, src_mask (B, S) bool, past_k_i / past_v_i
                        (B, H, P, Dh) of every layer, cross_k_i / cross_v_i
                        -> log_probs (B, V) of the next token, and present_k_i / present_v_i
                           (B, H, P + 1, Dh): the past with this step's keys/values appended

The step's position is the past length P (the tokens already decoded), as in our
`DecoderCache.length`: it is read from the shape of past_k_0, so the two cannot disagree. The
first step passes empty pasts (P = 0).

The wrappers call the model's own `encode`, `init_cache` and `ModelStepper.step`, so the
exported graph is our code, not a re-implementation. The one difference is the self-attention
cache: ours preallocates buffers and writes each step into them in place, which a graph with a
dynamic past length cannot keep between calls. The step wrapper therefore builds, from the past
it is given, a `DecoderCache` with exactly one free slot (the past concatenated with zeros), lets
our decoder write the new keys/values into that slot, and returns the filled buffers as the
present: the same numbers as our cached decoding, at every step.

Our attention kernel "auto" chooses by shape, a Python branch that a graph would freeze at the
traced shape; the export therefore runs every attention block with one explicit kernel
(`EXPORT_KERNEL`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aiayn.decoding.stepper import ModelStepper
from aiayn.model import DecoderCache, LayerCache, Transformer

ENCODER_FILE = "encoder.onnx"
STEP_FILE = "decoder_step.onnx"

# The paper's attention written out (matmul, masked softmax, matmul): plain ONNX operators, and
# fully masked rows give zeros rather than NaN.
EXPORT_KERNEL = "explicit"


def layer_names(prefix: str, n_layers: int) -> list[str]:
    """Names of per-layer key/value tensors in graph order: prefix_k_0, prefix_v_0, prefix_k_1..."""
    return [f"{prefix}_{kv}_{i}" for i in range(n_layers) for kv in ("k", "v")]


def encoder_names(n_layers: int) -> tuple[list[str], list[str]]:
    """Input and output names of the encoder graph."""
    return ["src", "src_mask"], ["memory", *layer_names("cross", n_layers)]


def step_names(n_layers: int) -> tuple[list[str], list[str]]:
    """Input and output names of the decoder step graph."""
    inputs = ["tokens", "src_mask", *layer_names("past", n_layers), *layer_names("cross", n_layers)]
    return inputs, ["log_probs", *layer_names("present", n_layers)]


class EncoderGraph(nn.Module):
    """The encoder, plus every decoder layer's cross-attention keys/values of its output.

    Args:
        model: the trained model (eval mode).
    """

    def __init__(self, model: Transformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, ...]:
        """Encode a padded batch.

        Args:
            src: source ids, padded.
            src_mask: True = real source token.

        Returns:
            memory, then cross_k_i, cross_v_i for every decoder layer i.

        Shape:
            src, src_mask: (B, S) -> memory (B, S, D), cross K/V (B, H, S, Dh) each
        """
        memory = self.model.encode(src, src_mask)
        # init_cache projects the memory once per decoder layer, as our own decoding does; the
        # (unused) self-attention buffers it also allocates are left out of the graph.
        cache = self.model.init_cache(memory, capacity=1)
        cross = [t for layer in cache.layers for t in (layer.cross_k, layer.cross_v)]
        return (memory.states, *cross)


class DecoderStepGraph(nn.Module):
    """One cached decoding step: our `ModelStepper.step` on a cache rebuilt from its inputs.

    Args:
        model: the trained model (eval mode).
    """

    def __init__(self, model: Transformer) -> None:
        super().__init__()
        self.model = model
        self.stepper = ModelStepper(model)

    def forward(
        self, tokens: Tensor, src_mask: Tensor, past: tuple[Tensor, ...], cross: tuple[Tensor, ...]
    ) -> tuple[Tensor, ...]:
        """Decode one position for every row.

        Args:
            tokens: each row's newest token (BOS at the first step).
            src_mask: True = real source token.
            past: past_k_i, past_v_i of every decoder layer i: the self-attention keys/values
                of the P tokens before `tokens` (P = 0 at the first step).
            cross: cross_k_i, cross_v_i of every decoder layer, from the encoder graph.

        Returns:
            log_probs of the next token, then present_k_i, present_v_i for every layer i.

        Shape:
            tokens (B, 1), src_mask (B, S), past (B, H, P, Dh), cross (B, H, S, Dh)
            -> log_probs (B, V), present (B, H, P + 1, Dh)
        """
        layers = []
        for i in range(len(self.model.decoder_layers)):
            past_k, past_v = past[2 * i], past[2 * i + 1]
            b, h, _, dh = past_k.shape
            slot = past_k.new_zeros(b, h, 1, dh)  # where this step's keys/values go
            buffers = torch.cat([past_k, slot], dim=2), torch.cat([past_v, slot], dim=2)
            layers.append(LayerCache(*buffers, cross[2 * i], cross[2 * i + 1]))
        cache = DecoderCache(tuple(layers), src_mask, length=past[0].shape[2])
        log_probs, cache = self.stepper.step(tokens, cache)
        present = [t for layer in cache.layers for t in (layer.self_k, layer.self_v)]
        return (log_probs, *present)
