"""int8 inference on CPU: the linear layers' weights stored as int8, activations quantized per call.

    model = quantize(model, "int8")      # a new model; the float32 one is left as it was

Every `nn.Linear` (the attention projections, the feed-forward layers and the generator) becomes
a dynamically quantized linear layer: weights int8 with one scale per tensor, activations
quantized on the fly, the product accumulated in int32 by the x86 backend (fbgemm / oneDNN).
Embeddings, layer norms, softmax and the search stay float32, as in CTranslate2's int8 mode.

Why `torch.ao.quantization.quantize_dynamic`, which this torch marks deprecated in favour of
torchao: torchao's int8 dynamic-activation config has no fused CPU kernel without
`torch.compile` and ran slower than float32 at decoding batch sizes, while this one runs the
int8 GEMMs of fbgemm / oneDNN (docs/benchmarks.md, "int8 decoding", has the measurements). When
a torch release removes it, `quantize` says so in one line instead of failing obscurely.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from aiayn.errors import UsageError

QUANTIZATIONS = ("none", "int8")


def quantize(model: nn.Module, quantization: str) -> nn.Module:
    """The model for inference with the given weight precision.

    Args:
        model: a float32 model on the CPU.
        quantization: "none" (returns `model` itself) or "int8".

    Returns:
        `model`, or an int8 copy in eval mode (the original is not changed).

    Raises:
        UsageError: an unknown quantization, a model not on the CPU, or a torch without
            dynamic quantization.
    """
    if quantization not in QUANTIZATIONS:
        raise UsageError(
            f"--quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}"
        )
    if quantization == "none":
        return model
    device = next(model.parameters()).device
    if device.type != "cpu":
        raise UsageError(
            f"--quantization int8 runs on the CPU only (the model is on {device}); on a GPU "
            "use float32 or bf16, or export to CTranslate2 for its int8 GPU kernels"
        )
    if "x86" not in torch.backends.quantized.supported_engines and (
        "fbgemm" not in torch.backends.quantized.supported_engines
    ):
        raise UsageError(
            "--quantization int8 needs torch's x86 quantized engine (fbgemm / oneDNN), which "
            f"this build lacks (it has: {', '.join(torch.backends.quantized.supported_engines)})"
        )
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:  # a future torch without eager-mode quantization
        raise UsageError(
            f"--quantization int8 needs torch.ao.quantization.quantize_dynamic, which torch "
            f"{torch.__version__} no longer has; use torch 2.13 or export to CTranslate2 "
            "(`aiayn export --format ct2`, then its int8 mode)"
        ) from None
    with warnings.catch_warnings():
        # The deprecation notices point to torchao; the module docstring says why not (yet).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
