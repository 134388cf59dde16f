"""Fault injection against a real model endpoint: kill or hang its parts, print what happened.

``python -m tests.faults_endpoint`` starts one ``vsrflow serve`` (the real launcher and
supervisor, Multi Model Server on CPU, realesr-animevideov3 x2 from the test weight cache,
``VSRFLOW_TEST_CACHE``), injects each fault in turn and prints one table row per case:
(case, expected, observed). Exit status 1 when a case did not behave as expected.

Cases: a request longer than the health checks (must not restart), the Java server SIGKILLed,
the launcher SIGKILLed, MMS's Python worker SIGKILLed, the Java server hung (SIGSTOP), one death
more than ``--max-restarts``, and the port rules (a port above Multi Model Server's limit, a port
in use), which must be refused before anything starts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.servinglib import MODEL, ServeProcess, free_ports, server_processes
from vsrflow.serving.client import EndpointClient

REPO = Path(__file__).resolve().parent.parent
BOUND_S = 240.0


def _env() -> dict[str, str]:
    cache = Path(os.environ.get("VSRFLOW_TEST_CACHE") or REPO / ".cache" / "test")
    env = dict(os.environ, VSRFLOW_CACHE_DIR=str(cache / "vsrflow"))
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("VSRFLOW_DEVICE", None)
    subprocess.run(
        [sys.executable, "-m", "vsrflow", "models", "import-ncnn", MODEL],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def _wait(check: Callable[[], bool], timeout: float = BOUND_S) -> float | None:
    """Seconds until ``check()`` is true, or None after ``timeout``."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(0.1)
    return time.monotonic() - t0


def run() -> list[tuple[str, str, str, bool]]:
    env = _env()
    rows: list[tuple[str, str, str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="vsrflow-faults-") as tmp:
        port = free_ports(1)
        state = Path(tmp) / "state"
        with ServeProcess(env, port, state, "--max-restarts", "3") as serve:
            serve.wait_ready(1, BOUND_S)

            # Busy is not hung: /ping is the Java frontend's, answered while the worker runs a long
            # request, so a request longer than the health checks never triggers a restart.
            frames = np.random.default_rng(0).integers(0, 256, (8, 256, 256, 3), np.uint8)
            client = EndpointClient("127.0.0.1", port, retries=0, read_timeout=BOUND_S)
            t0 = time.monotonic()
            shape = client.upscale_frames(frames).shape
            took_s = time.monotonic() - t0
            rows.append(
                (
                    f"one request longer than 3 health checks ({took_s:.0f} s)",
                    "answered, no restart",
                    f"answered {shape}, {len(serve.ready_times()) - 1} restart(s)",
                    shape == (8, 512, 512, 3) and len(serve.ready_times()) == 1 and took_s > 15,
                )
            )

            def restart_case(case: str, role: str, sig: int, ready: int) -> None:
                victim = serve.role(role)
                t0 = time.monotonic()
                os.kill(victim.pid, sig)
                try:
                    at = serve.wait_ready(ready, BOUND_S)
                    ok = serve.answers() and serve.role("java").pid != (victim.pid if role == "java" else -1)
                    seen = f"restarted, answered after {at - t0:.1f} s"
                except AssertionError as err:
                    ok, seen = False, f"no restart: {str(err).splitlines()[0]}"
                rows.append((case, "restarted on its port, answers again", seen, ok))

            restart_case("Java server SIGKILLed", "java", signal.SIGKILL, 2)
            restart_case("launcher (mms_main) SIGKILLed", "launcher", signal.SIGKILL, 3)

            worker = serve.role("worker")
            t0 = time.monotonic()
            os.kill(worker.pid, signal.SIGKILL)
            took = _wait(lambda: not worker.is_running() or worker.status() == "zombie", 30)
            took = _wait(serve.answers)
            ok = took is not None and len(serve.ready_times()) == 3
            restarts = len(serve.ready_times()) - 3
            seen = (
                f"answered after {time.monotonic() - t0:.1f} s, {restarts} vsrflow restart(s)"
                if took is not None
                else "never answered again"
            )
            rows.append(("MMS Python worker SIGKILLed", "MMS starts a new worker, answers again", seen, ok))

            restart_case("Java server hung (SIGSTOP)", "java", signal.SIGSTOP, 4)

            victim = serve.role("java")
            os.kill(victim.pid, signal.SIGKILL)
            assert serve.proc is not None
            try:
                code: int | None = serve.proc.wait(BOUND_S)
            except subprocess.TimeoutExpired:
                code = None
            gone = _wait(lambda: not server_processes(state), 60) is not None
            gave_up = "giving up" in serve.stderr
            rows.append(
                (
                    "4th death within the window (--max-restarts 3)",
                    "gives up: exit 1 with the reason, nothing left running",
                    f"exit {code}, 'giving up' in stderr: {gave_up}, processes left: {not gone}",
                    code == 1 and gave_up and gone,
                )
            )

        for case, argv_port, holder, rule in (
            ("port 40000", 40000, False, "accepts ports up to 32766 only"),
            ("port already in use", free_ports(1), True, "already in use"),
        ):
            sock = socket.socket()
            if holder:
                sock.bind(("127.0.0.1", argv_port))
                sock.listen()
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "vsrflow", "serve", "--model", MODEL, "--port", str(argv_port)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
            finally:
                sock.close()
            message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
            rows.append(
                (
                    case,
                    "refused up front (exit 2), the message names the rule",
                    f"exit {proc.returncode}: {message}",
                    proc.returncode == 2 and rule in message,
                )
            )
    return rows


def main() -> int:
    rows = run()
    widths = [max(len(r[i]) for r in [("case", "expected", "observed", True), *rows]) for i in range(3)]
    line = " | ".join(f"{{:{w}}}" for w in widths)
    print(line.format("case", "expected", "observed") + " | ok")
    print("-|-".join("-" * w for w in widths) + "-|---")
    for case, expected, observed, ok in rows:
        print(line.format(case, expected, observed) + f" | {'yes' if ok else 'NO'}")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
