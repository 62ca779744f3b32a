"""A run's whole configuration: model, data, training and decoding sections, read from YAML.

The YAML keys are exactly the dataclass fields::

    model:   {preset: small, dropout: 0.3, tie_output: true}   # a preset + ModelConfig fields
    data:    {corpus: multi30k, src_lang: de, tgt_lang: en}     # DataConfig
    train:   {max_tokens: 4096, max_epochs: 20}                  # TrainConfig
    decode:  {beam_size: 5, alpha: 0.6}                          # DecodeConfig

An unknown key, or a value of the wrong type (see `aiayn.typed_config`) or range, is a
`ConfigError` naming it as `section.key`, raised when the config is built: before any data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aiayn.data.corpus import DataConfig
from aiayn.decoding.config import DecodeConfig
from aiayn.errors import ConfigError
from aiayn.model import PRESETS, ModelConfig, ModelConfigError
from aiayn.training.config import TrainConfig
from aiayn.typed_config import check_mapping, check_value, from_mapping

SECTIONS = ("model", "data", "train", "decode")
VOCAB_FIELDS = ("src_vocab_size", "tgt_vocab_size")


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML parse error in one line, e.g. "line 3, column 9: found unexpected end of stream"."""
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    if mark is None or problem is None:
        return str(error).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; the vocabulary sizes are filled in once the vocabulary is built.

    Attributes:
        model: a preset name under `preset` plus any ModelConfig field except the vocabulary
            sizes, e.g. {"preset": "small", "dropout": 0.3}.
        data: where the text comes from.
        train: how to train.
        decode: how to translate.
    """

    model: dict[str, Any] = field(default_factory=lambda: {"preset": "tiny"})
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def __post_init__(self) -> None:
        preset = check_value("model.preset", self.model.get("preset", "tiny"), str)
        if preset not in PRESETS:
            raise ConfigError(f"model.preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        known = {f.name for f in dataclasses.fields(ModelConfig)} - set(VOCAB_FIELDS)
        unknown = sorted(str(key) for key in self.model if key not in known | {"preset"})
        if unknown:
            raise ConfigError(f"unknown key(s) in model: {', '.join(unknown)}")
        # Check the values now, not after hours of data preparation, and keep them as checked
        # (an int given for a float field becomes a float).
        # Probe vocabulary sizes that admit the pad id (an imported Marian model pads with its
        # last id, tens of thousands).
        pad_id = check_value("model.pad_id", self.model.get("pad_id", 0), int)
        probe = max(100, pad_id + 1)
        model = self.model_config(probe, probe)
        checked = {k: v if k == "preset" else getattr(model, k) for k, v in self.model.items()}
        object.__setattr__(self, "model", checked)
        if model.share_embeddings and not self.data.joint_vocab:
            raise ConfigError("model.share_embeddings needs data.joint_vocab: true")

    @classmethod
    def quickstart(cls) -> RunConfig:
        """What `aiayn train` runs with no options: the reverse task, learnt in minutes on a CPU."""
        return cls(
            model={"preset": "tiny", "d_model": 128, "d_ff": 256},
            data=DataConfig(corpus="task", task="reverse"),
            train=TrainConfig(
                max_tokens=2048, warmup=400, lr_factor=0.5, max_epochs=12, average_last=3
            ),
            decode=DecodeConfig(beam_size=1),
        )

    @classmethod
    def text_default(cls) -> RunConfig:
        """The starting point for real text without a config file: the `small` model."""
        return cls(
            model={"preset": "small"},
            data=DataConfig(corpus="multi30k"),
            train=TrainConfig(max_tokens=4096, max_epochs=20),
        )

    def model_config(self, src_vocab_size: int, tgt_vocab_size: int) -> ModelConfig:
        """The ModelConfig for vocabularies of these sizes.

        Raises:
            ConfigError: a model value of the wrong type or range, naming `model.<field>`.
        """
        overrides = {k: v for k, v in self.model.items() if k != "preset"}
        preset = self.model.get("preset", "tiny")
        try:
            return ModelConfig.preset(preset, src_vocab_size, tgt_vocab_size, **overrides)
        except ModelConfigError as error:
            raise ConfigError(f"model.{error.field} {error.problem}") from None

    def replace(self, section: str, **overrides: Any) -> RunConfig:
        """A copy with some fields of one section changed."""
        if section == "model":
            return dataclasses.replace(self, model={**self.model, **overrides})
        current = {"data": self.data, "train": self.train, "decode": self.decode}[section]
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **overrides)})

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, the YAML layout."""
        return {
            "model": dict(self.model),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
            "decode": dataclasses.asdict(self.decode),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from the YAML layout.

        Args:
            values: the sections, e.g. {"model": {"preset": "small"}, "train": {...}}.
            source: where they come from, for messages (a file name, "command line").

        Raises:
            ConfigError: an unknown section or key, or a bad value; names `source` and the key.
        """
        try:
            if not isinstance(values, dict):
                raise ConfigError(f"expected a mapping with sections {', '.join(SECTIONS)}")
            unknown = sorted(str(name) for name in values if name not in SECTIONS)
            if unknown:
                raise ConfigError(
                    f"unknown section(s) {', '.join(unknown)}; use {', '.join(SECTIONS)}"
                )
            return cls(
                model=dict(check_mapping(values.get("model"), "model")),
                data=from_mapping(DataConfig, values.get("data"), "data"),
                train=from_mapping(TrainConfig, values.get("train"), "train"),
                decode=from_mapping(DecodeConfig, values.get("decode"), "decode"),
            )
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a YAML config file.

        Raises:
            ConfigError: the file is missing, not UTF-8 YAML, or not a valid config.
            OSError: the file cannot be read (the error names it).
        """
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text ({error.reason})") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({yaml_problem(error)})") from None
        return cls.from_dict({} if values is None else values, source=str(path))

    def to_yaml(self) -> str:
        """The YAML text of this config."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
