"""Start, warm and stop one model endpoint (Multi Model Server + the SageMaker inference toolkit).

Several endpoints run on one host without colliding: each instance has
its own state directory holding

* ``tmp/``: ``TMPDIR``/``TEMP`` (MMS writes its pid file ``$TMPDIR/.model_server.pid`` there;
  a shared one makes a second server think the first is itself);
* ``mms.properties``: the server config (the toolkit's default is the host-wide
  ``/etc/sagemaker-mms.properties``);
* ``ml/model/endpoint.json``: ``SAGEMAKER_BASE_DIR=<state>/ml``, read by ``model_fn``;
* ``logs/`` (``LOG_LOCATION``) and ``server.log`` (stdout and stderr of the whole tree).

The server runs in its own session (``start_new_session``): :meth:`Endpoint.stop` signals the
whole process group (launcher, Java frontend, Python worker), TERM first and KILL after a grace
period, so no worker is orphaned. ``/ping`` answers before ``model_fn`` has run, so
:meth:`Endpoint.wait_ready` also sends one real frame batch through the model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from vsrflow.errors import InputError, VsrError
from vsrflow.serving.client import EndpointClient, socket_free, wait_until_up
from vsrflow.serving.spec import EndpointSpec

log = logging.getLogger(__name__)

#: Side of the frame batch sent through the model before an endpoint reports ready.
WARM_UP_SIDE = 32


@dataclass(frozen=True)
class WarmUp:
    """How long the endpoint took: to answer /ping, and to answer the first real invocation."""

    ping_seconds: float
    first_invocation_seconds: float


class Endpoint:
    """One endpoint process tree. Use as a context manager, or call start/wait_ready/stop.

    Args:
        spec: what it serves (model, scale, device, weights cache, port, GPU).
        host: address to bind (127.0.0.1 by default: reachable from this node only).
        state_dir: per-instance directory (created; default: a new temporary directory).
        response_timeout: seconds MMS lets one request run before it recycles the worker.
        extra_env: extra environment variables for the server (tests, container overrides).
    """

    def __init__(
        self,
        spec: EndpointSpec,
        *,
        host: str = "127.0.0.1",
        state_dir: Path | None = None,
        response_timeout: float = 3600.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.host = host
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix=f"vsrflow-endpoint-{spec.port}-"))
        self.response_timeout = response_timeout
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = EndpointClient(host=self._client_host(host), port=spec.port, retries=0)

    @staticmethod
    def _client_host(host: str) -> str:
        return "127.0.0.1" if host in ("0.0.0.0", "") else host  # a bind-all is reached locally

    @property
    def url(self) -> str:
        return self.client.url

    @property
    def log_path(self) -> Path:
        return self.state_dir / "server.log"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "mms.properties"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        tmp = self.state_dir / "tmp"
        env.update(
            {
                "TMPDIR": str(tmp),
                "TEMP": str(tmp),
                "SAGEMAKER_BASE_DIR": str(self.state_dir / "ml"),
                "SAGEMAKER_BIND_TO_PORT": str(self.spec.port),
                "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
                "SAGEMAKER_MODEL_SERVER_TIMEOUT": str(max(1, int(self.response_timeout))),
                "SAGEMAKER_STARTUP_TIMEOUT": "120",
                "LOG_LOCATION": str(self.state_dir / "logs"),
                "PYTHONUNBUFFERED": "1",
                # The toolkit runs `multi-model-server` from PATH: the one next to this Python.
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)]),
            }
        )
        # One GPU per endpoint: inside, the endpoint's GPU is cuda:0 (EndpointSpec.device).
        env["CUDA_VISIBLE_DEVICES"] = "" if self.spec.gpu is None else str(self.spec.gpu)
        # MMS sets OMP_NUM_THREADS=1 in its worker when it is unset, which made torch's CPU work
        # (inference on a CPU endpoint, pre/post-processing on a GPU one) run on one core: a 60 s
        # chunk took 94 s through the endpoint against 52 s in-process on 2 cores. Give the worker
        # what an in-process task would use (an explicit OMP_NUM_THREADS from the caller wins).
        env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Prepare the state directory and start the server (returns at once)."""
        if self.proc is not None:
            raise VsrError(f"endpoint {self.url} is already started")
        if not socket_free(self.client.host, self.spec.port):
            raise InputError(
                f"port {self.spec.port} on {self.client.host} is already in use",
                hint="pick another --port, or stop the endpoint that holds it",
            )
        for sub in ("tmp", "logs"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        self.spec.write(self.state_dir / "ml" / "model")
        argv = [
            sys.executable, "-m", "vsrflow.serving.mms_main",
            "--config", str(self.config_path),
            "--host", self.host,
            "--gpus", "0" if self.spec.gpu is None else "1",
        ]  # fmt: skip
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.state_dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("endpoint %s starting (pid %d, state %s)", self.url, self.proc.pid, self.state_dir)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 120.0) -> WarmUp:
        """Wait for /ping, then run one real invocation through the model (``model_fn`` included).

        Raises:
            VsrError: the server exited, or did not become ready within ``timeout`` s (the
                message carries the tail of ``server.log``).
        """
        t0 = time.monotonic()
        try:
            wait_until_up(self.client, timeout, alive=self.alive)
            ping = time.monotonic() - t0
            frames = np.zeros((1, WARM_UP_SIDE, WARM_UP_SIDE, 3), np.uint8)
            warm = EndpointClient(
                host=self.client.host,
                port=self.spec.port,
                read_timeout=max(1.0, timeout),
                retries=40,
                backoff=0.1,
                backoff_max=1.0,
            )
            out = warm.upscale_frames(frames)
            expected = round(WARM_UP_SIDE * self.spec.scale)
            if out.shape[1:3] != (expected, expected):
                raise VsrError(f"endpoint {self.url}: warm-up returned shape {out.shape}")
        except VsrError as err:
            raise VsrError(f"endpoint {self.url} did not become ready: {err}\n{self.log_tail()}") from err
        return WarmUp(ping_seconds=ping, first_invocation_seconds=time.monotonic() - t0 - ping)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(text[-lines:])

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL the whole process group at once (a crash) and wait until every member is dead."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            _wait_group_gone(self.proc.pid, timeout)
            self._wait_port_released(timeout)

    def terminate(self) -> None:
        """Send SIGTERM to the process group and return (stop several endpoints at once)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, grace: float = 10.0) -> int | None:
        """TERM the process group, KILL it after ``grace`` s; returns the launcher's exit code."""
        if self.proc is None:
            return None
        pgid = self.proc.pid
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
        # The Java server and its Python worker share the group; make sure none outlives us (and
        # that the port is free again when this returns: a dying JVM still holds its socket).
        if not _wait_group_gone(pgid, grace):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            _wait_group_gone(pgid, grace)
        self._wait_port_released(grace)
        code = self.proc.wait()
        log.info("endpoint %s stopped (%s)", self.url, code)
        return code

    def _wait_port_released(self, timeout: float) -> None:
        # A SIGKILLed JVM shows as a zombie while its other threads still tear down (and hold the
        # listening socket): the port is free only once connections are refused.
        deadline = time.monotonic() + timeout
        while not socket_free(self.client.host, self.spec.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> Endpoint:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    import psutil

    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return members


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait until process group ``pgid`` has no live member; False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
