"""The page in AWS mode against moto in server mode, in a real browser.

The browser uploads straight to the bucket with presigned multipart URLs (the page's server only
signs them and completes the upload); the object must arrive byte for byte under
``uploads/<preset>/``. The job list then comes from ``jobs/<id>/status.json``: the status a head
node publishes (written here with the same writer, :func:`vsrflow.aws.jobrecords.write_status`,
since no cluster runs behind plain moto; the local-stack test runs the real event path), and the
download and compare frames come through presigned GETs.

The page (``127.0.0.1:<ui port>``) and S3 (``127.0.0.1:<moto port>``) are different origins, and
moto's server here answers cross-origin requests by the bucket's CORS rules only, as S3 does: the
rule infra/cfn/vsrflow.yaml gives the bucket for ``UiOrigins`` is what lets the browser send parts.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.browser.conftest import UiServer, ffprobe, start_ui, stop_ui
from tests.cfn_template import media_bucket_cors
from tests.mediagen import make_video
from vsrflow.aws.jobrecords import JobStatus, write_status
from vsrflow.workflow.job.state import JobState

pytestmark = pytest.mark.slow  # moto server + a browser

BUCKET = "media-ops-test"
REGION = "us-east-1"
JOB_ID = "0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    # Without this, moto's server adds allow-everything CORS headers to every response (read when
    # the server's S3 app is created, at its first request).
    monkeypatch_module.setattr("moto.moto_server.werkzeug_app.DISABLE_GLOBAL_CORS", True)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch_module.setenv(name, "testing")
    monkeypatch_module.delenv("AWS_PROFILE", raising=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def s3(moto: str) -> Any:
    client = boto3.client(
        "s3", endpoint_url=moto, region_name=REGION, config=Config(s3={"addressing_style": "path"})
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str], moto: str, s3: Any
) -> Iterator[UiServer]:
    env = {
        **cli_env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "VSRFLOW_AWS_BUCKET": BUCKET,
        "VSRFLOW_AWS_ENDPOINT_URL": moto,
        "VSRFLOW_AWS_REGION": REGION,
    }
    env.pop("AWS_PROFILE", None)
    started = start_ui(tmp_path_factory.mktemp("ui-aws"), env, "--aws")
    # The stack's rule for UiOrigins=<this page's origin> (what CloudFormation sets on the bucket).
    cors = media_bucket_cors(started.url)
    assert cors is not None
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=cors)
    try:
        yield started
    finally:
        stop_ui(started)


def test_browser_uploads_to_s3_and_downloads_presigned(
    browser: Any, server: UiServer, s3: Any, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "old tape.mp4", frames=10, audio_tracks=1)
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        page.select_option("#folder", "anime")
        page.set_input_files("#files", str(clip))
        status = page.locator("#uploads .upload .status")
        said = "document.querySelector('#uploads .status').textContent"
        page.wait_for_function(f"() => /uploaded to|failed|refused|error/i.test({said})", timeout=60_000)
        assert "uploaded to uploads/anime/old tape.mp4" in status.inner_text(), status.inner_text()
        # The probe of the stored object (through a presigned GET) and the GPU-ceiling estimate.
        card = page.locator("#uploads .upload").first
        page.wait_for_function(
            "() => document.querySelector('#uploads .estimate').textContent.length > 0", timeout=60_000
        )
        probe_text = card.locator(".probe").inner_text()
        assert "64x48" in probe_text and "10 frames" in probe_text and "progressive" in probe_text, probe_text
        assert "audio aac" in probe_text, probe_text
        estimate = card.locator(".estimate").inner_text()
        assert "preset anime x2" in estimate and "at best" in estimate, estimate
        body = s3.get_object(Bucket=BUCKET, Key="uploads/anime/old tape.mp4")["Body"].read()
        assert body == clip.read_bytes()
        assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")

        # The head node's delivery: the output object, then status done (same writer).
        out_key = "outputs/anime/old tape_x2.mp4"
        s3.put_object(Bucket=BUCKET, Key=out_key, Body=clip.read_bytes())
        status_done = JobStatus(
            job_id=JOB_ID,
            state=JobState.DONE,
            done_chunks=1,
            total_chunks=1,
            source=f"s3://{BUCKET}/uploads/anime/old tape.mp4",
            output=f"s3://{BUCKET}/{out_key}",
        )
        assert write_status(s3, BUCKET, status_done)

        page.goto(server.url + "/jobs")
        row = page.locator(f'#jobs tr[data-job="{JOB_ID}"][data-state="done"]')
        row.wait_for(timeout=30_000)
        assert "old tape.mp4" in row.inner_text()
        row.locator("a", has_text="compare").click()
        page.wait_for_url(f"**/jobs/{JOB_ID}")
        query = "document.querySelector('#frame-result')"
        page.wait_for_function(f"() => {query}.complete && {query}.naturalWidth > 0", timeout=60_000)
        with page.expect_download() as info:
            page.click("#download")
        saved = tmp_path / "result.mp4"
        info.value.save_as(saved)
        assert info.value.suggested_filename == "old tape_x2.mp4"
        assert saved.read_bytes() == clip.read_bytes()
        assert (
            int(next(s for s in ffprobe(saved)["streams"] if s["codec_type"] == "video")["nb_read_frames"])
            == 10
        )
    finally:
        context.close()


def test_page_never_holds_credentials(browser: Any, server: UiServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        html = page.content()
        assert "testing" not in html and "AWS_SECRET" not in html and "X-Amz-Credential" not in html
    finally:
        context.close()


def test_upload_from_an_origin_the_bucket_does_not_allow_fails(
    browser: Any, server: UiServer, s3: Any, tmp_path: Path
) -> None:
    """With the stack's rule for another origin, the browser refuses to send the parts."""
    clip = make_video(tmp_path / "elsewhere.mp4", frames=4)
    other = media_bucket_cors("https://media-ops.example")
    assert other is not None
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=other)
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        page.select_option("#folder", "anime")
        page.set_input_files("#files", str(clip))
        said = "document.querySelector('#uploads .status').textContent"
        page.wait_for_function(f"() => /uploaded to|failed|refused|error/i.test({said})", timeout=60_000)
        status = page.locator("#uploads .upload .status")
        assert "failed (network or CORS)" in status.inner_text(), status.inner_text()
        assert "error" in (status.get_attribute("class") or "")
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/anime/elsewhere").get("Contents", [])
        assert listed == []
    finally:
        context.close()
        s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=media_bucket_cors(server.url))
        for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
