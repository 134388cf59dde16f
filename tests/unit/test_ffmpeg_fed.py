"""run_ffmpeg_fed: a subprocess fed on stdin; errors from either side are reported, nothing hangs."""

from __future__ import annotations

import sys
import time
from typing import IO

import pytest

from vsrflow.errors import ExternalToolError
from vsrflow.media.ffmpeg import run_ffmpeg_fed

PY = sys.executable


def test_feed_reaches_stdin_and_stderr_is_returned() -> None:
    script = (
        "import sys; d = sys.stdin.buffer.read(); sys.stderr.write(str(len(d))); sys.exit(d != b'x' * 300000)"
    )
    assert run_ffmpeg_fed([PY, "-c", script], lambda pipe: pipe.write(b"x" * 300000)) == "300000"


def test_tool_exiting_early_reports_its_code_and_stderr() -> None:
    script = "import sys; sys.stderr.write('bad header\\n'); sys.exit(3)"

    def feed(pipe: IO[bytes]) -> None:
        time.sleep(0.5)  # the tool has exited by now
        for _ in range(1000):
            pipe.write(b"y" * 65536)  # broken pipe long before the end

    with pytest.raises(ExternalToolError, match="bad header") as info:
        run_ffmpeg_fed([PY, "-c", script], feed, what="muxing")
    assert info.value.returncode == 3


def test_feed_error_kills_the_tool_and_propagates() -> None:
    script = "import sys, time; sys.stdin.buffer.read(); time.sleep(60)"
    t0 = time.monotonic()

    def feed(pipe: IO[bytes]) -> None:
        pipe.write(b"z")
        raise ValueError("chunk 2 has 24 frames, the plan 25")

    with pytest.raises(ValueError, match="chunk 2"):
        run_ffmpeg_fed([PY, "-c", script], feed)
    assert time.monotonic() - t0 < 30


def test_missing_binary_is_127() -> None:
    with pytest.raises(ExternalToolError) as info:
        run_ffmpeg_fed(["/nonexistent/ffmpeg"], lambda pipe: None)
    assert info.value.returncode == 127


def test_timeout_is_124() -> None:
    script = "import time; time.sleep(30)"
    with pytest.raises(ExternalToolError) as info:
        run_ffmpeg_fed([PY, "-c", script], lambda pipe: None, timeout=0.5)
    assert info.value.returncode == 124
