"""The web page's HTTP API on a real ``vsrflow ui`` server (child process, loopback, free port).

Security: browser file names are data (no traversal, nothing outside the page's upload folder),
writes without the CSRF token or from another origin are refused, an unknown Host is refused,
a token is required when configured and a wide bind without one is refused, uploads over the
size limit or of the wrong type get a clear reason and leave nothing behind.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import UiServer, start_ui, stop_ui
from tests.conftest import run_cli
from tests.mediagen import make_video

TOKEN = "0123456789abcdef0123"


class Session:
    """A client with a cookie jar, like one browser tab."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        if self.cookies:
            req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                status, head, data = resp.status, dict(resp.headers), resp.read()
                raw = resp.headers.get_all("set-cookie") or []
        except urllib.error.HTTPError as err:
            status, head, data = err.code, dict(err.headers), err.read()
            raw = err.headers.get_all("set-cookie") or []
        for cookie in raw:
            name, _, value = cookie.split(";")[0].partition("=")
            self.cookies[name] = value
        return status, head, data

    def open_page(self, query: str = "") -> None:
        status, _, html = self.request("GET", "/" + query)
        assert status == 200, html
        match = re.search(rb'name="csrf-token" content="([0-9a-f]+)"', html)
        assert match
        self.csrf = match[1].decode()

    def upload(self, name: str, data: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
        head = {"X-CSRF-Token": self.csrf, "Content-Type": "application/octet-stream", **headers}
        quoted = urllib.request.quote(name, safe="")
        status, _, body = self.request("PUT", f"/api/uploads?name={quoted}", data, head)
        return status, json.loads(body) if body.startswith(b"{") else {"text": body.decode()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str]) -> Iterator[UiServer]:
    tmp = tmp_path_factory.mktemp("ui-api")
    started = start_ui(tmp, cli_env, "--jobs-root", str(tmp / "jobs"), "--max-upload", "64K")
    try:
        yield started
    finally:
        stop_ui(started)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_video(tmp_path_factory.mktemp("clip") / "c.mp4", frames=5).read_bytes()


def _stored(server: UiServer) -> list[Path]:
    return sorted(p for p in (server.state_dir / "uploads").rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../../../tmp/evil.mp4", "evil.mp4"),
        ("..\\..\\windows\\evil.mp4", "evil.mp4"),
        ("$(touch pwned);`id`.mp4", "_touch pwned_id_.mp4"),
        ("\uff43\uff4c\uff49\uff50\x00.mp4", "clip_.mp4"),
    ],
)
def test_file_names_are_data(server: UiServer, clip: bytes, name: str, stored: str) -> None:
    session = Session(server.url)
    session.open_page()
    status, body = session.upload(name, clip)
    assert status == 200, body
    assert body["probe"]["name"] == stored
    (path,) = [p for p in _stored(server) if p.parent.name == body["upload_id"] and p.name == stored]
    assert path.parent.parent == server.state_dir / "uploads"
    assert not Path("/tmp/evil.mp4").exists() and not Path("pwned").exists()


def test_csrf_and_origin_checks(server: UiServer, clip: bytes) -> None:
    session = Session(server.url)
    session.open_page()
    before = _stored(server)
    status, body = session.upload("a.mp4", clip, **{"X-CSRF-Token": "0" * 64})
    assert status == 403 and "CSRF" in body["text"]
    status, body = session.upload("a.mp4", clip, Origin="http://evil.example")
    assert status == 403 and "origin" in body["text"]
    status, body = session.upload("a.mp4", clip, **{"Sec-Fetch-Site": "cross-site"})
    assert status == 403 and "another site" in body["text"]
    status, body = session.upload("a.mp4", clip, **{"Content-Type": "multipart/form-data; boundary=x"})
    assert status == 403 and "form posts" in body["text"]
    other = Session(server.url)  # another browser's token is not this one's
    other.open_page()
    status, body = session.upload("a.mp4", clip, **{"X-CSRF-Token": other.csrf})
    assert status == 403
    job = json.dumps({"upload_id": "0" * 16, "scale": 2, "container": ".mp4"}).encode()
    status, _, _ = session.request("POST", "/api/jobs", job, {"Content-Type": "application/json"})
    assert status == 403
    assert _stored(server) == before


def test_unknown_host_is_refused(server: UiServer) -> None:
    status, _, body = Session(server.url).request("GET", "/", headers={"Host": "rebind.example"})
    assert status == 421 and b"unknown host" in body


def test_size_and_type_limits(server: UiServer, clip: bytes) -> None:
    session = Session(server.url)
    session.open_page()
    before = _stored(server)
    status, body = session.upload("big.mp4", b"\0" * (65 * 1024))
    assert status == 413, body
    assert "at most 64.0 KiB" in body["error"] and "--max-upload" in body["hint"]
    # Without a Content-Length (a chunked body) the bytes are counted as they arrive.
    head = {"X-CSRF-Token": session.csrf, "Content-Type": "application/octet-stream"}
    chunks = iter([b"\0" * 32 * 1024] * 3)
    status, _, raw = session.request("PUT", "/api/uploads?name=chunked.mp4", chunks, head)
    assert status == 413 and "at most 64.0 KiB" in json.loads(raw)["error"], raw
    status, body = session.upload("notes.txt", clip)
    assert status == 400 and "unsupported file type .txt" in body["error"], body
    status, body = session.upload("fake.mp4", b"just some text, not a video\n" * 10)
    assert status == 400 and "fake.mp4: not a recognisable media file" in body["error"], body
    status, body = session.upload("empty.mp4", b"")
    assert status == 400 and "empty" in body["error"], body
    assert _stored(server) == before


