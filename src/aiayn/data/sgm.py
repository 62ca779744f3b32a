"""Reading WMT's test sets from their SGM files: one ``<seg id="N">text</seg>`` per line.

WMT released its test sets up to 2020 in a "fake SGML": one segment per line, inside
``<doc>`` elements, not always well-formed XML (a bare ``&`` occurs: "Standard & Poor's" in
newstest2014). So, as sacreBLEU and Moses' ``input-from-sgm.perl`` do, the reader looks at
lines, not at an XML tree:

- every line that starts with ``<seg`` gives one sentence, in file order (the ``id`` restarts
  in each document, so it is checked to be a number but never used to reorder);
- the text between ``<seg ...>`` and ``</seg>`` is taken, entity references that are well
  formed (``&amp;``, ``&lt;``, ``&gt;``, ``&quot;``, ``&apos;``, ``&#NN;``, ``&#xHH;``) are
  unescaped and a bare ``&`` is left alone;
- whitespace is stripped at both ends and runs of it become one space, as sacreBLEU's
  ``_clean`` does, so the sentences are the ones sacreBLEU scores against.

The newstest2014 de-en files have no entity references, so for them the result equals
sacreBLEU's text line for line.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiayn.data.errors import DataError
from aiayn.data.text_files import PathLike, read_lines

_SEG = re.compile(r'<seg\b[^>]*?\bid\s*=\s*"?\s*(\d+)\s*"?[^>]*>(.*)</seg>\s*$')
_ENTITY = re.compile(r"&(amp|lt|gt|quot|apos|#[0-9]+|#[xX][0-9a-fA-F]+);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _unescape(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _NAMED:
        return _NAMED[name]
    code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
    try:
        return chr(code)
    except (ValueError, OverflowError):
        return match.group(0)  # not a character: keep the text as written


def parse_sgm_lines(lines: list[str], name: str = "<sgm>") -> list[str]:
    """The segments of an SGM file's lines, in order (see the module doc for the rules).

    Args:
        lines: the file's lines, without line ends.
        name: the file's name, for error messages.

    Returns:
        One cleaned sentence per ``<seg>`` line.

    Raises:
        DataError: a ``<seg`` line without a numeric id or without its ``</seg>`` on the same
            line (the message names the file and 1-based line), or no segments at all.
    """
    segments: list[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped.startswith("<seg"):
            continue
        match = _SEG.match(stripped)
        if match is None:
            raise DataError(
                f'{name}:{number}: expected <seg id="N">text</seg> on one line, got '
                f"{stripped[:80]!r}"
            )
        text = _ENTITY.sub(_unescape, match.group(2))
        segments.append(" ".join(text.split()))
    if not segments:
        raise DataError(f"{name}: no <seg> lines; is this a WMT .sgm file?")
    return segments


def read_sgm(path: PathLike) -> list[str]:
    """Read the sentences of a WMT SGM file (plain or ``.gz``), in file order.

    Args:
        path: the file, e.g. ``test-full/newstest2014-deen-src.en.sgm``.

    Returns:
        One sentence per ``<seg>``, unescaped and whitespace-normalised.

    Raises:
        DataError: the file is missing, not UTF-8, or not SGM (see `parse_sgm_lines`).
    """
    return parse_sgm_lines(read_lines(path), str(Path(path)))
