"""Real model endpoints (SageMaker inference toolkit + Multi Model Server) on CPU with a real model.

Two endpoints run at once on two ports (module scope, started together). Chunks go through them
with ``vsrflow.serving.client`` and must be byte-identical to the in-process chunk code; bad
requests get the right HTTP codes; an endpoint killed mid-chunk and restarted on its port lets the
client's retry finish the chunk.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from tests.mediagen import decode_rgb, make_video
from tests.servinglib import MODEL, SCALE, endpoint, free_ports, prepare_job, running, server_processes
from vsrflow.config import EndpointSettings, Settings
from vsrflow.engine.cache import UpscalerCache
from vsrflow.errors import InputError
from vsrflow.serving.client import EndpointClient, endpoint_runner
from vsrflow.serving.protocol import ChunkRequest
from vsrflow.serving.server import Endpoint
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.manifest import ChunkState, ManifestStore
from vsrflow.workflow.job.spec import JobSpec

# Slow (real Multi Model Server (Java) endpoints): `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache_dir(model_env: dict[str, str]) -> Path:
    return Path(model_env["VSRFLOW_CACHE_DIR"]).resolve()


@pytest.fixture(scope="module")
def endpoints(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sequence[Endpoint]]:
    base = free_ports(2)
    root = tmp_path_factory.mktemp("endpoints")
    roots = [tmp_path_factory.getbasetemp()]  # every test's jobs, clips and outputs live under it
    eps = [endpoint(cache_dir, base + i, root / f"ep{i}", roots=roots) for i in range(2)]
    with running(eps):
        yield eps


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=50, audio_tracks=1)


def _settings(cache_dir: Path, base_port: int, **kw: Any) -> Settings:
    return Settings(cache_dir=cache_dir, device="cpu", endpoint=EndpointSettings(base_port=base_port, **kw))


def _post(ep: Endpoint, body: bytes, ctype: str) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", ep.spec.port, timeout=300)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_endpoints_serve_at_once(endpoints: Sequence[Endpoint], cache_dir: Path) -> None:
    a, b = endpoints
    # Per-instance state: own config, own MMS pid file, both bound to the loopback only.
    assert a.config_path != b.config_path
    for ep in endpoints:
        config = ep.config_path.read_text()
        assert f"inference_address=http://127.0.0.1:{ep.spec.port}" in config
        assert (ep.state_dir / "tmp" / ".model_server.pid").is_file()
        listening = {  # Java listens on an IPv6 socket: 127.0.0.1 shows as ::ffff:127.0.0.1
            c.laddr.ip.removeprefix("::ffff:")
            for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == ep.spec.port
        }
        assert listening == {"127.0.0.1"}, listening
    pids = {(ep.state_dir / "tmp" / ".model_server.pid").read_text() for ep in endpoints}
    assert len(pids) == 2

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 24, 32, 3), dtype=np.uint8)
    results: dict[int, np.ndarray] = {}

    def call(ep: Endpoint) -> None:
        results[ep.spec.port] = EndpointClient("127.0.0.1", ep.spec.port).upscale_frames(frames)

    threads = [threading.Thread(target=call, args=(ep,)) for ep in endpoints]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2
    # The real model, in this process: the endpoints give exactly its output.
    spec = JobSpec(source="/x/in", destination="/x/out", model=MODEL, scale=SCALE)
    upscaler = UpscalerCache(Settings(cache_dir=cache_dir, device="cpu")).get(spec.model, spec.scale)
    expected = upscaler.upscale_frames(frames)
    for out in results.values():
        assert out.shape == (3, 48, 64, 3) and out.dtype == np.uint8
        assert np.array_equal(out, expected)


def test_chunks_round_trip_identical_to_in_process(
    endpoints: Sequence[Endpoint], cache_dir: Path, clip: Path, tmp_path: Path
) -> None:
    settings = _settings(cache_dir, endpoints[0].spec.port)
    job = prepare_job(tmp_path / "jobs", clip)
    store = ManifestStore(job)
    assert store.load().chunk_count == 2
    # Chunk i from "GPU i": CUDA_VISIBLE_DEVICES picks the endpoint (base port + i).
    answers: list[dict[str, Any]] = []
    for index in (0, 1):
        run = endpoint_runner(settings, {"CUDA_VISIBLE_DEVICES": str(index)})

        def recording(job: Any, chunk: Any, output: Path, run: Any = run) -> dict[str, Any]:
            answers.append(run(job, chunk, output))
            return answers[-1]

        assert stages.upscale_chunk(job, index, settings, runner=recording)
    for ep in endpoints:
        assert ep.log_path.read_text().count('"POST /invocations HTTP/1.1" 200') >= 2  # warm-up + chunk

    plan = store.load().plan
    assert plan is not None
    cache = UpscalerCache(settings)
    for chunk in plan.chunks:
        record = store.record(chunk.index)
        served = job.chunk_output_path(chunk.index)
        assert record.state is ChunkState.DONE and record.checksum == _sha(served)
        local = tmp_path / f"inproc{chunk.index}.nut"
        stages.run_chunk(job, chunk, local, settings, cache)
        assert _sha(local) == _sha(served), f"chunk {chunk.index}: endpoint output differs from in-process"
        pts, images, _ = decode_rgb(served)
        assert len(pts) == chunk.frames and images[0].shape == (96, 128, 3)

    # The model was loaded once per endpoint (by model_fn), before the warm-up and the chunk requests.
    for stats, chunk in zip(answers, plan.chunks, strict=True):
        assert stats["model_loads"] == 1 and stats["requests"] >= 2 and stats["device"] == "cpu", stats
        assert stats["frames"] == chunk.frames and stats["index"] == chunk.index


def test_bad_requests_get_the_right_codes(endpoints: Sequence[Endpoint], clip: Path, tmp_path: Path) -> None:
    ep = endpoints[0]
    job = prepare_job(tmp_path / "jobs", clip)
    cases = [
        (b'{"job_dir": ', "application/json", 400, "not valid JSON"),
        (json.dumps({"job_dir": str(job.path), "index": 0, "model": "no-such-model"}), "application/json",
         400, "unknown model 'no-such-model'"),
        (json.dumps({"input": str(clip), "output": str(tmp_path / "o.mkv"),
                     "model": "RealESRGAN_x4plus"}), "application/json",  # a model whose weights are absent
         400, "model 'RealESRGAN_x4plus': no weights in this endpoint's weight store"),
        (json.dumps({"job_dir": "/etc", "index": 0}), "application/json",
         400, "job_dir /etc is outside this endpoint's allowed roots"),
        (json.dumps({"job_dir": str(tmp_path / "nope"), "index": 0}), "application/json",
         400, "does not exist"),
        (json.dumps({"input": str(tmp_path / "missing.mp4"), "output": str(tmp_path / "o.mkv")}),
         "application/json", 400, "missing.mp4 does not exist"),
        (json.dumps({"job_dir": str(job.path), "index": 7}), "application/json", 400, "no chunk 7"),
        (b"a,b\n1,2\n", "text/csv", 415, "content type text/csv is not supported"),
    ]  # fmt: skip
    for body, ctype, status, reason in cases:
        got, answer = _post(ep, body.encode() if isinstance(body, str) else body, ctype)
        assert (got, answer["status"]) == (status, status), (body, answer)
        assert reason in answer["error"], answer
    # The client turns a 4xx into an InputError at once: no retries for a bad request.
    client = EndpointClient("127.0.0.1", ep.spec.port, retries=5)
    with pytest.raises(InputError, match="differs from job"):
        client.upscale_chunk(ChunkRequest(job_dir=job.path, index=0, model="SPAN_x2_ch48"))
    assert client.attempts == 1
    assert ManifestStore(job).record(0).state is ChunkState.PENDING  # refused requests changed nothing


def test_endpoint_killed_mid_chunk_and_restarted(cache_dir: Path, tmp_path: Path) -> None:
    port = free_ports(1)
    clip = make_video(tmp_path / "big.mp4", size=(128, 96), frames=30)
    job = prepare_job(tmp_path / "jobs", clip, chunk_frames=30)
    settings = _settings(cache_dir, port, retries=40, backoff=0.2, backoff_max=1.0)
    first = endpoint(cache_dir, port, tmp_path / "first", roots=[tmp_path])
    second = endpoint(cache_dir, port, tmp_path / "second", roots=[tmp_path])
    outcome: dict[str, Any] = {}

    def task() -> None:
        try:
            outcome["did"] = stages.upscale_chunk(job, 0, settings, runner=endpoint_runner(settings, {}))
        except BaseException as exc:
            outcome["error"] = exc

    with running([first]):
        worker = threading.Thread(target=task)
        worker.start()
        deadline = time.monotonic() + 60
        while not list(job.chunks_dir.glob(".*partial*")):  # the endpoint opened its output: mid-run
            assert time.monotonic() < deadline and worker.is_alive(), outcome
            time.sleep(0.01)
        first.kill()
        assert server_processes(first.state_dir) == [], "kill -9 of the group leaves no server process"
        assert worker.is_alive(), "the client is retrying"
        with running([second]):
            worker.join(120)
            assert not worker.is_alive()
    assert outcome == {"did": True}
    record = ManifestStore(job).record(0)
    assert record.state is ChunkState.DONE
    served = job.chunk_output_path(0)
    assert record.checksum == _sha(served)
    assert '"POST /invocations HTTP/1.1" 200' in second.log_path.read_text()
    pts, images, _ = decode_rgb(served)  # (identity with in-process: test_chunks_round_trip...)
    assert len(pts) == 30 and images[0].shape == (192, 256, 3)


def test_file_request_runs_the_upscale_engine(endpoints: Sequence[Endpoint], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", frames=10, audio_tracks=1)
    out = tmp_path / "out.mkv"
    body = {"input": str(src), "output": str(out), "scale": 2, "encoder": {"codec": "ffv1"}}
    status, stats = _post(endpoints[1], json.dumps(body).encode(), "application/json")
    assert status == 200 and stats["kind"] == "file" and stats["frames"] == 10, stats
    pts, images, kinds = decode_rgb(out)
    assert len(pts) == 10 and images[0].shape == (96, 128, 3) and kinds == ["video", "audio"]


def _request(port: int, method: str, path: str) -> tuple[int, bytes] | None:
    """(status, body) of one request to 127.0.0.1:``port``; None when the connection is refused."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except ConnectionError:
        return None
    finally:
        conn.close()


