"""The one exception type of the data layer."""

from __future__ import annotations

from aiayn.errors import AiaynError


class DataError(AiaynError, ValueError):
    """Bad or missing input data: a malformed file, a missing download, a wrong argument.

    Messages name the file (and 1-based line, where there is one) or the argument at fault and,
    where it is not obvious, say what to do about it. The CLI prints them as one-line errors.
    """
