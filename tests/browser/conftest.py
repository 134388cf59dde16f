"""Browser tests of the web page: Debian's chromium driven by Playwright (headless, no download).

``make browser-deps`` installs ``/usr/bin/chromium`` (``make unit``/``test``/``test-fast`` run it
first). Without it the tests fail, never skip, naming that fix: like the Slurm emulator's, a
missing tool must not pass CI unnoticed, whether or not the runner sets ``CI``.
Each server is the real ``vsrflow ui`` in a child process on a free loopback port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Where screenshots of the pages go when set (``make ui-screenshots``: docs/img).
SCREENSHOT_DIR = os.environ.get("UI_SCREENSHOT_DIR")


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make browser-deps` (the Debian package chromium)", pytrace=False
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class UiServer:
    url: str
    proc: subprocess.Popen[str]
    log: Path
    state_dir: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_ui(tmp: Path, env: dict[str, str], *args: str, timeout: float = 60.0) -> UiServer:
    """``vsrflow ui --port 0 ARGS`` in a child process; returns once it listens."""
    port_file = tmp / "port"
    log = tmp / "ui.log"
    state_dir = tmp / "ui-state"
    argv = [sys.executable, "-m", "vsrflow", "ui", "--port", "0", "--port-file", str(port_file)]
    argv += ["--state-dir", str(state_dir), *args]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while not port_file.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"vsrflow ui did not start:\n{log.read_text()}")
        time.sleep(0.1)
    port = int(port_file.read_text())
    return UiServer(f"http://127.0.0.1:{port}", proc, log, state_dir)


def stop_ui(server: UiServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=10)


def ffprobe(path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(proc.stdout))


def screenshot(page: Any, name: str) -> None:
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / name), full_page=True)
