"""The model's hyper-parameters: one frozen dataclass with the paper's names and named presets.

A value of the wrong type or range is a `ModelConfigError` naming the field. The model layer
imports only torch, so it checks its own field types here rather than with the project's
`aiayn.typed_config` (the same rules, for the four plain types ModelConfig uses), and its error
is a plain ValueError that `aiayn.config` turns into a `ConfigError` naming `model.<field>`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

ACTIVATIONS = ("relu", "gelu", "swish")
POSITIONALS = ("sinusoidal", "learned")
ATTENTION_KERNELS = ("sdpa", "explicit", "auto")

# How a message names the type each field takes.
TYPE_NAMES = {int: "an int", float: "a float", bool: "a bool", str: "a str"}


class ModelConfigError(ValueError):
    """A ModelConfig field of the wrong type or out of range.

    Attributes:
        field: the field at fault, e.g. "dropout".
        problem: what is wrong with it, e.g. "must be a float, got 'high' (str)".
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"ModelConfig.{field} {problem}")
        self.field = field
        self.problem = problem


def check_types(config: ModelConfig) -> None:
    """Refuse a field whose value is not of its annotated type; store an int given as a float.

    A bool is never an int (nor an int a bool) and a str is never converted.

    Raises:
        ModelConfigError: naming the field, the value and the type it takes.
    """
    hints = typing.get_type_hints(ModelConfig)
    for field in dataclasses.fields(config):
        value, kind = getattr(config, field.name), hints[field.name]
        is_bool = isinstance(value, bool)
        if kind is float and isinstance(value, int) and not is_bool:
            object.__setattr__(config, field.name, float(value))  # frozen: only in __post_init__
        elif not isinstance(value, kind) or (is_bool and kind is not bool):
            problem = f"must be {TYPE_NAMES[kind]}, got {value!r} ({type(value).__name__})"
            raise ModelConfigError(field.name, problem)


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
    activation: str = "relu"  # FFN non-linearity: "relu" (paper), "gelu" or "swish" (= SiLU)
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
        check_types(self)
        for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "n_heads", "d_ff"):
            if getattr(self, name) <= 0:
                raise ModelConfigError(name, f"must be positive, got {getattr(self, name)}")
        for name in ("n_encoder_layers", "n_decoder_layers", "max_positions"):
            if getattr(self, name) < 1:
                raise ModelConfigError(name, f"must be at least 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ModelConfigError(
                "d_model", f"must be divisible by n_heads ({self.n_heads}), got {self.d_model}"
            )
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ModelConfigError(name, f"must be in [0, 1), got {getattr(self, name)}")
        choices = {
            "activation": ACTIVATIONS,
            "positional": POSITIONALS,
            "attention_kernel": ATTENTION_KERNELS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ModelConfigError(
                    name, f"must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ModelConfigError(
                "share_embeddings",
                f"needs one vocabulary: src_vocab_size ({self.src_vocab_size}) != "
                f"tgt_vocab_size ({self.tgt_vocab_size})",
            )
        if not 0 <= self.pad_id < min(self.src_vocab_size, self.tgt_vocab_size):
            raise ModelConfigError(
                "pad_id",
                f"must be an id of both vocabularies ({self.src_vocab_size}, "
                f"{self.tgt_vocab_size} ids), got {self.pad_id}",
            )
        if self.layer_norm_eps <= 0:
            raise ModelConfigError("layer_norm_eps", f"must be positive, got {self.layer_norm_eps}")

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
        """Build from a dict, e.g. read from a run's run.json.

        Raises:
            ModelConfigError: an unknown or missing key, or a bad value; names the field.
        """
        fields = dataclasses.fields(cls)
        unknown = sorted(set(values) - {f.name for f in fields})
        if unknown:
            raise ModelConfigError(unknown[0], "is not a ModelConfig field")
        for f in fields:
            if f.default is dataclasses.MISSING and f.name not in values:
                raise ModelConfigError(f.name, "is missing")
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
