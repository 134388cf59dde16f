"""``vsrflow serve``: ready only after a real invocation, loopback only, clean stop of the whole tree."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.servinglib import MODEL, free_ports, server_processes
from vsrflow.serving.client import EndpointClient

# Slow (real Multi Model Server (Java) endpoints): `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


def test_serve_warms_up_reports_ready_and_stops_cleanly(model_env: dict[str, str], tmp_path: Path) -> None:
    port = free_ports(1)
    state, ready, errors = tmp_path / "state", tmp_path / "ready", tmp_path / "stderr.txt"
    argv = [
        sys.executable, "-m", "vsrflow", "serve", "--model", MODEL, "--scale", "2", "--port", str(port),
        "--state-dir", str(state), "--ready-file", str(ready),
    ]  # fmt: skip
    err_fh = errors.open("w")  # a file, not a pipe nobody drains
    proc = subprocess.Popen(
        argv,
        env=model_env,
        stdout=subprocess.PIPE,
        stderr=err_fh,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the warm-up invocation has answered
        if not line.startswith(f"ready: http://127.0.0.1:{port} model {MODEL} x2 on CPU"):
            proc.kill()
            proc.wait(30)
            log = (state / "server.log").read_text() if (state / "server.log").exists() else ""
            raise AssertionError(f"{line!r}\n{errors.read_text()}\n{log[-3000:]}")
        assert ready.read_text().strip() == f"http://127.0.0.1:{port}"
        assert "first invocation" in line and (state / "server.log").is_file()
        out = EndpointClient("127.0.0.1", port).upscale_frames(np.zeros((1, 8, 8, 3), np.uint8))
        assert out.shape == (1, 16, 16, 3)
        assert server_processes(state), "the server tree runs under the state dir"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=300) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err_fh.close()
    assert not ready.exists(), "the ready file goes with the endpoint"
    deadline = time.monotonic() + 60
    while server_processes(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server_processes(state) == [], "no Java server or Python worker outlives `vsrflow serve`"
    assert not EndpointClient("127.0.0.1", port).ping()


def test_serve_refuses_bad_input_before_starting(model_env: dict[str, str], tmp_path: Path) -> None:
    proc = run_cli(["serve", "--model", "no-such-model", "--port", "9"], model_env, timeout=60)
    assert proc.returncode == 2 and "no-such-model" in proc.stderr
    env = dict(model_env, VSRFLOW_CACHE_DIR=str(tmp_path / "empty"))
    proc = run_cli(["serve", "--model", MODEL], env, timeout=60)
    assert proc.returncode == 2 and f"no weights for {MODEL}" in proc.stderr
    # A port Multi Model Server would refuse at start ("Invalid port number"): refused up front.
    proc = run_cli(["serve", "--model", MODEL, "--port", "40000"], model_env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert (
        "endpoint port 40000 is refused by Multi Model Server, which accepts ports up to 32766 only "
        "(use a port in 1024..32766 (default 8080))"
    ) in proc.stderr
    env = dict(model_env, VSRFLOW_ENDPOINT_BASE_PORT="32766")
    proc = run_cli(["serve", "--model", MODEL, "--gpu", "1"], env, timeout=60)
    assert proc.returncode == 2 and "endpoint port 32767 is refused by Multi Model Server" in proc.stderr


def test_server_tree_dies_with_a_killed_serve(model_env: dict[str, str], tmp_path: Path) -> None:
    """`vsrflow serve` killed with SIGKILL cannot clean up: the launcher's watchdog does."""
    port = free_ports(1)
    state = tmp_path / "state"
    argv = [
        sys.executable,
        "-m",
        "vsrflow",
        "serve",
        "--model",
        MODEL,
        "--port",
        str(port),
        "--state-dir",
        str(state),
    ]
    proc = subprocess.Popen(argv, env=model_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("ready:")
        assert server_processes(state)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while server_processes(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server_processes(state) == [], "the orphaned endpoint was not stopped"
    assert "parent" in (state / "server.log").read_text()
