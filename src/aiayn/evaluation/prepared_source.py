"""The corpus a prepared dataset was made from: what a run trained from it is tested on.

A run trained with `aiayn train --prepared DIR` records only ``data.corpus: prepared``; the
options `aiayn prepare` read the text with are in DIR's ``manifest.json`` (``data``). A dataset
prepared from a named corpus with a test set (Multi30k, WMT14) is scored on that test set, as
a run trained on the raw text is: a WMT14 run on newstest2014 with the paper's BLEU, not on
the newstest2013 it validated on.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiayn.data import DataConfig, DataError
from aiayn.data.prepared import MANIFEST
from aiayn.typed_config import from_mapping

TESTED_CORPORA = ("multi30k", "wmt14")
"""Named corpora whose test sets `aiayn evaluate` scores a run on by default."""


def scoring_config(config: DataConfig) -> DataConfig:
    """The data options to choose a run's test data by.

    Args:
        config: The run's data section (config.yaml's ``data:``).

    Returns:
        For a run trained from a prepared dataset made from Multi30k or WMT14, the data
        options that dataset was prepared with (its manifest's ``data``); else ``config``.

    Raises:
        DataError: The dataset's manifest is unreadable (a missing folder is left to the
            validation-data path, which names it).
    """
    if config.corpus != "prepared" or config.prepared_dir is None:
        return config
    path = Path(config.prepared_dir) / MANIFEST
    if not path.is_file():
        return config
    try:
        values = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a prepared-dataset manifest ({e!r})") from None
    source = from_mapping(DataConfig, values, f"{path} data")
    return source if source.corpus in TESTED_CORPORA else config
