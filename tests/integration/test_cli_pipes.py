"""The CLI at the end of a pipe: a reader that leaves (``vsrflow probe x | head``) ends the command
quietly, as it ends ``cat``; exit 141 (128 + SIGPIPE), no "internal error" line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mediagen import make_video


def _run_into_closed_pipe(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with stdout on a pipe whose reading end is already closed (the reader is gone)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "vsrflow", *argv],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("command", ["probe", "models list"])
def test_a_reader_that_leaves_ends_the_command_quietly(
    command: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    argv = command.split()
    if command == "probe":
        argv.append(str(make_video(tmp_path / "in.mp4", frames=3)))
    proc = _run_into_closed_pipe(argv, cli_env)
    assert proc.returncode == 141, proc.stderr
    assert b"internal error" not in proc.stderr and b"Traceback" not in proc.stderr
    assert b"BrokenPipe" not in proc.stderr


def test_head_gets_the_first_lines(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The real shell pipeline: `vsrflow probe x | head -n 2` prints two lines and no error."""
    src = make_video(tmp_path / "in.mp4", frames=3)
    vsrflow = f"{sys.executable} -m vsrflow"
    proc = subprocess.run(
        ["bash", "-c", f'{vsrflow} probe "$1" | head -n 2', "sh", str(src)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2
    assert "internal error" not in proc.stderr
