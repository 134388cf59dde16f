"""``vsrflow serve`` supervises its Multi Model Server: a killed server is started again, on the
same port, and answers real invocations; too many deaths end it with the reason (exit 1)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.servinglib import ServeProcess, free_ports, server_processes

# Slow (real Multi Model Server (Java) endpoints, started several times): `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

#: Bound on one restart: backoff (1 s, then 2 s) + a cold start and warm-up on a busy 2-core host.
RESTART_BOUND_S = 180.0


def _kill_and_wait(serve: ServeProcess, role: str, ready_count: int) -> float:
    """SIGKILL the ``role`` process; seconds until the next ready line, which must answer."""
    victim = serve.role(role)
    t0 = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    ready_at = serve.wait_ready(ready_count, timeout=RESTART_BOUND_S)
    assert serve.answers(), "the restarted endpoint serves a real invocation"
    assert not victim.is_running() or victim.status() == "zombie"
    return ready_at - t0


def test_a_killed_server_or_launcher_is_restarted_until_the_limit(
    model_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_ports(1)
    state = tmp_path / "state"
    with ServeProcess(
        model_env, port, state, "--max-restarts", "2", "--ready-file", str(tmp_path / "ready")
    ) as serve:
        serve.wait_ready(1)
        assert serve.answers()
        java = serve.role("java")

        # The Java server SIGKILLed (OOM killer, a crash): the launcher returns, serve starts again.
        took = _kill_and_wait(serve, "java", 2)
        assert took < RESTART_BOUND_S
        assert serve.role("java").pid != java.pid
        assert "exited (code 0)" in serve.stderr, serve.stderr
        assert "restart 1;" in serve.lines[-1][1], serve.lines
        assert (tmp_path / "ready").read_text().strip() == f"http://127.0.0.1:{port}"

        # The launcher SIGKILLed: its Java server would live on holding the port; serve kills the
        # rest of the group and starts a fresh tree.
        old_java = serve.role("java")
        _kill_and_wait(serve, "launcher", 3)
        assert not old_java.is_running() or old_java.status() == "zombie"
        assert "was killed (signal 9)" in serve.stderr, serve.stderr
        assert len(server_processes(state)) >= 2  # one live tree: launcher + Java (+ worker)
        serve.role("launcher")

        # A third death within the window: more than --max-restarts 2, so serve gives up.
        os.kill(serve.role("java").pid, signal.SIGKILL)
        assert serve.proc is not None
        assert serve.proc.wait(RESTART_BOUND_S) == 1
        assert "restarted 2 time(s) within 300 s, giving up" in serve.stderr, serve.stderr
        assert not (tmp_path / "ready").exists(), "no ready file while nothing serves"
    deadline = time.monotonic() + 60
    while server_processes(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server_processes(state) == [], "nothing of the endpoint outlives vsrflow serve"


def test_sigterm_while_restarting_stops_at_once(model_env: dict[str, str], tmp_path: Path) -> None:
    port = free_ports(1)
    state = tmp_path / "state"
    with ServeProcess(model_env, port, state) as serve:
        serve.wait_ready(1)
        os.kill(serve.role("java").pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while "exited (code" not in serve.stderr:  # the supervisor saw it: in backoff or starting
            assert time.monotonic() < deadline, serve.stderr
            time.sleep(0.05)
        assert serve.proc is not None
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(60) != 0  # interrupted before it was ready again
    deadline = time.monotonic() + 60
    while server_processes(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server_processes(state) == []
