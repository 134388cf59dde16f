"""Run the ffmpeg CLI with an argument list (never a shell) and turn failures into ExternalToolError."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from vsrflow.errors import ExternalToolError

log = logging.getLogger(__name__)


def run_ffmpeg(argv: Sequence[str], *, what: str = "ffmpeg failed", timeout: float | None = None) -> str:
    """Run ``argv`` (argv[0] is the ffmpeg binary) and return its stderr.

    Raises:
        ExternalToolError: non-zero exit (with the stderr tail), a missing binary (code 127) or a
            timeout (code 124).
    """
    args = [str(a) for a in argv]
    log.debug("running %s", args)
    try:
        proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    except FileNotFoundError as err:
        raise ExternalToolError(
            args, 127, str(err), what=what, hint="install ffmpeg or point VSRFLOW_FFMPEG at it"
        ) from err
    except subprocess.TimeoutExpired as err:
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else str(err.stderr)
        raise ExternalToolError(args, 124, stderr, what=f"{what} (timed out after {timeout} s)") from err
    if proc.returncode != 0:
        raise ExternalToolError(args, proc.returncode, proc.stderr, what=what)
    return proc.stderr
