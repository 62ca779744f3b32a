"""Taking a few named files out of a (gzipped) tar archive, atomically, in one pass.

The WMT training archives hold many language pairs (europarl-v7: cs, de, es, fr; 658 MB);
only the de-en members are wanted. `extract_members` reads the archive once, front to back
(a .tgz cannot be read out of order cheaply), and writes each wanted member to the path the
caller chose: the member's name inside the archive is never used as a path, so a hostile
archive cannot write outside the destination. Each file appears under its name only when it
is complete (a temporary file renamed with ``os.replace``).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
import shutil
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from aiayn.data.errors import DataError

_CHUNK = 1 << 20
_SHOWN = 12  # member names listed when a wanted one is missing


def extract_members(archive: Path, members: Mapping[str, Path], advice: str = "") -> None:
    """Write the named members of ``archive`` to the given paths.

    Args:
        archive: a tar file, plain or compressed (gzip, bz2, xz: detected from its bytes).
        members: member name inside the archive (e.g. ``training/europarl-v7.de-en.de``) ->
            the file to create. Folders are created as needed.
        advice: a sentence appended to error messages, saying what the user can do instead.

    Raises:
        DataError: the archive cannot be read, a wanted member is missing (the message names
            it and lists some of the archive's files) or is not a regular file. Files already
            written for other members are complete and stay.
    """
    tail = f"; {advice}" if advice else ""
    wanted = dict(members)
    seen: list[str] = []
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for info in tar:
                name = info.name.removeprefix("./")  # some tools write "./training/..."
                seen.append(name)
                target = wanted.pop(name, None)
                if target is None:
                    continue
                source = tar.extractfile(info) if info.isfile() else None
                if source is None:
                    raise DataError(f"{archive}: member {info.name} is not a regular file{tail}")
                with source:
                    _write_atomically(source, Path(target))
                if not wanted:
                    return
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{archive}: not a readable tar archive ({e}){tail}") from None
    except OSError as e:
        raise DataError(f"{archive}: cannot extract ({e}){tail}") from None
    if wanted:
        shown = ", ".join(seen[:_SHOWN]) + (", ..." if len(seen) > _SHOWN else "")
        raise DataError(
            f"{archive} has no member {', '.join(sorted(wanted))} (it has {len(seen)} "
            f"entries: {shown or 'none'}){tail}"
        )


def _write_atomically(source: IO[bytes], target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file in the same folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    try:
        with open(tmp, "xb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
