"""Run one vsrflow stage in a child process: isolated, logged to a file, stoppable with Ctrl-C.

Children run ``sys.executable -m vsrflow ...`` (argument lists, never a shell) in their own process
group, so a terminal Ctrl-C reaches only the parent, which then forwards exactly one SIGINT to each
running child (a second signal could interrupt the child's own cleanup of partial files), waits for
it, and escalates to SIGTERM / SIGKILL only if it does not exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Seconds a child gets to clean up after SIGINT, then after SIGTERM.
INTERRUPT_GRACE_S = 20.0
TERMINATE_GRACE_S = 5.0


@dataclass(frozen=True)
class ChildResult:
    """How a child stage ended.

    Attributes:
        returncode: the child's exit status (0 success, 2 bad input, 1 failure, <0 killed by signal).
        seconds: wall-clock run time.
        error: one line explaining a failure (see :func:`error_line`); None on success.
        log: the file holding the child's stdout and stderr.
    """

    returncode: int
    seconds: float
    error: str | None
    log: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def error_line(output: str) -> str:
    """The line of a child's output that explains its failure.

    vsrflow prints its error as ``vsrflow: error: ...`` (possibly followed by an external tool's
    stderr tail); that line (without the ``vsrflow: error:`` prefix) is preferred over the raw last
    line, which may be an ffmpeg detail. Without such a line, the last non-empty line.
    """
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("vsrflow: "):
            # The stage name is prefixed by the caller; "vsrflow: error:" would only repeat it.
            return line.removeprefix("vsrflow: ").removeprefix("error: ")
    return lines[-1] if lines else "no output"


def vsrflow_argv(*args: str) -> list[str]:
    """The argument list that runs the vsrflow CLI of this interpreter (text logs for the log file)."""
    return [sys.executable, "-m", "vsrflow", "--log-format", "text", *args]


class ChildRunner:
    """Runs child stages and can stop all of them (thread-safe; one instance per workflow)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self.stopping = threading.Event()

    def run(self, argv: Sequence[str], log: Path) -> ChildResult:
        """Run ``argv`` to completion, output to ``log``; never raises for a failing child."""
        log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        if self.stopping.is_set():
            return ChildResult(130, 0.0, "not started: the run was interrupted", log)
        with log.open("wb") as fh:
            fh.write(("$ " + " ".join(argv) + "\n").encode())
            fh.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                process_group=0,  # own group: terminal Ctrl-C goes to the parent only (see stop_all)
            )
            with self._lock:
                self._live.add(proc)
            try:
                returncode = proc.wait()
            finally:
                with self._lock:
                    self._live.discard(proc)
        seconds = time.monotonic() - t0
        if returncode == 0:
            return ChildResult(0, seconds, None, log)
        text = log.read_text(encoding="utf-8", errors="replace")
        return ChildResult(returncode, seconds, error_line(text.split("\n", 1)[-1]), log)

    def stop_all(self) -> None:
        """Ask every running child to stop (SIGINT), then escalate; returns when all have exited."""
        self.stopping.set()
        with self._lock:
            procs = list(self._live)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            _wait_or_escalate(proc)


def _wait_or_escalate(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=INTERRUPT_GRACE_S)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
