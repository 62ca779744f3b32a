"""aiayn: the Transformer of "Attention Is All You Need", from scratch in PyTorch."""

from aiayn.model import ModelConfig, Transformer

__version__ = "0.1.0"

__all__ = ["ModelConfig", "Transformer", "__version__"]
