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

:class:`Supervisor` keeps one endpoint up (``vsrflow serve``): a server that exits or is killed,
or stops answering ``/ping``, is started again on the same port and state directory after a
backoff, until :class:`RestartPolicy` says it died too often (:class:`GaveUp`, exit 1; on a
cluster node systemd then restarts the whole ``vsrflow serve``).
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from vsrflow.config import ENDPOINT_PORT_HINT, privileged_port_rule
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
        rule = privileged_port_rule(self.spec.port)
        if rule is not None:
            raise InputError(f"endpoint port {self.spec.port} {rule}", hint=ENDPOINT_PORT_HINT)
        if not socket_free(self.client.host, self.spec.port):
            raise InputError(
                f"endpoint port {self.spec.port} on {self.client.host} is already in use: one server per "
                "port (Multi Model Server would fail to bind it)",
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

    def restart(self, grace: float = 10.0) -> None:
        """Stop whatever is left of the process tree, then :meth:`start` again (same port, state).

        The group is signalled even when its leader is gone: a SIGKILLed launcher leaves the Java
        server running (and holding the port) in the group. MMS's pid file is removed, so the new
        server never mistakes a dead one's pid for itself.
        """
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            self.stop(grace)
            self.proc = None
        (self.state_dir / "tmp" / ".model_server.pid").unlink(missing_ok=True)
        self.start()

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


@dataclass(frozen=True)
class RestartPolicy:
    """When :class:`Supervisor` starts a dead endpoint again, and when it gives up.

    Attributes:
        max_restarts: restarts allowed within ``window_s``; the next death gives up (0: never
            restart, the first death gives up).
        window_s: seconds a restart counts against ``max_restarts`` (a server that stays up that
            long has a clean slate again).
        backoff_s: delay before the first restart of a window; doubled for each restart in it,
            at most ``backoff_max_s`` (a crash loop does not spin).
        health_interval_s: seconds between ``/ping`` checks of a running server;
            ``health_failures`` failed checks in a row count as a death (a hung server).
    """

    max_restarts: int = 5
    window_s: float = 300.0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    health_interval_s: float = 5.0
    health_failures: int = 3

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise InputError(f"max_restarts {self.max_restarts} must be >= 0", hint="use 0 to never restart")
        if self.window_s <= 0 or self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            raise InputError(
                f"restart window {self.window_s:g} s / backoff {self.backoff_s:g}..{self.backoff_max_s:g} s",
                hint="a positive window and 0 <= backoff <= backoff max",
            )
        if self.health_interval_s <= 0 or self.health_failures < 1:
            raise InputError("health checks need a positive interval and at least 1 failure")

    def delay(self, recent: int) -> float:
        """Seconds to wait before a restart when ``recent`` restarts happened within the window."""
        return float(min(self.backoff_max_s, self.backoff_s * 2.0**recent))


class GaveUp(VsrError):
    """The endpoint died more often than :class:`RestartPolicy` allows."""


class Supervisor:
    """Keep ``endpoint`` up until told to stop (see the module docstring).

    Args:
        endpoint: not started yet; it is started, watched and restarted in place.
        policy: restart limits and backoff.
        ready_timeout: seconds each start may take until warm (:meth:`Endpoint.wait_ready`).
        on_ready: called after every start that became warm (``restarts``: how many restarts so
            far); on_down: called when the server died, before the backoff (reason text).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        policy: RestartPolicy,
        *,
        ready_timeout: float,
        on_ready: Callable[[WarmUp, int], None] | None = None,
        on_down: Callable[[str], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.policy = policy
        self.ready_timeout = ready_timeout
        self.on_ready = on_ready or (lambda warm, restarts: None)
        self.on_down = on_down or (lambda reason: None)
        #: True while the endpoint is warm and watched (a stop request is then taken at once).
        self.serving = False
        self.restarts = 0
        self._recent: list[float] = []
        # Health pings must not wait the client's hour-long read timeout on a hung server.
        timeout = max(1.0, policy.health_interval_s)
        self._health = EndpointClient(
            host=endpoint.client.host,
            port=endpoint.spec.port,
            connect_timeout=timeout,
            read_timeout=timeout,
            retries=0,
        )

    def run(self, stopping: Callable[[], bool]) -> None:
        """Start the endpoint and keep it up until ``stopping()`` is true; returns then.

        Raises:
            GaveUp: it died more than ``policy.max_restarts`` times within ``policy.window_s``.
            VsrError/InputError: the first start failed (a bad port, no weights...): never retried,
                the first start is the configuration's test.
        """
        self.endpoint.start()
        self._ready(self.endpoint.wait_ready(self.ready_timeout))
        while True:
            reason = self._watch(stopping)
            if reason is None:
                return
            self.serving = False
            self.on_down(reason)
            now = time.monotonic()
            self._recent = [t for t in self._recent if now - t < self.policy.window_s]
            if len(self._recent) >= self.policy.max_restarts:
                raise GaveUp(
                    f"endpoint {self.endpoint.url} {reason}; it was restarted {len(self._recent)} time(s) "
                    f"within {self.policy.window_s:g} s, giving up\n{self.endpoint.log_tail()}",
                    hint=f"see {self.endpoint.log_path}",
                )
            delay = self.policy.delay(len(self._recent))
            self._recent.append(now)
            self.restarts += 1
            log.warning(
                "endpoint %s %s; restart %d in %.1f s", self.endpoint.url, reason, self.restarts, delay
            )
            if self.endpoint.alive():  # hung, not dead: it will not honour SIGTERM either
                self.endpoint.kill()
            time.sleep(delay)
            if stopping():
                return
            try:
                self.endpoint.restart()
                self._ready(self.endpoint.wait_ready(self.ready_timeout))
            except VsrError as err:
                # Counted as the next death: the loop watches a stopped endpoint and decides again.
                log.warning("endpoint %s: restart failed: %s", self.endpoint.url, err)
                self.endpoint.stop()

    def _ready(self, warm: WarmUp) -> None:
        self.serving = True
        self.on_ready(warm, self.restarts)

    def _watch(self, stopping: Callable[[], bool]) -> str | None:
        """Wait until the server dies (the reason) or ``stopping()`` (None)."""
        failures = 0
        next_check = time.monotonic() + self.policy.health_interval_s
        while not stopping():
            proc = self.endpoint.proc
            if proc is None:
                return "could not be started again"
            code = proc.poll()
            if code is not None:
                return f"exited (code {code})" if code >= 0 else f"was killed (signal {-code})"
            if time.monotonic() >= next_check:
                failures = 0 if self._health.ping() else failures + 1
                if failures >= self.policy.health_failures:
                    return f"did not answer /ping {failures} times in a row"
                next_check = time.monotonic() + self.policy.health_interval_s
            time.sleep(0.2)
        return None
