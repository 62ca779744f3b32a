"""`aiayn export --format onnx`: the encoder and the cached decoder step as two ONNX graphs.

The folder holds encoder.onnx and decoder_step.onnx (their inputs and outputs are described in
`aiayn.export.onnx_graphs`), tokenizer/ and export.json; `aiayn.export.onnx_runtime.
OnnxTranslator` translates text with them through ONNX Runtime. The graphs are traced with
torch.onnx's dynamo exporter (which needs `onnx` and `onnxscript`) with dynamic batch, source
and past lengths, the weights inside each file.

Positions: the graphs read the model's table of `max_positions` positions, so a source may have
at most `max_positions` tokens and an output at most `max_positions` (our own decoder computes
sinusoids beyond its table; a graph holds only the table). `OnnxTranslator` keeps to both limits.

`--quantization int8` applies ONNX Runtime's dynamic quantization to both graphs: int8 weights
(per output channel) of every MatMul, activations quantized on the fly per call.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from aiayn.export.common import ExportError, ExportSource, require
from aiayn.export.onnx_graphs import (
    ENCODER_FILE,
    EXPORT_KERNEL,
    STEP_FILE,
    DecoderStepGraph,
    EncoderGraph,
    encoder_names,
    step_names,
)

OPSET = 20
# ONNX keeps a graph in one protobuf, which cannot exceed 2 GiB.
MAX_WEIGHT_BYTES = 2**31 - 2**26

# Example sizes for tracing; every one of them is a dynamic axis of the graphs.
EXAMPLE_BATCH, EXAMPLE_SRC, EXAMPLE_PAST = 2, 5, 3


def write_onnx(
    source: ExportSource, folder: Path, quantization: str | None = None
) -> dict[str, Any]:
    """Export `source`'s model as encoder.onnx and decoder_step.onnx into `folder`.

    Args:
        source: the run to export (float32, CPU, eval mode).
        folder: a fresh folder to write the two graphs into.
        quantization: None for float32, "int8" for ONNX Runtime's dynamic quantization.

    Returns:
        Notes for export.json: the graphs, their inputs and outputs, limits and settings.

    Raises:
        ExportError: onnx, onnxscript or onnxruntime is not installed (the `onnx` extra), an
            unknown quantization, or a model too large for one ONNX file.
    """
    for module in ("onnx", "onnxscript", "onnxruntime"):
        require(module, "onnx")
    if quantization not in (None, "int8"):
        raise ExportError(f"--quantization {quantization}: the onnx format knows only int8")
    model = source.model
    config = model.config
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if weight_bytes > MAX_WEIGHT_BYTES:
        raise ExportError(
            f"the model's {weight_bytes / 2**30:.1f} GiB of weights do not fit in one ONNX file "
            "(at most 2 GiB); the onnx format exports models under 2 GiB"
        )
    if config.max_positions < 2:
        raise ExportError("model.max_positions 1: the onnx format needs at least 2 positions")

    float_files = {ENCODER_FILE: folder / ENCODER_FILE, STEP_FILE: folder / STEP_FILE}
    if quantization == "int8":
        float_files = {name: folder / f"float32-{name}" for name in float_files}
    with model.use_kernel(EXPORT_KERNEL), torch.no_grad(), quiet_exporter():
        export_encoder(model, float_files[ENCODER_FILE])
        export_step(model, float_files[STEP_FILE])
    if quantization == "int8":
        for name, path in float_files.items():
            quantize_int8(path, folder / name)

    n_layers = config.n_decoder_layers
    enc_in, enc_out = encoder_names(n_layers)
    step_in, step_out = step_names(n_layers)
    return {
        "onnx": {
            "encoder": {"file": ENCODER_FILE, "inputs": enc_in, "outputs": enc_out},
            "decoder_step": {"file": STEP_FILE, "inputs": step_in, "outputs": step_out},
            "opset": OPSET,
            "attention_kernel": EXPORT_KERNEL,
            "max_source_tokens": config.max_positions,
            "max_output_tokens": config.max_positions,
            "exporter": f"torch {torch.__version__} (dynamo)",
        },
        "quantization": quantization,
        "decode": asdict(source.decode),
    }


def export_encoder(model: torch.nn.Module, path: Path) -> None:
    """Trace `EncoderGraph(model)` into `path`, batch and source length dynamic."""
    c = model.config
    batch, src_len = dims(c.max_positions)[:2]
    s = min(EXAMPLE_SRC, c.max_positions)
    src = torch.full((EXAMPLE_BATCH, s), c.src_vocab_size - 1)  # traced: the values do not matter
    src_mask = torch.ones(EXAMPLE_BATCH, s, dtype=torch.bool)
    src_mask[1, s - 1 :] = False  # a padded row
    inputs, outputs = encoder_names(c.n_decoder_layers)
    axes = {0: batch, 1: src_len}
    onnx_export(EncoderGraph(model).eval(), (src, src_mask), path, inputs, outputs, (axes, axes))


def export_step(model: torch.nn.Module, path: Path) -> None:
    """Trace `DecoderStepGraph(model)` into `path`, batch, source and past lengths dynamic."""
    c = model.config
    batch, src_len, past_len = dims(c.max_positions)
    s = min(EXAMPLE_SRC, c.max_positions)
    p = min(EXAMPLE_PAST, c.max_positions - 1)
    tokens = torch.full((EXAMPLE_BATCH, 1), c.tgt_vocab_size - 1)
    src_mask = torch.ones(EXAMPLE_BATCH, s, dtype=torch.bool)
    src_mask[1, s - 1 :] = False
    past = tuple(
        torch.zeros(EXAMPLE_BATCH, c.n_heads, p, c.d_head) for _ in range(2 * c.n_decoder_layers)
    )
    cross = tuple(
        torch.zeros(EXAMPLE_BATCH, c.n_heads, s, c.d_head) for _ in range(2 * c.n_decoder_layers)
    )
    inputs, outputs = step_names(c.n_decoder_layers)
    shapes = (
        {0: batch},
        {0: batch, 1: src_len},
        tuple({0: batch, 2: past_len} for _ in past),
        tuple({0: batch, 2: src_len} for _ in cross),
    )
    graph = DecoderStepGraph(model).eval()
    onnx_export(graph, (tokens, src_mask, past, cross), path, inputs, outputs, shapes)


def quantize_int8(float_path: Path, out: Path) -> None:
    """ONNX Runtime's dynamic quantization of one graph; the float32 input is removed.

    The graph is first pre-processed as ONNX Runtime advises (shape inference and its basic
    graph optimisations; its symbolic shape inference cannot follow our dynamic past length and
    is skipped). Weights are quantized per output channel, which kept more greedy outputs equal
    to float32 than one scale per matrix did, and as unsigned 8-bit: with signed weights ONNX
    Runtime multiplies u8 activations by s8 weights in instructions that saturate on CPUs
    without AVX-512 VNNI, which cost most of the agreement with float32 there (docs/export.md).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = float_path.with_name(f"prepared-{float_path.name}")
    quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(prepared, out, weight_type=QuantType.QUInt8, per_channel=True)
    float_path.unlink()
    prepared.unlink()


def dims(max_positions: int) -> tuple[Any, Any, Any]:
    """The dynamic axes: batch, source length (1..max_positions), past length (0..max - 1).

    The bounds are what the position table holds; they also settle at trace time the model's
    Python checks on lengths (e.g. "does this position fit the table?").
    """
    Dim = torch.export.Dim
    return (
        Dim("batch", min=1),
        Dim("src_len", min=1, max=max_positions),
        Dim("past_len", min=0, max=max_positions - 1),
    )


def onnx_export(
    graph: torch.nn.Module,
    args: tuple[Any, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic_shapes: tuple[Any, ...],
) -> None:
    """torch.onnx.export with the dynamo exporter, weights inside the file."""
    torch.onnx.export(
        graph,
        args,
        str(path),
        input_names=inputs,
        output_names=outputs,
        dynamic_shapes=dynamic_shapes,
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
    )


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Keep torch.onnx's advisory warnings off the user's terminal.

    The exporter warns about optional packages it does not need here (torchvision), about axis
    names and about deprecations inside torch; none of it is for the user of `aiayn export`,
    whose command prints one line. Real failures still raise.
    """
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
