"""The endpoint client: what ``vsrflow job upscale-chunk`` runs when endpoints are configured.

* :class:`EndpointClient` talks HTTP to one endpoint (stdlib ``http.client``: no extra dependency)
  with a connect timeout and a separate read timeout, and retries with exponential backoff (and
  jitter, so a whole array does not retry in step) while the endpoint is unreachable, warming or
  restarting: connection refused/reset, a response cut off, 502/503/504.
  4xx answers are :class:`~vsrflow.errors.InputError` (never retried), 500 a
  :class:`~vsrflow.errors.VsrError`. A 200 without the expected stats is an error, never success.
* :func:`endpoint_port` picks the endpoint of this task's GPU: ``base_port + i`` where ``i`` is the
  first GPU index in ``SLURM_STEP_GPUS``/``SLURM_JOB_GPUS``/``CUDA_VISIBLE_DEVICES`` (0 when none is set).
* :func:`endpoint_runner` is the :data:`vsrflow.workflow.job.stages.ChunkRunner` the CLI wires into
  :func:`~vsrflow.workflow.job.stages.upscale_chunk`; with ``fallback`` set it runs the chunk in-process
  when the endpoint stays unreachable after every retry (and only then).

This module imports no torch.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vsrflow.config import EndpointSettings, Settings
from vsrflow.errors import InputError, TransientError, VsrError
from vsrflow.serving import protocol
from vsrflow.serving.protocol import ChunkRequest

log = logging.getLogger(__name__)

#: Statuses that mean "not now": the server is starting, its worker restarting, or a proxy failed.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass
class EndpointClient:
    """One endpoint at ``http://host:port``.

    Attributes:
        connect_timeout: seconds to open the TCP connection.
        read_timeout: seconds to wait for the response (one whole chunk on the server).
        retries: extra attempts after the first for transient failures.
        backoff, backoff_max: the first delay and the cap (seconds); delays double per retry,
            times a jitter factor in [0.75, 1.25).
    """

    host: str
    port: int
    connect_timeout: float = 5.0
    read_timeout: float = 3600.0
    retries: int = 8
    backoff: float = 0.5
    backoff_max: float = 15.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    attempts: int = field(default=0, init=False)

    @classmethod
    def from_settings(cls, settings: EndpointSettings, port: int) -> EndpointClient:
        return cls(
            host=settings.host,
            port=port,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            retries=settings.retries,
            backoff=settings.backoff,
            backoff_max=settings.backoff_max,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- one attempt -------------------------------------------------------------------------

    def request_once(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        """(status, content type, body) of one HTTP exchange; TransientError when the server is
        unreachable or the exchange was cut off (both worth a retry)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        try:
            try:
                conn.connect()
            except OSError as err:
                raise TransientError(f"endpoint {self.url}: cannot connect: {err}") from err
            assert conn.sock is not None
            conn.sock.settimeout(self.read_timeout)
            try:
                conn.request(method, path, body=body, headers=dict(headers or {}))
                resp = conn.getresponse()
                data = resp.read()
            except TimeoutError as err:
                raise TransientError(
                    f"endpoint {self.url}: no response within {self.read_timeout:g} s",
                    hint="raise VSRFLOW_ENDPOINT_READ_TIMEOUT for long chunks",
                ) from err
            except (OSError, http.client.HTTPException) as err:
                raise TransientError(f"endpoint {self.url}: connection lost: {err!r}") from err
            return resp.status, resp.getheader("Content-Type") or "", data
        finally:
            conn.close()

    def ping(self) -> bool:
        """True when ``GET /ping`` answers 200 (the server is up; the model may still be loading)."""
        try:
            status, _, _ = self.request_once("GET", "/ping")
        except TransientError:
            return False
        return status == 200

    # ---- with retries ------------------------------------------------------------------------

    def invoke(self, body: bytes, content_type: str, accept: str, *, what: str) -> tuple[str, bytes]:
        """``POST /invocations`` with retries; returns (content type, body) of the 200 answer.

        Raises:
            InputError: a 4xx answer (the request is wrong; the reason names it).
            VsrError: a 500 answer (the endpoint failed; its reason) or another status.
            TransientError: still unreachable/busy after every retry.
        """
        headers = {"Content-Type": content_type, "Accept": accept}
        last: TransientError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.backoff * 2 ** (attempt - 1), self.backoff_max)
                delay *= 0.75 + 0.5 * random.random()  # jitter, not crypto
                log.warning("%s: %s; retry %d/%d in %.1f s", what, last, attempt, self.retries, delay)
                self.sleep(delay)
            self.attempts += 1
            try:
                status, ctype, data = self.request_once("POST", "/invocations", body, headers)
            except TransientError as err:
                last = err
                continue
            if status == 200:
                return ctype, data
            reason = _reason(data)
            if status in RETRY_STATUSES:
                last = TransientError(f"endpoint {self.url}: {status} {reason}")
                continue
            if 400 <= status < 500:
                raise InputError(f"{what}: endpoint {self.url} refused the request ({status}): {reason}")
            raise VsrError(f"{what}: endpoint {self.url} failed ({status}): {reason}")
        assert last is not None
        raise TransientError(
            f"{what}: endpoint {self.url} unreachable after {self.retries + 1} attempts: {last.message}",
            hint="start it (`vsrflow serve --model ID --port P --gpu N`) or set VSRFLOW_ENDPOINT_FALLBACK=1",
        )

    def upscale_chunk(self, request: ChunkRequest) -> dict[str, Any]:
        """Send a chunk request; returns the endpoint's stats (frames, seconds, fps, device, ...)."""
        what = f"chunk {request.index} of {request.job_dir}"
        body = json.dumps(request.to_json()).encode("utf-8")
        _, data = self.invoke(body, protocol.JSON, protocol.JSON, what=what)
        try:
            stats = json.loads(data)
        except ValueError as err:
            raise VsrError(f"{what}: endpoint {self.url} answered 200 with a non-JSON body") from err
        if not isinstance(stats, dict) or not isinstance(stats.get("frames"), int):
            raise VsrError(f"{what}: endpoint {self.url} answered 200 without stats: {data[:200]!r}")
        return stats

    def upscale_frames(self, frames: np.ndarray) -> np.ndarray:
        """Upscale a uint8 (N, H, W, 3) RGB batch on the endpoint."""
        body = protocol.encode_npy(frames)
        ctype, data = self.invoke(body, protocol.NPY, protocol.NPY, what=f"{len(frames)} frames")
        if protocol.media_type(ctype) != protocol.NPY:
            raise VsrError(f"endpoint {self.url} answered {ctype or 'no content type'} to a frame batch")
        return protocol.decode_npy(data)


