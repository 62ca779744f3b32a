"""Type checks for the config dataclasses, driven by their annotations.

YAML and `--set` hand over whatever was typed: `dropout: high` arrives as a str, `d_model: "128"`
as a str, `max_steps: 2.5` as a float. Python would carry such values along until something
fails far away (or never, as a str where a bool belongs is always true), so every config
dataclass checks its fields against its annotations when it is built:

- a field annotated `int` takes an int, never a bool (`true` is not 1) nor a float;
- `float` takes a float or an int, stored as a float (`lr_factor: 1` becomes 1.0);
- `bool` takes only a bool; `str` only a str: no value is converted from a string;
- `X | None` also takes None; None is refused everywhere else.

A wrong value is a `ConfigError` naming `section.key`, the value and the type expected.

Used by `DataConfig`, `TrainConfig` and `DecodeConfig` (in their `__post_init__`) and by
`RunConfig` for its sections. `ModelConfig` has its own copy of these few rules, because the
model layer imports only torch (see `aiayn.model.config`). A library (pydantic, cattrs) would
bring a second way of defining configs for what fits in the two functions below.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from aiayn.errors import ConfigError

T = TypeVar("T")

# How a message names each type it expects.
TYPE_NAMES = {int: "an int", float: "a float", bool: "a bool", str: "a str", type(None): "None"}


def check_types(config: Any, section: str) -> None:
    """Check every field of a config dataclass against its annotation; store ints as floats.

    Call it first in `__post_init__` (it may set fields of a frozen dataclass: only there).

    Args:
        config: a dataclass instance whose fields are annotated with int, float, bool, str or
            `X | None` of those.
        section: the name its fields go by in messages, e.g. "train" for `train.max_steps`.

    Raises:
        ConfigError: a field holds a value of another type.
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        checked = check_value(f"{section}.{field.name}", value, hints[field.name])
        if checked is not value:
            object.__setattr__(config, field.name, checked)


def check_value(key: str, value: Any, annotation: Any) -> Any:
    """`value` if it fits `annotation` (an int given for a float becomes one), else an error.

    Raises:
        ConfigError: naming `key`, the value and the expected type.
    """
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kinds = typing.get_args(annotation) if union else (annotation,)
    for kind in kinds:
        if kind not in TYPE_NAMES:  # a field of a new kind: teach this module about it
            raise TypeError(f"{key}: no type check for the annotation {kind!r}")
        is_bool = isinstance(value, bool)  # a bool is an int to Python, never to a config
        if isinstance(value, kind) and (kind is bool or not is_bool):
            return value
        if kind is float and isinstance(value, int) and not is_bool:
            return float(value)
    expected = " or ".join(TYPE_NAMES[kind] for kind in kinds)
    raise ConfigError(f"{key} must be {expected}, got {value!r} ({type(value).__name__})")


def check_mapping(values: Any, section: str) -> Mapping[Any, Any]:
    """One section of a YAML file as a mapping: None (an empty section) is an empty one.

    Raises:
        ConfigError: `values` is not a mapping (e.g. `data: 5`).
    """
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        kind = type(values).__name__
        raise ConfigError(f"{section} must be a mapping of keys to values, got {values!r} ({kind})")
    return values


def from_mapping(cls: type[T], values: Any, section: str) -> T:
    """Build config dataclass `cls` from one section of a YAML file (None = all defaults).

    Args:
        cls: the dataclass, e.g. `TrainConfig`.
        values: the section as read, e.g. {"max_steps": 100}.
        section: its name in messages.

    Raises:
        ConfigError: the section is not a mapping, has an unknown key, or a bad value.
    """
    values = check_mapping(values, section)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(str(key) for key in values if key not in known)
    if unknown:
        raise ConfigError(f"unknown key(s) in {section}: {', '.join(unknown)}")
    return cls(**values)
