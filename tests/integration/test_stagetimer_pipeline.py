"""The pipeline's per-stage timer on a real clip: every stage of every thread is counted."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_engine_pipeline import FAST, _upscaler
from tests.mediagen import make_video
from vsrflow.engine.pipeline import upscale_video
from vsrflow.engine.stagetimer import NULL_TIMER, StageTimer


def test_timer_sees_every_stage(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", size=(64, 48), frames=7, fps="24")
    up = _upscaler(batch=3)
    timer = StageTimer()
    result = upscale_video(src, tmp_path / "out.mkv", upscaler=up, encoder=FAST, progress=False, timer=timer)
    s = timer.summary()
    assert result.frames == 7
    assert s["decode"]["calls"] == 7 and s["encode"]["calls"] == 7
    assert s["infer"]["calls"] == 3  # batches of 3, 3, 1
    assert s["h2d"]["calls"] == s["model"]["calls"] == s["d2h"]["calls"] == 3
    assert s["mux"]["calls"] == 1
    # nested stages fit inside their parent
    assert s["h2d"]["seconds"] + s["model"]["seconds"] + s["d2h"]["seconds"] <= s["infer"]["seconds"] + 1e-6
    assert up.timer is NULL_TIMER  # the run's timer is not left on the upscaler
