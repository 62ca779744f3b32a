"""Small synthetic translation tasks, for checking that the model can learn at all.

Each task maps a space-separated sequence of symbols to another:

- ``copy``: the same sequence (``3 1 4`` -> ``3 1 4``);
- ``reverse``: the sequence backwards (``3 1 4`` -> ``4 1 3``);
- ``sort``: the symbols in alphabet order (``3 1 4`` -> ``1 3 4``);
- ``add``: the sum of two decimal numbers, one digit per symbol (``1 2 3 + 4 5`` -> ``1 6 8``).

A model that cannot learn ``copy`` in a few hundred steps has a bug (masks, shifting, loss);
``reverse`` and ``sort`` need attention to look far away; ``add`` needs carries.

Examples come from ``random.Random(seed)`` only, so a (task, n, seed, options) always gives
the same list. Train, validation and test sets are meant to be drawn with different seeds.
Sequences are drawn independently, so different seeds may share an example by chance: with
the defaults (10 symbols, lengths 4..12) only the 4- and 5-symbol sequences can collide in
practice (10^4 and 10^5 of them), and roughly 1-2% of a 1000-example test set drawn with one
seed occurs in a 10000-example training set drawn with another. ``add`` overlaps more (about
8%), because there are only 100 sums of two one-digit numbers. Pass ``exclude`` (e.g. the
training sources) to rule such overlaps out.
"""

from __future__ import annotations

import random
import string
from collections.abc import Collection

from aiayn.data.errors import DataError
from aiayn.data.text_files import Pair

TASKS: tuple[str, ...] = ("copy", "reverse", "sort", "add")

SYMBOLS = string.digits + string.ascii_lowercase
"""The symbol pool: alphabets are its first ``alphabet_size`` characters (``0``-``9``, ``a``...)."""

# Default (min, max) length: symbols per sequence, or digits per operand for "add" (whose
# source has two operands and a "+", so 1..5 digits per operand gives 3..11 symbols).
_DEFAULT_LENGTHS = {"copy": (4, 12), "reverse": (4, 12), "sort": (4, 12), "add": (1, 5)}

# How many draws per requested example before giving up on finding new ones (see ``exclude``).
_MAX_TRIES_PER_EXAMPLE = 100


def _sequence(rng: random.Random, alphabet: str, min_len: int, max_len: int) -> list[str]:
    return [rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len))]


def _number(rng: random.Random, min_digits: int, max_digits: int) -> int:
    digits = rng.randint(min_digits, max_digits)
    low = 0 if digits == 1 else 10 ** (digits - 1)  # no leading zeros
    return rng.randint(low, 10**digits - 1)


def _example(task: str, rng: random.Random, alphabet: str, min_len: int, max_len: int) -> Pair:
    if task == "add":
        a, b = _number(rng, min_len, max_len), _number(rng, min_len, max_len)
        return f"{' '.join(str(a))} + {' '.join(str(b))}", " ".join(str(a + b))
    seq = _sequence(rng, alphabet, min_len, max_len)
    if task == "copy":
        out = seq
    elif task == "reverse":
        out = seq[::-1]
    else:  # sort
        out = sorted(seq, key=alphabet.index)
    return " ".join(seq), " ".join(out)


def make_task(
    name: str,
    n: int,
    seed: int,
    *,
    min_len: int | None = None,
    max_len: int | None = None,
    alphabet_size: int = 10,
    exclude: Collection[str] = (),
) -> list[Pair]:
    """Generate ``n`` examples of a synthetic task, deterministically from ``seed``.

    Args:
        name: One of ``TASKS``.
        n: How many (source, target) pairs to generate.
        seed: Seed of the generator; use different seeds for train, validation and test.
        min_len: Shortest sequence in symbols (for ``add``: fewest digits per operand).
            Defaults to 4 (``add``: 1).
        max_len: Longest sequence in symbols (for ``add``: most digits per operand).
            Defaults to 12 (``add``: 5).
        alphabet_size: How many distinct symbols ``copy``, ``reverse`` and ``sort`` draw from:
            the first ``alphabet_size`` of ``0-9a-z`` (2 to 36). ``add`` always uses digits.
        exclude: Source strings that must not be generated (e.g. the training sources, when
            making a test set that is guaranteed disjoint from them).

    Returns:
        The pairs; symbols are separated by single spaces.

    Raises:
        DataError: For an unknown task (the message lists the tasks), bad lengths or
            alphabet size, or when ``exclude`` leaves too few possible examples.
    """
    if name not in TASKS:
        raise DataError(f"unknown synthetic task {name!r}; choose one of {', '.join(TASKS)}")
    default_min, default_max = _DEFAULT_LENGTHS[name]
    min_len = default_min if min_len is None else min_len
    max_len = default_max if max_len is None else max_len
    if not 1 <= min_len <= max_len:
        raise DataError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    if not 2 <= alphabet_size <= len(SYMBOLS):
        raise DataError(f"alphabet_size must be in 2..{len(SYMBOLS)}, got {alphabet_size}")
    if n < 0:
        raise DataError(f"n must be >= 0, got {n}")
    alphabet = SYMBOLS[:alphabet_size]
    excluded = set(exclude)
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for _ in range(n * _MAX_TRIES_PER_EXAMPLE):
        if len(pairs) == n:
            break
        pair = _example(name, rng, alphabet, min_len, max_len)
        if pair[0] not in excluded:
            pairs.append(pair)
    if len(pairs) < n:
        raise DataError(
            f"could only generate {len(pairs)} of {n} {name!r} examples outside `exclude`; "
            "allow longer sequences or a larger alphabet"
        )
    return pairs
