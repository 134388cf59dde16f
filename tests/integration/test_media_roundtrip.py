"""FrameReader -> FrameWriter round trips: exactness, bit depth, timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import mediagen
from vsrflow.errors import InputError
from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import probe
from vsrflow.media.reader import Frame, FrameReader
from vsrflow.media.writer import EncoderOptions, FrameWriter, encodable_size, pad_to


def _read(path: Path) -> list[Frame]:
    with FrameReader(path) as reader:
        return list(reader)


def _copy(src: Path, out: Path, options: EncoderOptions, info: VideoInfo | None = None) -> list[Frame]:
    info = info or probe(src)
    frames = _read(src)
    with FrameWriter(out, width=info.width, height=info.height, source=info, options=options) as writer:
        for f in frames:
            writer.write(f.image, f.pts)
    return frames


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("roundtrip")


def test_reader_frames(media: Path) -> None:
    src = mediagen.make_video(media / "r.mp4", size=(64, 48), frames=6)
    frames = _read(src)
    assert [f.index for f in frames] == list(range(6))
    assert [f.pts for f in frames] == [i * 512 for i in range(6)]
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8


@pytest.mark.parametrize(("codec", "pix_fmt", "crf"), [("ffv1", "bgr0", None), ("libx264rgb", "rgb24", 0)])
def test_rgb_intermediate_is_bit_exact(media: Path, codec: str, pix_fmt: str, crf: int | None) -> None:
    # An RGB pixel format skips the YUV matrix, so RGB in == RGB out exactly (what later tests of
    # the engine compare against).
    src = mediagen.make_video(media / "exact.mkv", size=(64, 48), frames=5)
    out = media / f"exact_{codec}.nut"
    frames = _copy(src, out, EncoderOptions(codec=codec, pix_fmt=pix_fmt, crf=crf, preset="ultrafast"))
    back = _read(out)
    assert len(back) == len(frames)
    src_tb, out_tb = probe(src).time_base, probe(out).time_base
    for a, b in zip(frames, back, strict=True):
        assert a.pts * src_tb == b.pts * out_tb
        np.testing.assert_array_equal(a.image, b.image)


def test_sixteen_bit_rgb_is_bit_exact(media: Path) -> None:
    src = mediagen.make_video(media / "deep.mkv", frames=3, pix_fmt="yuv420p10le", codec="libx264")
    out = media / "deep_rgb.nut"
    frames = _copy(src, out, EncoderOptions(codec="ffv1", pix_fmt="gbrp16le"))
    back = _read(out)
    assert back[0].image.dtype == np.uint16
    for a, b in zip(frames, back, strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_yuv_round_trip_within_tolerance(media: Path) -> None:
    # YUV 4:2:0 -> RGB -> 4:2:0 cannot be exact: chroma is upsampled (bilinear) for RGB and averaged
    # again on the way back, which softens colour edges. Lossless ffv1 isolates that effect: on
    # smptebars (broad bars, a few sharp edges) most pixels are within one level; measured mean 1.11,
    # max at bar edges only.
    src = mediagen.make_video(media / "bars.mkv", size=(320, 240), frames=3, pattern="smptebars")
    out = media / "bars_ffv1.nut"
    frames = _copy(src, out, EncoderOptions(codec="ffv1"))
    back = _read(out)
    for a, b in zip(frames, back, strict=True):
        diff = np.abs(a.image.astype(np.int32) - b.image.astype(np.int32))
        assert diff.mean() < 1.5
        assert np.median(diff) <= 1
        assert np.percentile(diff, 90) <= 3


def test_ten_bit_stays_ten_bit(media: Path) -> None:
    src = mediagen.make_video(media / "t10.mkv", frames=4, pix_fmt="yuv420p10le", colour="bt709")
    frames = _read(src)
    assert frames[0].image.dtype == np.uint16 and frames[0].image.max() > 255
    out = media / "t10_out.nut"
    _copy(src, out, EncoderOptions(preset="ultrafast"))
    info = probe(out)
    assert (info.pix_fmt, info.bit_depth, info.color_matrix, info.color_range) == (
        "yuv420p10le",
        10,
        "bt709",
        "tv",
    )


@pytest.mark.parametrize("name", ["vfr.mp4", "vfr.mkv"])
def test_vfr_pts_preserved_exactly(media: Path, name: str) -> None:
    src = mediagen.make_video(media / name, frames=12, vfr=True)
    out = media / f"{name}.out.nut"
    frames = _copy(src, out, EncoderOptions(preset="ultrafast"))
    src_info, out_info = probe(src), probe(out)
    assert out_info.is_vfr and out_info.frame_count == 12
    # NUT may pick a finer time base: compare exact times in seconds.
    src_t = [f.pts * src_info.time_base for f in frames]
    out_t = [f.pts * out_info.time_base for f in _read(out)]
    assert src_t == out_t
    assert out_info.duration == pytest.approx(src_info.duration, abs=1e-9)


def test_odd_size_needs_padding(media: Path) -> None:
    src = mediagen.make_video(media / "odd.mkv", size=(321, 241), frames=2)
    info = probe(src)
    with pytest.raises(InputError, match="322x242"):
        FrameWriter(media / "odd.nut", width=321, height=241, source=info)
    w, h = encodable_size(321, 241, "yuv420p")
    with FrameWriter(
        media / "odd.nut", width=w, height=h, source=info, options=EncoderOptions(preset="ultrafast")
    ) as writer:
        for f in _read(src):
            writer.write(pad_to(f.image, w, h), f.pts)  # type: ignore[arg-type]
    assert (probe(media / "odd.nut").width, probe(media / "odd.nut").height) == (322, 242)


def test_writer_failure_leaves_nothing(media: Path) -> None:
    src = mediagen.make_video(media / "f.mp4", frames=3)
    info = probe(src)
    out = media / "fail" / "x.nut"
    out.parent.mkdir()
    with pytest.raises(RuntimeError), FrameWriter(out, width=64, height=48, source=info) as writer:
        for f in _read(src):
            writer.write(f.image, f.pts)
        raise RuntimeError("boom")
    assert list(out.parent.iterdir()) == []


def test_pts_must_increase(media: Path) -> None:
    info = probe(mediagen.make_video(media / "p.mp4", frames=2))
    writer = FrameWriter(media / "p.nut", width=64, height=48, source=info)
    img = np.zeros((48, 64, 3), np.uint8)
    writer.write(img, 512)
    with pytest.raises(ValueError, match="increase"):
        writer.write(img, 512)
    writer.abort()


def test_bframe_encoder_keeps_absolute_pts(media: Path) -> None:
    # x264 above ultrafast uses B-frames: the first dts lies below the first pts, and the muxer's
    # default shift then delayed EVERY timestamp by two frames (the video lagged the audio by 80 ms
    # after the final mux). The intermediate must hold the caller's pts exactly, not just their gaps.
    src = mediagen.make_video(media / "bf.mp4", size=(64, 48), frames=8)
    out = media / "bf_medium.nut"
    frames = _copy(src, out, EncoderOptions(preset="medium"))
    src_tb, out_info = probe(src).time_base, probe(out)
    assert out_info.start_pts == 0
    assert [f.pts * out_info.time_base for f in _read(out)] == [f.pts * src_tb for f in frames]


def test_ten_bit_flat_colour_reads_right(media: Path) -> None:
    # swscale's FULL_CHR_H_INT path to rgb48 read a flat (64, 128, 192) 10-bit frame as (1, 3, 192):
    # every 10-bit video was upscaled with wrecked colours.
    src = mediagen.make_video(
        media / "flat10.mkv", frames=2, pix_fmt="yuv420p10le", codec="libx264", flat_rgb=(64, 128, 192)
    )
    image = _read(src)[0].image
    assert image.dtype == np.uint16
    np.testing.assert_allclose(image.reshape(-1, 3).mean(0) / 257, (64, 128, 192), atol=1.0)
    out = media / "flat10_id.nut"
    _copy(src, out, EncoderOptions(preset="ultrafast", crf=0))
    back = _read(out)[0].image
    np.testing.assert_allclose(back.reshape(-1, 3).mean(0) / 257, (64, 128, 192), atol=1.0)
