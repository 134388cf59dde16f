"""The endpoint client against a scripted local HTTP server: statuses, retries, timeouts, fallback."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vsrflow.config import EndpointSettings, Settings
from vsrflow.errors import InputError, TransientError, VsrError
from vsrflow.serving.client import EndpointClient, endpoint_runner
from vsrflow.serving.protocol import ChunkRequest

STATS = {"frames": 25, "seconds": 1.0, "device": "cpu"}


@dataclass
class Script:
    """Responses the stub serves in order: (status, body) or ("sleep", seconds)."""

    steps: list[tuple[Any, Any]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    script: Script

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.script.seen.append({"path": self.path, "ctype": self.headers["Content-Type"], "body": body})
        status, payload = self.script.steps.pop(0) if self.script.steps else (200, STATS)
        if status == "sleep":
            threading.Event().wait(payload)
            status, payload = 200, STATS
        if status == "drop":  # close without answering: a server that died mid-request
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up (read timeout)
            self.wfile.write(data)

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def stub() -> Iterator[tuple[Script, int]]:
    script = Script()
    handler = type("H", (_Handler,), {"script": script})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield script, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _client(port: int, **kw: Any) -> tuple[EndpointClient, list[float]]:
    delays: list[float] = []
    opts: dict[str, Any] = {"retries": 4, "backoff": 0.5, "backoff_max": 1.5, "read_timeout": 5.0}
    opts.update(kw)
    client = EndpointClient(host="127.0.0.1", port=port, sleep=delays.append, **opts)
    return client, delays


REQ = ChunkRequest(job_dir=Path("/fsx/jobs/j"), index=1, output=Path("/fsx/jobs/j/chunks/00001.nut"))


def test_success_sends_the_chunk_request(stub: tuple[Script, int]) -> None:
    script, port = stub
    client, delays = _client(port)
    assert client.upscale_chunk(REQ) == STATS
    (seen,) = script.seen
    assert seen["path"] == "/invocations" and seen["ctype"] == "application/json"
    assert json.loads(seen["body"]) == REQ.to_json()
    assert delays == [] and client.attempts == 1


def test_retries_503_and_dropped_connections_with_backoff(stub: tuple[Script, int]) -> None:
    script, port = stub
    script.steps = [(503, {"message": "no worker"}), ("drop", None), (503, {"message": "loading"})]
    client, delays = _client(port)
    assert client.upscale_chunk(REQ) == STATS
    assert client.attempts == 4 and len(delays) == 3
    # Exponential with jitter in [0.75, 1.25), capped at backoff_max (1.5 s).
    for delay, nominal in zip(delays, (0.5, 1.0, 1.5), strict=True):
        assert 0.75 * nominal <= delay < 1.25 * nominal


def test_4xx_is_input_error_without_retry(stub: tuple[Script, int]) -> None:
    script, port = stub
    script.steps = [(400, {"error": "unknown model 'x'", "status": 400})]
    client, delays = _client(port)
    with pytest.raises(InputError, match=r"refused the request \(400\): unknown model 'x'"):
        client.upscale_chunk(REQ)
    assert client.attempts == 1 and delays == []


def test_500_is_not_retried_and_never_success(stub: tuple[Script, int]) -> None:
    script, port = stub
    script.steps = [(500, {"error": "encode failed", "status": 500})]
    client, _ = _client(port)
    with pytest.raises(VsrError, match=r"failed \(500\): encode failed"):
        client.upscale_chunk(REQ)
    script.steps = [(200, b"not json")]
    with pytest.raises(VsrError, match="non-JSON"):
        client.upscale_chunk(REQ)
    script.steps = [(200, {"ok": True})]
    with pytest.raises(VsrError, match="without stats"):
        client.upscale_chunk(REQ)


def test_read_timeout_is_transient(stub: tuple[Script, int]) -> None:
    script, port = stub
    script.steps = [("sleep", 1.0)]
    client, _ = _client(port, retries=0, read_timeout=0.2)
    with pytest.raises(TransientError, match=r"no response within 0.2 s"):
        client.upscale_chunk(REQ)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_gives_up_after_retries() -> None:
    client, delays = _client(_closed_port(), retries=2)
    with pytest.raises(TransientError, match=r"unreachable after 3 attempts.*cannot connect") as info:
        client.upscale_chunk(REQ)
    assert "VSRFLOW_ENDPOINT_FALLBACK" in str(info.value) and len(delays) == 2


@dataclass
class _Job:
    path: Path
    model: str | None = "realesr-animevideov3"

    @property
    def spec(self) -> Any:
        return type("S", (), {"model": self.model})()


@dataclass
class _Chunk:
    index: int = 1
    frames: int = 25


def test_runner_falls_back_in_process_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from vsrflow.engine.quality import GuardReport
    from vsrflow.workflow.job import stages

    ran: list[Path] = []

    def run(job: Any, chunk: Any, output: Path, settings: Any, cache: Any) -> stages.ChunkResult:
        ran.append(output)
        return stages.ChunkResult(frames=chunk.frames, guard=GuardReport(checked=chunk.frames))

    monkeypatch.setattr(stages, "_run_chunk", run)
    port = _closed_port()
    off = Settings(cache_dir=Path("/c"), endpoint=EndpointSettings(base_port=port, retries=0))
    with pytest.raises(TransientError):
        endpoint_runner(off, {})(_Job(Path("/j")), _Chunk(), Path("/j/out.nut"))
    assert ran == []
    on = Settings(cache_dir=Path("/c"), endpoint=EndpointSettings(base_port=port, retries=0, fallback=True))
    stats = endpoint_runner(on, {})(_Job(Path("/j")), _Chunk(), Path("/j/out.nut"))
    assert ran == [Path("/j/out.nut")] and stats["device"] == "in-process"
    assert stats["frames"] == 25 and stats["guard"]["checked"] == 25


def test_runner_rejects_a_wrong_frame_count(stub: tuple[Script, int]) -> None:
    script, port = stub
    script.steps = [(200, {**STATS, "frames": 24})]
    settings = Settings(cache_dir=Path("/c"), endpoint=EndpointSettings(base_port=port - 2))
    run = endpoint_runner(settings, {"CUDA_VISIBLE_DEVICES": "2"})  # base + 2 = the stub
    with pytest.raises(VsrError, match="wrote 24 frames, planned 25"):
        run(_Job(Path("/j")), _Chunk(), Path("/j/out.nut"))
    assert json.loads(script.seen[0]["body"])["model"] == "realesr-animevideov3"
