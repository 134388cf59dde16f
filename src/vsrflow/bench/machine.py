"""Facts that make a benchmark number reproducible: device name, versions, git commit, peak memory.

No torch import at module level: the CLI imports this lazily, and the quality script's report
rendering must not pay for torch.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from pathlib import Path


def git_commit(repo: Path) -> str:
    """``git rev-parse HEAD`` of ``repo`` (read-only), with ``-dirty`` when tracked files changed;
    ``"unknown"`` outside a checkout or without git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown"
    if not head:
        return "unknown"
    # A result measured on uncommitted code must say so: the commit alone would misattribute it.
    return f"{head}-dirty" if dirty else head


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def device_name(device: str) -> str:
    """Human name of a torch device string: the GPU's name for ``cuda[:N]``, CPU model and cores else."""
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    return f"{cpu_name()} ({os.cpu_count()} cores)"


def peak_rss_mb() -> float:
    """This process's peak resident set in MiB (``VmHWM``).

    Not ``ru_maxrss``: on Linux a forked child inherits its parent's high-water mark there, which
    hid every difference in the first benchmark runs. ``ru_maxrss`` is only the non-Linux fallback.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def host_tag() -> str:
    """Short host name for result file names (``platform.node()``, ``host`` when empty)."""
    return (platform.node() or "host").split(".")[0]
