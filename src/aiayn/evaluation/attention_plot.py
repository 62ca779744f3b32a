"""Attention pictures: one heatmap per layer and head (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from aiayn.model import AttentionWeights

KINDS = ("cross", "encoder", "decoder_self")
TITLES = {
    "cross": "cross-attention (target attends to source)",
    "encoder": "encoder self-attention",
    "decoder_self": "decoder self-attention",
}


def plot_attention(
    weights: AttentionWeights,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    output: str | Path,
    kinds: Sequence[str] = ("cross",),
) -> Path:
    """Draw every layer's and head's attention weights of one sentence pair into one PNG.

    Args:
        weights: from `Transformer.attention_weights` for a batch of one.
        src_tokens: source subwords (x axis of cross and encoder attention).
        tgt_tokens: decoder input subwords (y axis of cross and decoder attention).
        output: PNG file to write.
        kinds: which attentions to draw, among "cross", "encoder", "decoder_self".

    Returns:
        The PNG's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown attention kind(s) {unknown}; choose from {KINDS}")
    panels: list[tuple[str, int, Tensor, Sequence[str], Sequence[str]]] = []
    for kind in kinds:
        layers = {"cross": weights.cross, "encoder": weights.encoder}.get(
            kind, weights.decoder_self
        )
        y_labels = src_tokens if kind == "encoder" else tgt_tokens
        x_labels = tgt_tokens if kind == "decoder_self" else src_tokens
        for i, layer in enumerate(layers):
            panels.append((kind, i, layer[0], y_labels, x_labels))  # layer[0]: (H, T_q, T_k)
    n_heads = panels[0][2].shape[0]
    cell = 0.28
    width = max(3.0, cell * len(panels[0][4]) + 1.2)
    height = max(3.0, cell * len(panels[0][3]) + 1.2)
    fig, axes = plt.subplots(
        len(panels), n_heads, figsize=(width * n_heads, height * len(panels)), squeeze=False
    )
    for row, (kind, layer_index, heads, y_labels, x_labels) in enumerate(panels):
        for head in range(n_heads):
            ax = axes[row][head]
            ax.imshow(heads[head].float().cpu().numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
            ax.set_xticks(range(len(x_labels)), list(x_labels), rotation=90, fontsize=7)
            ax.set_yticks(range(len(y_labels)), list(y_labels), fontsize=7)
            ax.set_title(f"{TITLES[kind]}\nlayer {layer_index + 1}, head {head + 1}", fontsize=8)
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, format="png", dpi=100)
    plt.close(fig)
    return output
