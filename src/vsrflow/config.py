"""Settings: the only reader of ``VSRFLOW_*`` environment variables.

Build one :class:`Settings` at the edge (CLI, job entry point) with :meth:`Settings.from_env`
and pass it down; nothing below this layer reads the environment.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vsrflow.errors import InputError


def _default_cache_dir(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "vsrflow"


#: Where ParallelCluster installs the Slurm client commands.
DEFAULT_SLURM_BIN_DIR = Path("/opt/slurm/bin")


def _positive_int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{name}={raw!r} must be a positive integer", hint=f"unset {name} or fix it")
    return value


@dataclass(frozen=True)
class SlurmSettings:
    """Slurm executor settings (``VSRFLOW_SLURM_*``).

    Attributes:
        bin_dir: directory of ``sbatch``/``scontrol``/``scancel`` (``VSRFLOW_SLURM_BIN_DIR``);
            default: the directory of ``sbatch`` on PATH, else ``/opt/slurm/bin`` (ParallelCluster).
        cpu_partition: partition of extract, encode and finalize (``VSRFLOW_SLURM_CPU_PARTITION``, cpu).
        gpu_partition: partition of the upscale array (``VSRFLOW_SLURM_GPU_PARTITION``, gpu).
        gpus_per_task: ``--gres=gpu:N`` of each array task (``VSRFLOW_SLURM_GPUS_PER_TASK``, 1).
        cpus_per_task: ``--cpus-per-task`` of every job (``VSRFLOW_SLURM_CPUS_PER_TASK``; unset: none).
        mem: ``--mem`` of every job, e.g. ``8G`` (``VSRFLOW_SLURM_MEM``; unset: none).
        time: ``--time`` of every job, e.g. ``02:00:00`` (``VSRFLOW_SLURM_TIME``; unset: none).
        scripts_dir: directory of the ``<stage>.sbatch`` scripts (``VSRFLOW_SLURM_SCRIPTS_DIR``;
            unset: ``slurm/`` of the source checkout vsrflow runs from). Installed deployments
            (bootstrap/head-node.sh) copy the scripts to a fixed place and set it.
    """

    bin_dir: Path = DEFAULT_SLURM_BIN_DIR
    cpu_partition: str = "cpu"
    gpu_partition: str = "gpu"
    gpus_per_task: int = 1
    cpus_per_task: int | None = None
    mem: str | None = None
    time: str | None = None
    scripts_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlurmSettings:
        bin_dir = env.get("VSRFLOW_SLURM_BIN_DIR")
        if bin_dir:
            path = Path(bin_dir).expanduser()
        else:
            found = shutil.which("sbatch", path=env.get("PATH", os.defpath))
            path = Path(found).parent if found else DEFAULT_SLURM_BIN_DIR
        gpus = _positive_int(env, "VSRFLOW_SLURM_GPUS_PER_TASK", 1)
        return cls(
            bin_dir=path,
            cpu_partition=env.get("VSRFLOW_SLURM_CPU_PARTITION") or "cpu",
            gpu_partition=env.get("VSRFLOW_SLURM_GPU_PARTITION") or "gpu",
            gpus_per_task=gpus if gpus is not None else 1,
            cpus_per_task=_positive_int(env, "VSRFLOW_SLURM_CPUS_PER_TASK", None),
            mem=env.get("VSRFLOW_SLURM_MEM") or None,
            time=env.get("VSRFLOW_SLURM_TIME") or None,
            scripts_dir=Path(scripts).expanduser()
            if (scripts := env.get("VSRFLOW_SLURM_SCRIPTS_DIR"))
            else None,
        )


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
        slurm: the Slurm executor settings (:class:`SlurmSettings`, ``VSRFLOW_SLURM_*``).
    """

    cache_dir: Path
    log_level: str = "INFO"
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    device: str = "auto"
    slurm: SlurmSettings = field(default_factory=SlurmSettings)

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
            slurm=SlurmSettings.from_env(env),
        )
