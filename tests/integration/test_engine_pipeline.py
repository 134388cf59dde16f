"""Streaming pipeline end to end: real ffmpeg-made clips, real PyAV decode/encode, a tiny net."""

from __future__ import annotations

import queue
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.mediagen import make_video
from vsrflow.engine import pipeline
from vsrflow.engine.pipeline import PipelineResult, _Stages, upscale_video
from vsrflow.engine.upscaler import Upscaler
from vsrflow.errors import ExternalToolError, InputError
from vsrflow.media.probe import probe
from vsrflow.media.writer import EncoderOptions

NEAREST_X2 = "nearest_x2"


class NearestX2(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


class FailAfter(nn.Module):
    """Raises on call ``n`` (1-based): a model error in the middle of a video."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.n:
            raise ValueError("model exploded mid-video")
        return F.interpolate(x, scale_factor=2, mode="nearest")


def _upscaler(module: nn.Module | None = None, **kw: object) -> Upscaler:
    from vsrflow.models.descriptor import ModelDescriptor

    desc = ModelDescriptor(arch=NEAREST_X2, scale=2, receptive_radius=0)
    return Upscaler(module or NearestX2(), desc, device="cpu", **kw)  # type: ignore[arg-type,unused-ignore]


FAST = EncoderOptions(codec="libx264", crf=18, preset="ultrafast")


def _pts_seconds(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.time_base is not None
        pts = sorted(int(p.pts) for p in c.demux(s) if p.pts is not None)
    return [(p - pts[0]) * s.time_base for p in pts]


def _stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vsrflow-")]


def _assert_clean(tmp_path: Path, keep: set[str]) -> None:
    assert {p.name for p in tmp_path.iterdir()} == keep
    deadline = time.monotonic() + 30  # threads end promptly; the bound only tolerates a loaded machine
    while _stage_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _stage_threads()


@pytest.mark.parametrize(("suffix", "vfr", "batch"), [(".mkv", False, 3), (".mp4", True, 2)])
def test_frames_and_pts_preserved(tmp_path: Path, suffix: str, vfr: bool, batch: int) -> None:
    src = make_video(tmp_path / f"in{suffix}", size=(64, 48), frames=13, fps="30000/1001", vfr=vfr,
                     audio_tracks=1)  # fmt: skip
    out = tmp_path / f"out{suffix}"
    calls: list[tuple[int, int]] = []
    result = upscale_video(src, out, upscaler=_upscaler(batch=batch), encoder=FAST,
                           progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    assert isinstance(result, PipelineResult)
    assert result.frames == 13 and result.output.frame_count == 13
    assert (result.output.width, result.output.height) == (128, 96)
    assert calls[-1] == (13, 13) and len(calls) == -(-13 // batch)
    a, b = _pts_seconds(src), _pts_seconds(out)
    assert len(a) == len(b) == 13
    # Output time base may be coarser (1/1000 in MKV): equal to its resolution.
    assert all(abs(x - y) <= Fraction(1, 1000) for x, y in zip(a, b, strict=True))
    assert len(probe(out).audio_streams) == 1
    _assert_clean(tmp_path, {src.name, out.name})


def test_ten_bit_source_stays_ten_bit(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", size=(64, 48), frames=4, pix_fmt="yuv420p10le")
    out = tmp_path / "out.mkv"
    result = upscale_video(src, out, upscaler=_upscaler(), encoder=FAST, progress=False)
    assert result.output.bit_depth == 10 and result.output.frame_count == 4


def test_fractional_scale_resizes_to_encodable_size(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", size=(64, 48), frames=3)
    out = tmp_path / "out.mkv"
    # 64x48 at 1.3 -> 83x62; 4:2:0 needs even sides -> one resize straight to 84x62.
    result = upscale_video(src, out, upscaler=_upscaler(scale=1.3), encoder=FAST, progress=False)
    assert (result.output.width, result.output.height) == (84, 62)


def test_odd_native_output_is_edge_padded_not_resampled(tmp_path: Path) -> None:
    from vsrflow.models.descriptor import ModelDescriptor

    class NearestX3(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, scale_factor=3, mode="nearest")

    src = make_video(tmp_path / "in.mkv", size=(33, 25), frames=3)
    out = tmp_path / "out.mkv"
    up = Upscaler(NearestX3(), ModelDescriptor(arch="nearest_x3", scale=3), device="cpu")
    lossless = EncoderOptions(codec="libx264rgb", crf=0, preset="ultrafast", pix_fmt="rgb24")
    yuv = upscale_video(src, tmp_path / "yuv.mkv", upscaler=up, encoder=FAST, progress=False)
    assert (yuv.output.width, yuv.output.height) == (100, 76)  # 99x75 padded to even
    rgb = upscale_video(src, out, upscaler=up, encoder=lossless, progress=False)
    assert (rgb.output.width, rgb.output.height) == (99, 75)  # RGB needs no padding
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    # Native output is never resampled: each 3x3 block is one source pixel.
    assert (frame[0:3, 0:3] == frame[0, 0]).all()


def test_model_error_mid_video_propagates_and_cleans_up(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", size=(64, 48), frames=30)
    out = tmp_path / "out.mkv"
    with pytest.raises(ValueError, match="exploded mid-video"):
        upscale_video(src, out, upscaler=_upscaler(FailAfter(5)), encoder=FAST, progress=False)
    _assert_clean(tmp_path, {src.name})


def test_encoder_error_propagates_and_cleans_up(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", size=(64, 48), frames=30)
    out = tmp_path / "out.mkv"
    bad = EncoderOptions(codec="libx264", crf=18, preset="no-such-preset")
    with pytest.raises(ExternalToolError, match="no-such-preset"):
        upscale_video(src, out, upscaler=_upscaler(), encoder=bad, progress=False)
    _assert_clean(tmp_path, {src.name})


def test_keyboard_interrupt_stops_everything(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", size=(64, 48), frames=40)
    out = tmp_path / "out.mkv"

    def interrupt(done: int, total: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_video(src, out, upscaler=_upscaler(), encoder=FAST, progress=interrupt)
    _assert_clean(tmp_path, {src.name})


def test_output_equal_to_input_is_rejected(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", size=(64, 48), frames=2)
    with pytest.raises(InputError, match="is the input"):
        upscale_video(src, src, upscaler=_upscaler(), encoder=FAST, progress=False)


# ----------------------------------------------------------------------------- stage plumbing


def test_queues_are_bounded() -> None:
    stages = _Stages(batch=3)
    assert stages.q_in.maxsize == pipeline.IN_QUEUE_BATCHES * 3
    assert stages.q_out.maxsize == pipeline.OUT_QUEUE_BATCHES


def test_blocked_put_and_get_return_on_stop() -> None:
    stages = _Stages(batch=1)
    for i in range(stages.q_in.maxsize):
        assert stages.put(stages.q_in, i)
    results: list[object] = []
    producer = threading.Thread(target=lambda: results.append(stages.put(stages.q_in, "x")))
    consumer = threading.Thread(target=lambda: results.append(stages.get(stages.q_out)))
    producer.start()
    consumer.start()
    time.sleep(0.3)
    assert producer.is_alive() and consumer.is_alive()  # blocked on a full / empty queue
    stages.fail(RuntimeError("elsewhere"))
    producer.join(2)
    consumer.join(2)
    assert not producer.is_alive() and not consumer.is_alive()
    assert sorted(map(str, results)) == ["False", "None"]
    assert isinstance(stages.error, RuntimeError)
    with pytest.raises(queue.Full):
        stages.q_in.put_nowait("overflow")