def test_jobs_accept_only_known_models(server: UiServer, clip: bytes) -> None:
    session = Session(server.url)
    session.open_page()
    status, body = session.upload("m.mp4", clip)
    assert status == 200
    head = {"X-CSRF-Token": session.csrf, "Content-Type": "application/json"}
    bad = (("model", "/etc/passwd"), ("preset", "../x"), ("container", ".exe"), ("deinterlace", "yadif"),
           ("prefilter", "; rm -rf /"), ("video_stream", "-1"), ("video_stream", "0; ls"))  # fmt: skip
    for field, value in bad:
        job = {"upload_id": body["upload_id"], "scale": 2, "container": ".mp4", field: value}
        status, _, answer = session.request("POST", "/api/jobs", json.dumps(job).encode(), head)
        assert status == 400, answer
        assert repr(value) in json.loads(answer)["error"]
    job = {"upload_id": "../../etc", "scale": 2, "container": ".mp4"}
    status, _, answer = session.request("POST", "/api/jobs", json.dumps(job).encode(), head)
    assert status == 400 and "16 hex digits" in json.loads(answer)["error"]


def test_wide_bind_needs_a_login(cli_env: dict[str, str]) -> None:
    proc = run_cli(["ui", "--host", "0.0.0.0", "--port", "0"], cli_env, timeout=300)
    assert proc.returncode == 2
    assert "without a login" in proc.stderr and "--token" in proc.stderr
    proc = run_cli(["ui", "--host", "0.0.0.0", "--token", "short"], cli_env, timeout=300)
    assert proc.returncode == 2 and "shorter than 16" in proc.stderr
    proc = run_cli(["ui", "--host", "0.0.0.0", "--token", TOKEN], cli_env, timeout=300)
    assert proc.returncode == 2 and "--allow-host" in proc.stderr


@pytest.mark.slow  # its own server: over 5 s on a loaded machine
def test_token_and_basic_auth(tmp_path: Path, cli_env: dict[str, str]) -> None:
    server = start_ui(tmp_path, cli_env, "--token", TOKEN, "--basic-auth", "ops:secret-pass")
    try:
        anonymous = Session(server.url)
        assert anonymous.request("GET", "/")[0] == 401
        assert anonymous.request("GET", "/api/jobs")[0] == 401
        assert anonymous.request("GET", "/?token=wrong-token-000000")[0] == 401
        browser = Session(server.url)
        browser.open_page(f"?token={TOKEN}")  # sets the auth cookie
        assert browser.request("GET", "/api/jobs")[0] == 200
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert Session(server.url).request("GET", "/api/jobs", headers=bearer)[0] == 200
        basic = {"Authorization": "Basic " + base64.b64encode(b"ops:secret-pass").decode()}
        assert Session(server.url).request("GET", "/api/jobs", headers=basic)[0] == 200
        wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:nope-nope").decode()}
        assert Session(server.url).request("GET", "/api/jobs", headers=wrong)[0] == 401
    finally:
        stop_ui(server)


@pytest.mark.slow  # runs a real (tiny) job
def test_restart_resumes_interrupted_jobs(tmp_path: Path, model_env: dict[str, str]) -> None:
    """A job of the page's uploads that was queued when the server stopped runs after a restart."""
    from vsrflow.config import Settings
    from vsrflow.workflow.job.spec import EncoderSpec
    from vsrflow.workflow.job.submit import PathJobRequest, create_path_job

    uploads = tmp_path / "ui-state" / "uploads" / "0123456789abcdef"
    uploads.mkdir(parents=True)
    source = make_video(uploads / "left.mp4", frames=4)
    (tmp_path / "out").mkdir()
    request = PathJobRequest(
        source=source, output=tmp_path / "out" / "left_x2.mp4", model="realesr-animevideov3", scale=2,
        encoder=EncoderSpec(), chunk_seconds=1.0,
    )  # fmt: skip
    job = create_path_job(request, tmp_path / "jobs", Settings.from_env(model_env))
    server = start_ui(tmp_path, {**model_env, "OMP_NUM_THREADS": "1"}, "--jobs-root", str(tmp_path / "jobs"))
    try:
        session = Session(server.url)
        for _ in range(240):
            status, _, body = session.request("GET", f"/api/jobs/{job.job_id}")
            view = json.loads(body)
            if view["state"] in ("done", "failed"):
                break
            time.sleep(0.5)
        assert status == 200 and view["state"] == "done", view
        assert (tmp_path / "out" / "left_x2.mp4").is_file()
    finally:
        stop_ui(server)