def _listening_ports(ep: Endpoint) -> dict[int, set[str]]:
    """Port -> addresses every process of the endpoint listens on (IPv4-mapped shown as IPv4)."""
    pids = {p.pid for p in server_processes(ep.state_dir)}
    found: dict[int, set[str]] = {}
    for c in psutil.net_connections("tcp"):
        if c.status == psutil.CONN_LISTEN and c.pid in pids:
            found.setdefault(c.laddr.port, set()).add(c.laddr.ip.removeprefix("::ffff:"))
    return found


def _evil_model(root: Path) -> tuple[Path, Path]:
    """An MMS model directory whose handler writes a marker file when a worker imports it."""
    model = root / "evil"
    marker = root / "evil-ran"
    (model / "MAR-INF").mkdir(parents=True)
    manifest = {"runtime": "python", "model": {"modelName": "evil", "handler": "evil_handler:handle"}}
    (model / "MAR-INF" / "MANIFEST.json").write_text(json.dumps(manifest))
    handler = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n\n\n"
    (model / "evil_handler.py").write_text(handler + "def handle(data, context):\n    return data\n")
    return model, marker


def test_management_api_is_not_on_the_inference_port(endpoints: Sequence[Endpoint], tmp_path: Path) -> None:
    ep = endpoints[0]
    port = ep.spec.port
    config = ep.config_path.read_text()
    assert "management_address=http://127.0.0.1:0" in config
    assert config.count("management_address=") == 1

    # Listing models and registering one from a URL are refused on the inference port...
    model_dir, marker = _evil_model(tmp_path)
    for method, path in [
        ("GET", "/models"),
        ("GET", "/models/model"),
        ("POST", f"/models?url={model_dir}&initial_workers=1&synchronous=true"),
        ("PUT", "/models/model?min_worker=4"),
        ("DELETE", "/models/model"),
    ]:
        answer = _request(port, method, path)
        assert answer is None or answer[0] in (404, 405), (method, path, answer)

    # ...the management API listens on exactly one other port, on the loopback only, and holds
    # just the endpoint's own model: nothing was registered, no handler of the request ran.
    ports = _listening_ports(ep)
    assert ports.pop(port) == {"127.0.0.1"}
    assert len(ports) == 1, ports
    (management, addresses), *_ = ports.items()
    assert addresses == {"127.0.0.1"} and management != port
    answer = _request(management, "GET", "/models")
    assert answer is not None and answer[0] == 200
    assert [m["modelName"] for m in json.loads(answer[1])["models"]] == ["model"]
    assert not marker.exists()

    # Inference still works on the service port.
    ping = _request(port, "GET", "/ping")
    assert ping is not None and ping[0] == 200
    out = EndpointClient("127.0.0.1", port).upscale_frames(np.zeros((1, 16, 16, 3), np.uint8))
    assert out.shape == (1, 32, 32, 3)
