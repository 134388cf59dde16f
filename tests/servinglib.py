"""Helpers for the model endpoint tests: start real endpoints (Multi Model Server) and prepare jobs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import psutil

from vsrflow.errors import VsrError
from vsrflow.localstack.slurm import free_port_block
from vsrflow.serving.client import EndpointClient
from vsrflow.serving.server import Endpoint
from vsrflow.serving.spec import EndpointSpec
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.spec import EncoderSpec, JobSpec, file_identity

MODEL = "realesr-animevideov3"
SCALE = 2.0
READY_TIMEOUT = 120.0


def free_ports(count: int) -> int:
    """First of ``count`` consecutive free ports."""
    return free_port_block(count)


def endpoint(
    cache_dir: Path,
    port: int,
    state_dir: Path,
    *,
    roots: Sequence[Path] = (),
    read_timeout: float = 600.0,
) -> Endpoint:
    """A CPU endpoint serving :data:`MODEL` at :data:`SCALE` from the test weight cache.

    ``roots``: the directories requests may name (``VSRFLOW_ENDPOINT_ALLOWED_ROOTS``; tests pass
    pytest's base temp dir); empty: the endpoint's default (``<cache_dir>/jobs``).
    """
    spec = EndpointSpec(model=MODEL, scale=SCALE, device="cpu", cache_dir=cache_dir, port=port)
    env = {"VSRFLOW_ENDPOINT_ALLOWED_ROOTS": os.pathsep.join(map(str, roots))} if roots else {}
    return Endpoint(spec, state_dir=state_dir, response_timeout=read_timeout, extra_env=env)


@contextlib.contextmanager
def running(endpoints: Sequence[Endpoint]) -> Iterator[Sequence[Endpoint]]:
    """Start every endpoint at once, wait until each is warm, stop them all on exit."""
    try:
        for ep in endpoints:
            ep.start()
        for ep in endpoints:
            ep.wait_ready(READY_TIMEOUT)
        yield endpoints
    finally:
        for ep in endpoints:
            ep.terminate()
        for ep in endpoints:
            ep.stop()


def server_processes(state_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line names ``state_dir`` (Java server, launcher, worker)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and any(str(state_dir) in a for a in proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def prepare_job(root: Path, clip: Path, *, chunk_frames: int = 25, codec: str = "ffv1") -> JobDir:
    """A job for ``clip`` at :data:`MODEL` x :data:`SCALE`, extracted (planned) and ready for chunks."""
    root.mkdir(parents=True, exist_ok=True)
    spec = JobSpec(
        source=str(clip.resolve()),
        destination=str((root / "out.mkv").resolve()),
        model=MODEL,
        scale=SCALE,
        encoder=EncoderSpec(codec=codec, crf=18, preset="medium", pix_fmt=None),
        chunk_frames=chunk_frames,
        chunk_seconds=None,
    )
    job = JobDir.create(root, spec, spec.job_id(file_identity(clip.resolve())))
    stages.extract(job)
    return job


#: Marker of Multi Model Server's Java frontend on its command line (the toolkit's MMS_NAMESPACE).
MMS_JAVA = "com.amazonaws.ml.mms.ModelServer"


class ServeProcess:
    """`vsrflow serve` (the real launcher and supervisor) in a child process.

    Its stdout lines are collected with the monotonic time each arrived, so a test can wait for
    the n-th ``ready:`` line and say how long a restart took; stderr goes to a file.
    """

    def __init__(self, env: dict[str, str], port: int, state_dir: Path, *extra: str) -> None:
        self.env, self.port, self.state_dir = env, port, state_dir
        self.argv = [
            sys.executable, "-m", "vsrflow", "serve", "--model", MODEL, "--scale", str(SCALE),
            "--port", str(port), "--state-dir", str(state_dir), *extra,
        ]  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self.stderr_path = state_dir.parent / f"{state_dir.name}.stderr"
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServeProcess:
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        self._err = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        # Whatever happened, leave no server behind (a failed test must not hold the port).
        for leftover in server_processes(self.state_dir):
            with contextlib.suppress(psutil.Error):
                leftover.kill()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def ready_times(self) -> list[float]:
        return [t for t, line in self.lines if line.startswith("ready: ")]

    def wait_ready(self, count: int, timeout: float = 240.0) -> float:
        """Monotonic time of the ``count``-th ready line (AssertionError with the logs if none)."""
        deadline = time.monotonic() + timeout
        while len(self.ready_times()) < count:
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.state_dir / "server.log").read_text(errors="replace")[-3000:]
                raise AssertionError(
                    f"no ready line #{count} (exit {self.proc.poll()})\n{self.lines}\n{self.stderr}\n{log}"
                )
            time.sleep(0.05)
        return self.ready_times()[count - 1]

    def role(self, role: str) -> psutil.Process:
        """The live process of ``role``: ``java`` (the MMS frontend), ``launcher``
        (``vsrflow.serving.mms_main``, the group leader) or ``worker`` (the Python worker process
        that runs the model: MMS's worker forks it to serve its socket)."""
        marks = {"java": MMS_JAVA, "launcher": "vsrflow.serving.mms_main", "worker": "model_service_worker"}
        found = [p for p in server_processes(self.state_dir) if any(marks[role] in a for a in p.cmdline())]
        if role == "worker":  # the worker forks the process that serves its socket: that one runs the model
            pids = {p.pid for p in found}
            found = [p for p in found if p.ppid() in pids] or found
        assert len(found) == 1, (role, [p.cmdline() for p in found])
        return found[0]

    def answers(self) -> bool:
        """True when a real invocation through the model comes back (one attempt, no retries)."""
        client = EndpointClient("127.0.0.1", self.port, retries=0, read_timeout=300)
        try:
            out = client.upscale_frames(np.zeros((1, 8, 8, 3), np.uint8))
        except VsrError:
            return False
        return bool(out.shape == (1, 16, 16, 3))
