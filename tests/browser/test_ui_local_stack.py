"""The page in local-stack mode, in a real browser: the whole event path behind the page.

``vsrflow local up`` (moto server with the stack deployed, the Lambda runner, the SSM agent shim,
the local Slurm) and ``vsrflow ui --local-stack``: the browser uploads to the stack's bucket
under ``uploads/anime/``, the bucket event runs the trigger, the head node's Slurm chain upscales
and delivers, and the page shows the job reach done from ``status.json``; the download is the
delivered object (presigned), checked with ffprobe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import UiServer, ffprobe, screenshot, start_ui, stop_ui
from tests.conftest import REPO, run_cli
from tests.mediagen import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TEMPLATE = REPO / "infra" / "cfn" / "vsrflow.yaml"
SIZE = (64, 48)
FRAMES = 12
JOB_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str]) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("ui-stack")
    base = ["local", "--state-dir", str(state_dir)]
    args = ["up", "--template", str(TEMPLATE), "--retry-delay", "1", "--head-env", "OMP_NUM_THREADS=1"]
    proc = run_cli([*base, *args], model_env, timeout=240)
    try:
        assert proc.returncode == 0, f"local up failed:\n{proc.stdout}\n{proc.stderr}"
        yield state_dir
    finally:
        down = run_cli([*base, "down"], model_env, timeout=120)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str], stack_dir: Path
) -> Iterator[UiServer]:
    started = start_ui(
        tmp_path_factory.mktemp("ui-ls"), model_env, "--local-stack", "--stack-dir", str(stack_dir)
    )
    try:
        yield started
    finally:
        stop_ui(started)


def test_upload_runs_the_event_path(browser: Any, server: UiServer, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "tape.mp4", size=SIZE, frames=FRAMES, audio_tracks=1)
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        assert "mode: local-stack" in page.inner_text("#mode")
        page.select_option("#folder", "anime")
        page.set_input_files("#files", str(clip))
        said = "document.querySelector('#uploads .status').textContent"
        page.wait_for_function(f"() => /uploaded to|failed|refused|error/i.test({said})", timeout=60_000)
        status = page.inner_text("#uploads .status")
        assert "uploaded to uploads/anime/tape.mp4" in status, status

        page.goto(server.url + "/jobs")
        done = page.locator('#jobs tr[data-state="done"]', has_text="tape.mp4")
        failed = page.locator('#jobs tr[data-state="failed"]', has_text="tape.mp4")
        done.or_(failed).first.wait_for(timeout=JOB_TIMEOUT_MS)
        assert failed.count() == 0, failed.inner_text()
        assert "1/1" in done.inner_text() or "chunks" in done.inner_text()
        with page.expect_download() as info:
            done.locator("a", has_text="download").click()
        saved = tmp_path / "result.mp4"
        info.value.save_as(saved)
        assert info.value.suggested_filename == "tape_x2.mp4"
        streams = ffprobe(saved)["streams"]
        video = next(s for s in streams if s["codec_type"] == "video")
        assert (video["width"], video["height"]) == (SIZE[0] * 2, SIZE[1] * 2)
        assert int(video["nb_read_frames"]) == FRAMES
        assert [s["codec_type"] for s in streams].count("audio") == 1
        screenshot(page, "ui-jobs-local-stack.png")
    finally:
        context.close()
