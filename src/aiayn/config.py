"""A run's whole configuration: model, data, training and decoding sections, read from YAML.

The YAML keys are exactly the dataclass fields; an unknown key is an error naming it::

    model:   {preset: small, dropout: 0.3, tie_output: true}   # a preset + ModelConfig fields
    data:    {corpus: multi30k, src_lang: de, tgt_lang: en}     # DataConfig
    train:   {max_tokens: 4096, max_epochs: 20}                  # TrainConfig
    decode:  {beam_size: 5, alpha: 0.6}                          # DecodeConfig
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aiayn.data.corpus import DataConfig
from aiayn.decoding.config import DecodeConfig
from aiayn.model import PRESETS, ModelConfig
from aiayn.training.config import TrainConfig

SECTIONS = ("model", "data", "train", "decode")
VOCAB_FIELDS = ("src_vocab_size", "tgt_vocab_size")


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
        preset = self.model.get("preset", "tiny")
        if preset not in PRESETS:
            raise ValueError(f"model.preset must be one of {PRESETS}, got {preset!r}")
        known = {f.name for f in dataclasses.fields(ModelConfig)} - set(VOCAB_FIELDS)
        unknown = sorted(set(self.model) - known - {"preset"})
        if unknown:
            raise ValueError(f"unknown key(s) in model: {', '.join(unknown)}")
        self.model_config(100, 100)  # validate the values now, not after hours of data prep

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
        """The ModelConfig for vocabularies of these sizes."""
        overrides = {k: v for k, v in self.model.items() if k != "preset"}
        preset = self.model.get("preset", "tiny")
        return ModelConfig.preset(preset, src_vocab_size, tgt_vocab_size, **overrides)

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
        """Build from the YAML layout; unknown sections or keys are errors naming them."""
        if not isinstance(values, dict):
            raise ValueError(f"{source}: expected a mapping with sections {SECTIONS}")
        unknown = sorted(set(values) - set(SECTIONS))
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {', '.join(unknown)}; use {SECTIONS}")
        kwargs: dict[str, Any] = {}
        for name, kind in (("data", DataConfig), ("train", TrainConfig), ("decode", DecodeConfig)):
            section = values.get(name) or {}
            fields = {f.name for f in dataclasses.fields(kind)}
            bad = sorted(set(section) - fields)
            if bad:
                raise ValueError(f"{source}: unknown key(s) in {name}: {', '.join(bad)}")
            try:
                kwargs[name] = kind(**section)
            except TypeError as error:
                raise ValueError(f"{source}: bad value in {name}: {error}") from None
        model = values.get("model") or {}
        if not isinstance(model, dict):
            raise ValueError(f"{source}: section model must be a mapping")
        try:
            return cls(model=dict(model), **kwargs)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a YAML config file."""
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise FileNotFoundError(f"config file {path} not found") from None
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {error}") from None
        return cls.from_dict(values, source=str(path))

    def to_yaml(self) -> str:
        """The YAML text of this config."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
