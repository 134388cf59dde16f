"""Pure-function tests of the media layer (no files)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vsrflow.errors import InputError
from vsrflow.media.colour import MATRICES, effective_matrix, effective_range, name_of, value_of
from vsrflow.media.info import StreamInfo, VideoInfo
from vsrflow.media.probe import _is_vfr
from vsrflow.media.writer import EncoderOptions, FrameWriter, encodable_size, pad_to


def _info(**kw: object) -> VideoInfo:
    base: dict[str, object] = dict(
        path=Path("in.mp4"),
        container="mov",
        width=64,
        height=48,
        frame_rate=Fraction(25),
        avg_frame_rate=Fraction(25),
        time_base=Fraction(1, 12800),
        frame_count=10,
        duration=0.4,
        start_pts=0,
        sar=Fraction(1),
        rotation=0,
        pix_fmt="yuv420p",
        bit_depth=8,
        color_primaries=None,
        color_transfer=None,
        color_matrix=None,
        color_range=None,
        is_vfr=False,
        video_stream_index=0,
        streams=(StreamInfo(0, "video", "h264"), StreamInfo(1, "audio", "aac", language="eng")),
        chapters=0,
    )
    base.update(kw)
    return VideoInfo(**base)  # type: ignore[arg-type]


def test_effective_matrix_defaults_by_size() -> None:
    assert effective_matrix(None, 720, 576) == "smpte170m"
    assert effective_matrix(None, 1280, 720) == "bt709"
    assert effective_matrix(None, 1024, 600) == "bt709"
    assert effective_matrix("bt709", 320, 240) == "bt709"
    assert effective_matrix("bt470bg", 1920, 1080) == "bt470bg"


def test_effective_range() -> None:
    assert effective_range(None, "yuv420p") == "tv"
    assert effective_range(None, "yuvj420p") == "pc"
    assert effective_range("pc", "yuv420p") == "pc"


def test_enum_names_round_trip() -> None:
    assert name_of(MATRICES, 1) == "bt709"
    assert name_of(MATRICES, 2) is None
    assert value_of(MATRICES, "smpte170m") == 6
    assert value_of(MATRICES, None) is None


@pytest.mark.parametrize(
    ("size", "pix_fmt", "expected"),
    [
        ((321, 241), "yuv420p", (322, 242)),
        ((321, 241), "yuv420p10le", (322, 242)),
        ((321, 241), "yuv422p", (322, 241)),
        ((321, 241), "yuv444p", (321, 241)),
        ((321, 241), "bgr0", (321, 241)),
        ((640, 360), "yuv420p", (640, 360)),
    ],
)
def test_encodable_size(size: tuple[int, int], pix_fmt: str, expected: tuple[int, int]) -> None:
    assert encodable_size(*size, pix_fmt) == expected


def test_pad_to_replicates_edges() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = pad_to(img, 4, 3)
    assert out.shape == (3, 4, 3)
    assert (out[2, :3] == img[1]).all() and (out[:2, 3] == img[:, 2]).all()


def test_pix_fmt_derived_from_bit_depth() -> None:
    assert EncoderOptions().resolved_pix_fmt(_info()) == "yuv420p"
    assert EncoderOptions().resolved_pix_fmt(_info(bit_depth=10)) == "yuv420p10le"
    assert EncoderOptions(pix_fmt="yuv444p").resolved_pix_fmt(_info()) == "yuv444p"


def test_writer_rejects_unencodable_size(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="322x242"):
        FrameWriter(tmp_path / "o.nut", width=321, height=241, source=_info(), options=EncoderOptions())


def test_writer_rejects_bad_images(tmp_path: Path) -> None:
    w = FrameWriter(tmp_path / "o.nut", width=64, height=48, source=_info(), options=EncoderOptions())
    with pytest.raises(ValueError, match="RGB image"):
        w.write(np.zeros((48, 64), np.uint8), 0)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        w.write(np.zeros((48, 64, 3), np.float32), 0)
    w.abort()
    assert not list(tmp_path.iterdir())


def test_is_vfr_tolerates_millisecond_rounding() -> None:
    assert not _is_vfr([0, 33, 67, 100, 133, 167, 200])  # 29.97 fps in Matroska
    assert _is_vfr([0, 40, 120, 160, 240, 280])
    assert not _is_vfr([0])


def test_info_properties() -> None:
    info = _info(sar=Fraction(4, 3))
    assert info.frame_duration == Fraction(1, 25)
    assert info.frame_duration_ticks == 512
    assert [s.kind for s in info.non_video_streams] == ["audio"]
    assert info.display_aspect_ratio == Fraction(64 * 4, 48 * 3)
    assert info.seconds(1024) == Fraction(2, 25)


def test_encoder_and_container_checked_before_any_work() -> None:
    # `--codec ffv1 -o out.mp4` used to compute every frame, then fail in the final mux (exit 1);
    # a typo in --codec named the hidden intermediate file. Both are now InputErrors up front.
    from vsrflow.media.assemble import check_video_codec
    from vsrflow.media.writer import check_encoder

    assert check_encoder("libx264") == "h264" and check_encoder("libx264rgb") == "h264"
    assert check_encoder("ffv1") == "ffv1"
    for bad in ("nosuchcodec", "aac"):
        with pytest.raises(InputError, match="--codec"):
            check_encoder(bad)
    with pytest.raises(InputError, match=r"out\.mp4.*cannot hold ffv1") as err:
        check_video_codec(Path("out.mp4"), "ffv1")
    assert ".mkv" in (err.value.hint or "")
    with pytest.raises(InputError, match="cannot hold ffv1"):
        check_video_codec(Path("out.mov"), "ffv1")
    for ok in ("out.mkv", "out.mp4", "out.mov", "out.m4v"):
        check_video_codec(Path(ok), "h264")
        check_video_codec(Path(ok), "hevc")
    check_video_codec(Path("out.mkv"), "ffv1")


def test_hevc_in_mp4_tagged_hvc1() -> None:
    # ffmpeg's default 'hev1' sample entry does not play in QuickTime/Safari/iOS.
    from vsrflow.media.assemble import build_argv

    src = _info()
    video = _info(codec="hevc")
    argv = build_argv(Path("v.nut"), video, src, Path("o.mp4"), "mp4", [])
    assert argv[argv.index("-tag:v:0") + 1] == "hvc1"
    assert "-tag:v:0" not in build_argv(Path("v.nut"), _info(codec="h264"), src, Path("o.mp4"), "mp4", [])
    assert "-tag:v:0" not in build_argv(Path("v.nut"), video, src, Path("o.mkv"), "matroska", [])
