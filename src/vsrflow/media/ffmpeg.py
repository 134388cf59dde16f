"""Run the ffmpeg CLI with an argument list (never a shell) and turn failures into ExternalToolError."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from vsrflow.errors import ExternalToolError

log = logging.getLogger(__name__)


def run_ffmpeg(
    argv: Sequence[str], *, what: str = "ffmpeg failed", timeout: float | None = None, cwd: Path | None = None
) -> str:
    """Run ``argv`` (argv[0] is the ffmpeg binary) in ``cwd`` (default: ours) and return its stderr.

    Raises:
        ExternalToolError: non-zero exit (with the stderr tail), a missing binary (code 127) or a
            timeout (code 124).
    """
    args = [str(a) for a in argv]
    log.debug("running %s", args)
    try:
        proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout, cwd=cwd)
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


def run_ffmpeg_fed(
    argv: Sequence[str],
    feed: Callable[[IO[bytes]], object],
    *,
    what: str = "ffmpeg failed",
    timeout: float | None = None,
) -> str:
    """Run ``argv`` with its standard input written by ``feed(stdin)``; return ffmpeg's stderr.

    ``feed`` streams an input (e.g. NUT packets for ``-f nut -i pipe:0``) so that nothing
    intermediate is stored on disk. stderr goes to an anonymous temporary file (a pipe could fill
    up and deadlock both processes). When ``feed`` raises, ffmpeg is killed and the error
    propagates; when ffmpeg exits first (the feed then sees a broken pipe), its exit code and
    stderr are what is reported.

    Raises:
        ExternalToolError: non-zero exit, missing binary (127) or timeout (124).
    """
    args = [str(a) for a in argv]
    log.debug("running %s (fed on stdin)", args)
    with tempfile.TemporaryFile() as err:

        def stderr_text() -> str:
            err.seek(0)
            return err.read().decode(errors="replace")

        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        except FileNotFoundError as exc:
            raise ExternalToolError(
                args, 127, str(exc), what=what, hint="install ffmpeg or point VSRFLOW_FFMPEG at it"
            ) from exc
        assert proc.stdin is not None
        try:
            feed(proc.stdin)
            proc.stdin.close()
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            late = f"{what} (timed out after {timeout} s)"
            raise ExternalToolError(args, 124, stderr_text(), what=late) from None
        except Exception as exc:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            if not _is_broken_pipe(exc):
                proc.kill()  # the feed itself failed: its error is the reason
                proc.wait()
                raise
            # ffmpeg closed its input (it exited, or is exiting): its exit code and stderr say why.
            try:
                exited = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                exited = proc.wait()
            raise ExternalToolError(args, exited or 1, stderr_text(), what=what) from exc
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        stderr = stderr_text()
    if code != 0:
        raise ExternalToolError(args, code, stderr, what=what)
    return stderr


def _is_broken_pipe(exc: BaseException) -> bool:
    """Whether ``exc`` or anything in its cause/context chain is a broken pipe (e.g. PyAV wraps it)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, BrokenPipeError | ConnectionResetError):
            return True
        stack += [item.__cause__, item.__context__]
    return False
