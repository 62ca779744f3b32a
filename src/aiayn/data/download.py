"""Downloading one file safely: verified checksum, atomic rename, no half-written files."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path

from aiayn.data.errors import DataError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
_CHUNK = 1 << 16


def download_file(
    url: str,
    dest: Path,
    sha256: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    advice: str = "",
    algorithm: str = "sha256",
) -> Path:
    """Download ``url`` to ``dest``, checking its digest before it appears under that name.

    The bytes go to a temporary file in ``dest``'s folder, which is renamed onto ``dest``
    (``os.replace``, atomic on one file system) only once the checksum matches. So ``dest``
    either does not exist or is complete and verified, even if the process is killed (which
    may leave a hidden ``.<name>.*.part`` file behind, never a bad ``dest``), and several
    processes (e.g. the ranks of a distributed run) may download the same file at once.

    Args:
        url: Where to download from.
        dest: The file to create; its folder is created if needed.
        sha256: The expected digest of the downloaded bytes in hex (SHA-256 unless
            ``algorithm`` says otherwise).
        timeout: Seconds to wait for the server at each step (connect, each read).
        advice: A sentence appended to error messages, saying what the user can do instead.
        algorithm: A ``hashlib`` algorithm name: "sha256", or "md5" where that is all the
            publisher gives (some WMT test archives).

    Returns:
        ``dest``.

    Raises:
        DataError: If the download fails (network, HTTP error, timeout) or the checksum does
            not match; no file is left behind in either case.
    """
    dest = Path(dest)
    tail = f"; {advice}" if advice else ""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A plain create ("x": a new file), not mkstemp: the file gets the umask's permissions
        # (mkstemp would make it 0600 whatever the umask).
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise DataError(f"cannot write {dest.name} into {dest.parent} ({e}){tail}") from None
    logger.info("downloading %s to %s", url, dest)
    try:
        digest = hashlib.new(algorithm)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                expected = resp.headers.get("Content-Length")
                received = 0
                while chunk := resp.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                # read(n) returns b"" when the server hangs up early; it does not raise.
                if expected is not None and expected.isdigit() and received < int(expected):
                    raise http.client.IncompleteRead(b"", int(expected) - received)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, http.client.HTTPException) as e:
            # URLError, HTTPError, timeouts and refused connections are all OSErrors.
            # str(HTTPError) has the status code; URLError's reason is clearer than its str.
            is_http = isinstance(e, urllib.error.HTTPError)
            reason = e if is_http else getattr(e, "reason", None) or e
            raise DataError(f"could not download {dest.name} from {url} ({reason}){tail}") from e
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise DataError(
                f"checksum mismatch for {dest.name} downloaded from {url}: expected {algorithm} "
                f"{sha256}, got {actual}; the download is corrupt or the file changed "
                f"upstream{tail}"
            )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest
