"""Local files written atomically, and their checksums: the one owner of both in vsrflow.

Every file that another process may read while it is being written (job records on shared storage,
weights, manifests, rendered configs, downloads, ffmpeg outputs) goes through :func:`atomic_path`
or one of the ``atomic_write_*`` helpers built on it. Contract:

* the data goes to a hidden temporary file in the destination's directory (same filesystem, so
  the rename is atomic); its name carries host, pid and a random token, because writers on several
  nodes share directories on FSx and pids repeat across hosts; the suffix is kept, so a tool that
  picks a format from the extension (ffmpeg) can write it;
* on success: fsync of the file (where we wrote it), ``os.replace`` over the destination, then a
  best-effort fsync of the directory so the rename survives a crash;
* on any failure (including KeyboardInterrupt) the temporary file is removed and the error
  propagates unchanged (an :class:`OSError` stays an OSError: callers translate it for their
  context, e.g. :func:`vsrflow.workflow.job.layout.storage_error`).

Standard library only: the Lambda package imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Mode of files written here: weights and job records on shared storage are read by other users
#: (mkstemp's 0600 would hide them). A fixed mode, because reading the umask means changing it.
FILE_MODE = 0o644


def _tmp_name(dest: Path) -> Path:
    token = f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
    return dest.with_name(f".{dest.stem}.{token}.tmp{dest.suffix}")


def fsync_dir(directory: Path) -> None:
    """fsync ``directory`` so a rename in it is durable; silently skipped where unsupported."""
    # Some filesystems refuse fsync on a directory (EINVAL); the data itself is already synced.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: Path, *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on a clean exit it replaces ``dest`` atomically.

    The caller (or a tool it runs) writes the temporary path; it need not exist when the block ends
    cleanly only if the caller raises. Parents of ``dest`` are created unless ``make_parents`` is
    False.
    """
    dest = Path(dest)
    if make_parents:
        dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(dest)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(dest.parent)


def atomic_write_bytes(path: Path, data: bytes, *, make_parents: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (module contract), mode :data:`FILE_MODE`, fsynced."""
    with atomic_path(path, make_parents=make_parents) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), FILE_MODE)  # O_CREAT's mode is masked by the umask
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: Path, text: str, *, make_parents: bool = True) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"), make_parents=make_parents)


def json_text(data: Any, *, sort_keys: bool = True) -> str:
    """The JSON form every vsrflow record uses: indent 2, no NaN/Infinity, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"


def atomic_write_json(path: Path, data: Any, *, sort_keys: bool = True, make_parents: bool = True) -> None:
    """Write ``data`` as :func:`json_text` to ``path`` atomically (ValueError for NaN/Infinity)."""
    atomic_write_text(path, json_text(data, sort_keys=sort_keys), make_parents=make_parents)


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of the file ``path``, read in ``chunk_size`` byte blocks (memory stays flat)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
