"""Atomic writes: a temporary sibling, then `os.replace`, so no reader (and no crash) ever sees a
half-written file or folder.

Files and folders written here get the permissions a plain `open()` or `mkdir` would give them
(0666 or 0777 minus the umask), so that colleagues on a shared server can read a run when the
umask lets them. That rules out `tempfile.mkstemp`/`mkdtemp` (always 0600/0700), and some
writers (safetensors) also create 0600 files: what they wrote is given the plain mode afterwards.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any


def temporary_sibling(path: Path, suffix: str = ".tmp") -> Path:
    """A fresh, unused name beside `path`, hidden (leading dot) and marked as temporary."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")


def plain_file_mode(folder: Path) -> int:
    """The permission bits `open(path, "w")` gives a new file in `folder` (0666 minus the umask).

    Found by creating a file rather than by reading the umask, which `os.umask` can only do by
    changing it (a race with other threads).
    """
    probe = temporary_sibling(folder / "mode-probe")
    probe.touch()
    try:
        return stat.S_IMODE(probe.stat().st_mode)
    finally:
        probe.unlink()


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` and move the result to `path` in one step.

    Args:
        path: the final file (its folder is created if needed).
        write: creates `tmp_path` with the complete content.

    Returns:
        `path` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():  # else os.replace's error would name the temporary file
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file", str(path))
    tmp = temporary_sibling(path)
    try:
        write(tmp)
        os.chmod(tmp, plain_file_mode(path.parent))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically (UTF-8)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> Path:
    """Write JSON atomically, indented for people."""
    return atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def write_folder(directory: str | Path, write: Callable[[Path], None]) -> Path:
    """Fill a temporary sibling folder with `write(tmp)`, then rename it to `directory`.

    A folder already at `directory` is replaced; a crash at any point leaves either the old
    folder or the new one there (plus, at worst, a hidden leftover), never a half-written one.

    Args:
        directory: the final folder.
        write: fills the (empty, existing) folder it is given.

    Returns:
        `directory` as a Path.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(directory, "")
    tmp.mkdir()
    try:
        write(tmp)
        mode = plain_file_mode(tmp)
        for file in tmp.rglob("*"):
            if file.is_file():
                os.chmod(file, mode)
        replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written folder into place, replacing any folder already there."""
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final_dir, old)
        os.replace(tmp_dir, final_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, final_dir)
