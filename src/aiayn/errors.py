"""The project's error types: what a user can cause, as opposed to bugs.

Every error a user can cause by what they pass in (a config value, a command-line option, a
file, a run directory) derives from `AiaynError`. The command line prints these as one line
without a traceback; anything else is a bug and keeps its traceback. Each layer has its own
subclass (`aiayn.data.DataError`, `aiayn.runs.CheckpointError`, `aiayn.runs.RunError`); the
ones here belong to no single layer.
"""

from __future__ import annotations


class AiaynError(Exception):
    """Base of every error a user can cause; the message names the file, key or option."""


class ConfigError(AiaynError, ValueError):
    """A config value of the wrong type or range, or an unknown key; names the key."""


class UsageError(AiaynError, ValueError):
    """A command-line option that cannot be honoured; names the option."""
