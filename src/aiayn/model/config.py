"""The model's hyper-parameters: one frozen dataclass with the paper's names and named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

ACTIVATIONS = ("relu", "gelu")
POSITIONALS = ("sinusoidal", "learned")
ATTENTION_KERNELS = ("sdpa", "explicit", "auto")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a Transformer's shape and regularisation.

    Use a preset (`base`, `big`, `small`, `tiny`) and override fields by keyword::

        config = ModelConfig.small(src_vocab_size=8000, tgt_vocab_size=8000, dropout=0.3)
    """

    src_vocab_size: int  # source vocabulary size, special ids included
    tgt_vocab_size: int  # target vocabulary size, special ids included
    d_model: int = 512  # width of every residual stream (the paper's d_model)
    n_heads: int = 8  # attention heads per attention block (the paper's h)
    d_ff: int = 2048  # inner width of the position-wise feed-forward network
    n_encoder_layers: int = 6  # encoder layers (the paper's N)
    n_decoder_layers: int = 6  # decoder layers (the paper's N)
    dropout: float = 0.1  # on embeddings+positions, sub-layer outputs and FFN inner activations
    attention_dropout: float = 0.0  # on attention weights (the paper uses none)
    activation: str = "relu"  # FFN non-linearity: "relu" (paper) or "gelu"
    norm_first: bool = False  # False = the paper's post-norm; True = pre-norm with a final norm
    positional: str = "sinusoidal"  # "sinusoidal" (paper) or "learned" (the tutorial thread)
    max_positions: int = 1024  # longest sequence; a hard limit for learned positions
    share_embeddings: bool = False  # one table for source and target (needs one vocabulary)
    tie_output: bool = False  # generator weight = target embedding table (paper section 3.4)
    scale_embeddings: bool = True  # multiply embeddings by sqrt(d_model) (paper section 3.4)
    layer_norm_eps: float = 1e-5  # LayerNorm epsilon
    pad_id: int = 0  # padding id in both vocabularies; masks are derived from it when not given
    attention_kernel: str = (
        "sdpa"  # "sdpa" (fused), "explicit" (the paper's math), "auto" (by shape)
    )

    def __post_init__(self) -> None:
        for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "n_heads", "d_ff"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("n_encoder_layers", "n_decoder_layers", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"ModelConfig.{name} must be at least 1, got {getattr(self, name)}"
                )
        if self.d_model % self.n_heads:
            raise ValueError(
                f"ModelConfig.d_model ({self.d_model}) must be divisible by "
                f"ModelConfig.n_heads ({self.n_heads})"
            )
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        choices = {
            "activation": ACTIVATIONS,
            "positional": POSITIONALS,
            "attention_kernel": ATTENTION_KERNELS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"ModelConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(
                "ModelConfig.share_embeddings needs one vocabulary: src_vocab_size "
                f"({self.src_vocab_size}) != tgt_vocab_size ({self.tgt_vocab_size})"
            )
        if not 0 <= self.pad_id < min(self.src_vocab_size, self.tgt_vocab_size):
            raise ValueError(f"ModelConfig.pad_id ({self.pad_id}) is outside the vocabularies")
        if self.layer_norm_eps <= 0:
            raise ValueError(
                f"ModelConfig.layer_norm_eps must be positive, got {self.layer_norm_eps}"
            )

    @property
    def d_head(self) -> int:
        """Width of one head (the paper's d_k = d_v = d_model / h)."""
        return self.d_model // self.n_heads

    def replace(self, **overrides: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields, for YAML/JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a dict; an unknown key is an error naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s): {', '.join(unknown)}")
        return cls(**values)

    # Presets. Each takes the vocabulary sizes and any field overrides.

    @classmethod
    def base(cls, src_vocab_size: int, tgt_vocab_size: int, **overrides: Any) -> ModelConfig:
        """The paper's base model: 6+6 layers, d_model 512, d_ff 2048, 8 heads, dropout 0.1."""
        fields = dict(d_model=512, n_heads=8, d_ff=2048, n_encoder_layers=6, n_decoder_layers=6)
        return cls(src_vocab_size, tgt_vocab_size, **{**fields, "dropout": 0.1, **overrides})

    @classmethod
    def big(cls, src_vocab_size: int, tgt_vocab_size: int, **overrides: Any) -> ModelConfig:
        """The paper's big model: 6+6 layers, d_model 1024, d_ff 4096, 16 heads, dropout 0.3."""
        fields = dict(d_model=1024, n_heads=16, d_ff=4096, n_encoder_layers=6, n_decoder_layers=6)
        return cls(src_vocab_size, tgt_vocab_size, **{**fields, "dropout": 0.3, **overrides})

    @classmethod
    def small(cls, src_vocab_size: int, tgt_vocab_size: int, **overrides: Any) -> ModelConfig:
        """The benchmarks' reference size: 3+3 layers, d_model 256, d_ff 1024, 4 heads."""
        fields = dict(d_model=256, n_heads=4, d_ff=1024, n_encoder_layers=3, n_decoder_layers=3)
        return cls(src_vocab_size, tgt_vocab_size, **{**fields, "dropout": 0.1, **overrides})

    @classmethod
    def multi30k(cls, src_vocab_size: int, tgt_vocab_size: int, **overrides: Any) -> ModelConfig:
        """Sized for Multi30k's 29k sentences: 4+4 layers, d_model 128, d_ff 512, 4 heads.

        The width and depth of the best published text-only Multi30k Transformer; dropout 0.3,
        one shared embedding table tied to the generator (needs a joint vocabulary).
        """
        fields = dict(d_model=128, n_heads=4, d_ff=512, n_encoder_layers=4, n_decoder_layers=4)
        shared = dict(share_embeddings=True, tie_output=True)
        return cls(
            src_vocab_size, tgt_vocab_size, **{**fields, **shared, "dropout": 0.3, **overrides}
        )

    @classmethod
    def tiny(cls, src_vocab_size: int, tgt_vocab_size: int, **overrides: Any) -> ModelConfig:
        """A model for tests and quick demos: 2+2 layers, d_model 64, d_ff 128, 4 heads."""
        fields = dict(d_model=64, n_heads=4, d_ff=128, n_encoder_layers=2, n_decoder_layers=2)
        return cls(src_vocab_size, tgt_vocab_size, **{**fields, "dropout": 0.0, **overrides})

    @classmethod
    def preset(
        cls, name: str, src_vocab_size: int, tgt_vocab_size: int, **overrides: Any
    ) -> ModelConfig:
        """A preset by name (`base`, `big`, `small`, `multi30k`, `tiny`)."""
        presets = {
            "base": cls.base,
            "big": cls.big,
            "small": cls.small,
            "multi30k": cls.multi30k,
            "tiny": cls.tiny,
        }
        if name not in presets:
            raise ValueError(f"unknown model preset {name!r}; choose from {', '.join(presets)}")
        return presets[name](src_vocab_size, tgt_vocab_size, **overrides)


PRESETS = ("base", "big", "small", "multi30k", "tiny")
