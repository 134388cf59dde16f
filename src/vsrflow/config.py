"""Settings: the only reader of ``VSRFLOW_*`` environment variables.

Build one :class:`Settings` at the edge (CLI, job entry point) with :meth:`Settings.from_env`
and pass it down; nothing below this layer reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vsrflow.errors import InputError


def _default_cache_dir(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "vsrflow"


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    Attributes:
        cache_dir: root of the weight store (``<cache_dir>/weights``) and downloaded wheels.
            ``VSRFLOW_CACHE_DIR``; default ``$XDG_CACHE_HOME/vsrflow`` or ``~/.cache/vsrflow``.
        log_level: ``VSRFLOW_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR); default INFO.
        ffmpeg: path or name of the ffmpeg CLI (``VSRFLOW_FFMPEG``); default ``ffmpeg``.
        ffprobe: path or name of ffprobe (``VSRFLOW_FFPROBE``); default ``ffprobe``.
        device: default torch device string (``VSRFLOW_DEVICE``: auto, cpu, cuda, cuda:N).
    """

    cache_dir: Path
    log_level: str = "INFO"
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    device: str = "auto"

    @property
    def weights_dir(self) -> Path:
        """Directory holding converted/downloaded weight files (``<cache_dir>/weights``)."""
        return self.cache_dir / "weights"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``VSRFLOW_*`` variables (``os.environ`` when ``env`` is None)."""
        env = os.environ if env is None else env
        cache = env.get("VSRFLOW_CACHE_DIR")
        level = env.get("VSRFLOW_LOG_LEVEL", "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise InputError(
                f"VSRFLOW_LOG_LEVEL={level!r} is not a log level",
                hint="use DEBUG, INFO, WARNING or ERROR",
            )
        return cls(
            cache_dir=Path(cache).expanduser() if cache else _default_cache_dir(env),
            log_level=level,
            ffmpeg=env.get("VSRFLOW_FFMPEG", "ffmpeg"),
            ffprobe=env.get("VSRFLOW_FFPROBE", "ffprobe"),
            device=env.get("VSRFLOW_DEVICE", "auto"),
        )