def _reason(data: bytes) -> str:
    try:
        obj = json.loads(data)
        if isinstance(obj, dict) and "error" in obj:
            return str(obj["error"])
        if isinstance(obj, dict) and "message" in obj:  # MMS's own errors (no worker, 404, ...)
            return str(obj["message"])
    except ValueError:
        pass
    text = data.decode("utf-8", "replace").strip().splitlines()
    return text[0][:300] if text else "(empty body)"


def gpu_index(env: Mapping[str, str]) -> int:
    """Index of this task's GPU on its node (0 when nothing says): picks the endpoint port.

    Order: ``SLURM_STEP_GPUS``, ``SLURM_JOB_GPUS``, then ``CUDA_VISIBLE_DEVICES``; the first entry
    of the first one set. Slurm's ``*_GPUS`` hold the node's global GPU ids even when
    ``ConstrainDevices=yes`` renumbers ``CUDA_VISIBLE_DEVICES`` from 0 in every job (cgroups), so
    two tasks on one multi-GPU node still reach their own endpoints. Endpoints are numbered the same
    way (``vsrflow serve --gpu N`` on port base + N, N in PCI bus order as Slurm and nvidia-smi count).
    """
    for name in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"):
        raw = (env.get(name) or "").strip()
        if not raw:
            continue
        first = raw.split(",")[0].strip()
        if not first.isdigit():
            raise InputError(
                f"{name}={raw!r}: cannot map {first!r} to an endpoint port",
                hint="use GPU indices (not UUIDs) in CUDA_VISIBLE_DEVICES",
            )
        return int(first)
    return 0


def endpoint_port(settings: EndpointSettings, env: Mapping[str, str]) -> int:
    """``base_port + gpu_index(env)``; InputError when endpoints are not configured."""
    if settings.base_port is None:
        raise InputError("no endpoint configured", hint="set VSRFLOW_ENDPOINT_BASE_PORT")
    port = settings.base_port + gpu_index(env)
    if port > 65535:  # the client calls any server; the model server's own rule is checked where it starts
        raise InputError(f"endpoint port {port} is out of range", hint="lower VSRFLOW_ENDPOINT_BASE_PORT")
    return port


def endpoint_runner(
    settings: Settings, env: Mapping[str, str], client: EndpointClient | None = None
) -> Callable[[Any, Any, Path], dict[str, Any]]:
    """The chunk runner that calls this task's endpoint (falls back only when configured to)."""
    cfg = settings.endpoint
    client = client or EndpointClient.from_settings(cfg, endpoint_port(cfg, env))

    def run(job: Any, chunk: Any, output: Path) -> dict[str, Any]:
        spec = job.spec
        request = ChunkRequest(job_dir=Path(job.path), index=chunk.index, output=output, model=spec.model)
        try:
            stats = client.upscale_chunk(request)
        except TransientError as err:
            if not cfg.fallback:
                raise
            log.warning("%s; VSRFLOW_ENDPOINT_FALLBACK is set: running the chunk in-process", err)
            from vsrflow.engine.cache import UpscalerCache
            from vsrflow.workflow.job import stages

            t0 = time.monotonic()
            frames = stages.run_chunk(job, chunk, output, settings, UpscalerCache(settings))
            return {"frames": frames, "seconds": time.monotonic() - t0, "device": "in-process"}
        log.info(
            "chunk %d via %s: %d frames in %.2f s on %s (CUDA_VISIBLE_DEVICES=%s)",
            chunk.index, client.url, stats["frames"], float(stats.get("seconds", 0)), stats.get("device"),
            env.get("CUDA_VISIBLE_DEVICES", ""),
        )  # fmt: skip
        if stats["frames"] != chunk.frames:
            frames = stats["frames"]
            raise VsrError(f"chunk {chunk.index}: endpoint wrote {frames} frames, planned {chunk.frames}")
        return stats

    return run


def wait_until_up(client: EndpointClient, timeout: float, alive: Callable[[], bool] | None = None) -> None:
    """Poll ``/ping`` until 200; TransientError after ``timeout`` s or when ``alive()`` turns False."""
    deadline = time.monotonic() + timeout
    while not client.ping():
        if alive is not None and not alive():
            raise VsrError(f"endpoint {client.url}: the server exited while starting")
        if time.monotonic() > deadline:
            raise TransientError(f"endpoint {client.url}: no /ping answer within {timeout:g} s")
        time.sleep(0.1)


def socket_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (a cheap pre-check before starting a server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0
