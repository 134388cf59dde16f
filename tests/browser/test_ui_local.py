"""The page in local mode, in a real browser: upload -> probe -> job -> done -> compare -> download.

The job is the real chunked job (extract, upscale with realesr-animevideov3, encode) run by the
page's local executor; the download is checked with ffprobe (size x2, every frame, the audio).
A text file renamed ``.mp4`` is refused with the probe's reason.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import UiServer, ffprobe, screenshot, start_ui, stop_ui
from tests.mediagen import make_streams, make_text_file, make_video
from vsrflow.config import Settings
from vsrflow.errors import InputError
from vsrflow.workflow.job.stages import extract
from vsrflow.workflow.job.submit import PathJobRequest, create_path_job

MODEL = "realesr-animevideov3"
FRAMES = 10
#: Tiny for CPU (the upscale dominates); the screenshots for the docs use a larger clip.
SIZE = (160, 120) if os.environ.get("UI_SCREENSHOT_DIR") else (64, 48)
JOB_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str]) -> Iterator[UiServer]:
    tmp = tmp_path_factory.mktemp("ui-local")
    # One thread: the job shares the machine with the browser and other tests.
    env = {**model_env, "OMP_NUM_THREADS": "1"}
    started = start_ui(tmp, env, "--jobs-root", str(tmp / "jobs"), "--chunk-seconds", "1")
    try:
        yield started
    finally:
        stop_ui(started)


@pytest.fixture
def page(browser: Any, server: UiServer) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 800})
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


@pytest.mark.slow  # a browser and a server (over 5 s on a loaded 2-core box)
def test_text_file_named_mp4_is_refused_with_the_reason(page: Any, server: UiServer, tmp_path: Path) -> None:
    fake = make_text_file(tmp_path / "holiday.mp4")
    real = make_video(tmp_path / "real.mp4", frames=3)
    before = {p for p in (server.state_dir / "uploads").rglob("*") if p.is_file()}
    page.goto(server.url + "/")
    page.set_input_files("#files", [str(fake), str(real)])  # several at once, each on its own card
    bad = page.locator("#uploads .upload", has_text="holiday.mp4")
    good = page.locator("#uploads .upload", has_text="real.mp4")
    bad.locator(".status.error").wait_for(timeout=30_000)
    text = bad.locator(".status").inner_text()
    assert "holiday.mp4" in text and "not a recognisable media file" in text, text
    assert bad.locator(".actions").is_hidden()
    good.locator(".actions").wait_for(state="visible", timeout=30_000)
    assert "3 frames" in good.locator(".probe").inner_text()
    stored = {p for p in (server.state_dir / "uploads").rglob("*") if p.is_file()} - before
    assert sorted(p.name for p in stored) == ["probe.json", "real.mp4"], "a refused upload must not be kept"


@pytest.mark.slow
def test_failed_job_shows_its_reason(
    page: Any, server: UiServer, tmp_path: Path, model_env: dict[str, str]
) -> None:
    clip = make_video(tmp_path / "vanishing.mp4", frames=3)
    page.goto(server.url + "/")
    page.select_option("#model", MODEL)
    page.set_input_files("#files", str(clip))
    card = page.locator("#uploads .upload").first
    card.locator(".actions").wait_for(state="visible", timeout=30_000)
    # The stored upload is damaged after its probe and before the job starts (a disk fault): the
    # start is refused on the card with the reason (the source is probed again), no job is made.
    (stored,) = (server.state_dir / "uploads").rglob("vanishing.mp4")
    stored.write_bytes(b"overwritten\n" * 100)
    jobs_before = set((server.state_dir.parent / "jobs").glob("*"))
    card.locator(".start").click()
    status = card.locator(".status.error")
    status.wait_for(timeout=30_000)
    assert "vanishing.mp4" in status.inner_text() and "not a recognisable media file" in status.inner_text()
    assert set((server.state_dir.parent / "jobs").glob("*")) == jobs_before

    # A job that fails while it runs (its source damaged after submission, as the extract stage
    # meets it) is listed as failed, with the reason the stage recorded.
    good = make_video(tmp_path / "damaged later.mp4", frames=3)
    request = PathJobRequest(source=good, output=tmp_path / "out.mp4", model=MODEL)
    job = create_path_job(request, server.state_dir.parent / "jobs", Settings.from_env(model_env))
    good.write_bytes(b"overwritten\n" * 100)
    with pytest.raises(InputError):
        extract(job)
    page.goto(server.url + "/jobs")
    row = page.locator(f'#jobs tr[data-job="{job.job_id}"][data-state="failed"]')
    row.wait_for(timeout=JOB_TIMEOUT_MS)
    reason = row.locator(".reason").inner_text()
    assert "damaged later.mp4" in reason and "not a recognisable media file" in reason, reason
    row.locator("a").first.click()
    assert "not a recognisable media file" in page.locator("#reason").inner_text()


@pytest.mark.slow
def test_upload_job_compare_download(page: Any, server: UiServer, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "my clip.mp4", size=SIZE, frames=FRAMES, audio_tracks=1)
    page.goto(server.url + "/")
    page.select_option("#model", MODEL)
    page.select_option("#scale", "2.0")
    page.select_option("#container", ".mp4")
    page.set_input_files("#files", str(clip))
    card = page.locator("#uploads .upload").first
    card.locator(".actions").wait_for(state="visible", timeout=60_000)
    probe_text = card.locator(".probe").inner_text()
    assert f"{SIZE[0]}x{SIZE[1]}" in probe_text and f"{FRAMES} frames" in probe_text, probe_text
    assert "progressive" in probe_text and "audio aac" in probe_text, probe_text
    assert "estimate with realesr-animevideov3" in card.locator(".estimate").inner_text()
    screenshot(page, "ui-upload.png")
    card.locator(".start").click()
    link = card.locator(".status a").first
    link.wait_for(timeout=30_000)
    job_id = link.inner_text()

    page.goto(server.url + "/jobs")
    row = page.locator(f'#jobs tr[data-job="{job_id}"]')
    row.wait_for(timeout=30_000)
    page.locator(f'#jobs tr[data-job="{job_id}"][data-state="done"]').wait_for(timeout=JOB_TIMEOUT_MS)
    assert "my clip.mp4" in row.inner_text()
    screenshot(page, "ui-jobs.png")

    row.locator("a", has_text="compare").click()
    page.wait_for_url(f"**/jobs/{job_id}")
    page.fill("#time", "0.2")
    page.click("#show")
    for image in ("#frame-source", "#frame-result", "#slider-source", "#slider-result"):
        query = f"document.querySelector('{image}')"
        loaded = f"() => {query}.complete && {query}.naturalWidth > 0"
        page.wait_for_function(loaded, timeout=60_000)
        size = page.eval_on_selector(image, "i => [i.naturalWidth, i.naturalHeight]")
        assert size == [SIZE[0] * 2, SIZE[1] * 2], (image, size)
    page.locator("#slider-pos").fill("30")
    assert page.eval_on_selector("#slider-top", "d => d.style.width") == "30%"
    screenshot(page, "ui-compare.png")

    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "result.mp4"
    info.value.save_as(saved)
    assert info.value.suggested_filename.endswith(".mp4")
    probed = ffprobe(saved)
    video = [s for s in probed["streams"] if s["codec_type"] == "video"]
    audio = [s for s in probed["streams"] if s["codec_type"] == "audio"]
    assert len(video) == 1 and len(audio) == 1, probed["streams"]
    assert (video[0]["width"], video[0]["height"]) == (SIZE[0] * 2, SIZE[1] * 2)
    assert int(video[0]["nb_read_frames"]) == FRAMES


@pytest.mark.slow
def test_quick_preview_compares_models(page: Any, server: UiServer, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "preview.mp4", size=SIZE, frames=FRAMES)
    page.goto(server.url + "/")
    page.set_input_files("#files", str(clip))
    card = page.locator("#uploads .upload").first
    card.locator(".actions").wait_for(state="visible", timeout=60_000)
    card.locator(".preview summary").click()
    for box in card.locator(".preview-models input").all():
        box.set_checked(box.get_attribute("value") in ("realesr-animevideov3", "SPAN_x2_ch48"))
    card.locator(".preview-seconds").fill("0.2")
    card.locator(".run-preview").click()
    card.locator(".preview-status", has_text="preview done").or_(
        card.locator(".preview-status", has_text="failed")
    ).wait_for(timeout=JOB_TIMEOUT_MS)
    said = card.locator(".preview-status").inner_text()
    assert "realesr-animevideov3 done" in said and "SPAN_x2_ch48 done" in said, said
    names = card.locator(".preview-grid figcaption").all_inner_texts()
    assert names[0] == "source" and sorted(names[1:]) == ["SPAN_x2_ch48", "realesr-animevideov3"], names
    for video in card.locator(".preview-grid video").all():
        video.evaluate("v => new Promise(r => v.readyState >= 2 ? r() : (v.onloadeddata = r))")
        assert video.evaluate("v => v.videoWidth") in (SIZE[0], SIZE[0] * 2)
    screenshot(page, "ui-preview.png")


@pytest.mark.slow  # a browser and a server
def test_files_dropped_on_the_zone_are_uploaded_and_probed(
    page: Any, server: UiServer, tmp_path: Path
) -> None:
    """Real drag events: a DataTransfer holding Files built in the page from the clips' bytes is
    carried by dragenter/dragover/drop on the drop zone; each file goes the picker's way."""
    clips = [make_video(tmp_path / f"dropped {n}.mp4", frames=n) for n in (3, 4)]
    page.goto(server.url + "/")
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name, { type: "video/mp4" }));
            }
            return dt;
        }""",
        [{"name": c.name, "data": base64.b64encode(c.read_bytes()).decode()} for c in clips],
    )
    assert page.evaluate("(dt) => dt.files.length", transfer) == 2
    zone = page.locator("#drop")
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    assert "over" in (zone.get_attribute("class") or "").split()  # the zone shows it takes the drop
    assert page.locator("#uploads .upload").count() == 0  # nothing is sent before the drop
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    assert "over" not in (zone.get_attribute("class") or "").split()
    for clip, frames in zip(clips, (3, 4), strict=True):
        card = page.locator("#uploads .upload", has_text=clip.name)
        card.locator(".probe dd").first.wait_for(timeout=30_000)
        assert card.locator(".status").inner_text() == "uploaded and probed"
        assert f"{frames} frames" in card.locator(".probe").inner_text()
        assert card.locator(".actions .start").is_visible()
        (stored,) = (server.state_dir / "uploads").rglob(clip.name)
        assert stored.read_bytes() == clip.read_bytes()


@pytest.mark.slow
def test_legacy_options_and_the_video_stream_choice_reach_the_job(
    page: Any, server: UiServer, tmp_path: Path
) -> None:
    """A file with two real video streams: the card asks which one to upscale; that choice, the
    deinterlace mode and the SD clean-up preset are the job's (its spec), and the output is the
    chosen stream upscaled (the second one is 32x24)."""
    clip = make_streams(tmp_path / "two angles.mp4", second_video=True, audio="aac")
    page.goto(server.url + "/")
    page.select_option("#model", MODEL)
    page.select_option("#scale", "2.0")
    page.select_option("#container", ".mkv")
    page.select_option("#deinterlace", "field")
    page.select_option("#prefilter", "sd")
    page.set_input_files("#files", str(clip))
    card = page.locator("#uploads .upload").first
    card.locator(".actions").wait_for(state="visible", timeout=60_000)
    choice = card.locator(".video-stream-choice")
    assert card.locator(".video-stream").is_visible()
    assert choice.locator("option").all_inner_texts() == ["#0 video h264 64x48", "#1 video h264"]
    choice.select_option("1")
    card.locator(".start").click()
    link = card.locator(".status a").first
    link.wait_for(timeout=30_000)
    job_id = link.inner_text()
    spec = json.loads((server.state_dir.parent / "jobs" / job_id / "spec.json").read_text())
    assert spec["video_stream"] == 1 and spec["deinterlace"] == "field", spec
    assert spec["prefilter"] == "sd", spec
    page.goto(server.url + "/jobs")
    page.locator(f'#jobs tr[data-job="{job_id}"][data-state="done"]').wait_for(timeout=JOB_TIMEOUT_MS)
    [video] = [s for s in ffprobe(Path(spec["destination"]))["streams"] if s["codec_type"] == "video"]
    assert (video["width"], video["height"]) == (64, 48)  # stream 1 (32x24) at x2


@pytest.mark.slow
def test_one_video_stream_needs_no_choice(page: Any, server: UiServer, tmp_path: Path) -> None:
    clip = make_streams(tmp_path / "cover.mp4", cover="png")  # cover art is not a second video
    page.goto(server.url + "/")
    page.set_input_files("#files", str(clip))
    card = page.locator("#uploads .upload").first
    card.locator(".actions").wait_for(state="visible", timeout=60_000)
    assert not card.locator(".video-stream").is_visible()
