"""assemble_output: streams, metadata, colour, rotation, timestamps and validation of the final mux."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests import mediagen
from vsrflow.errors import InputError
from vsrflow.media.assemble import OutputValidationError, assemble_output
from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import probe
from vsrflow.media.reader import FrameReader
from vsrflow.media.writer import INTERMEDIATE_SUFFIX, EncoderOptions, FrameWriter

FAST = EncoderOptions(preset="ultrafast")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assemble")


def _identity(src: Path, work: Path, options: EncoderOptions = FAST) -> tuple[VideoInfo, Path]:
    """read -> write (no upscaling) into a video-only intermediate; returns (source info, intermediate)."""
    info = probe(src)
    mid = work / f"{src.stem}.mid{INTERMEDIATE_SUFFIX}"
    with (
        FrameReader(src, info) as reader,
        FrameWriter(mid, width=info.width, height=info.height, source=info, options=options) as writer,
    ):
        for frame in reader:
            writer.write(frame.image, frame.pts)
    return info, mid


def _packets(path: Path, index: int) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams[index]
        return [(p.pts, bytes(p)) for p in container.demux(stream) if p.size]


def _mean_rgb(path: Path) -> np.ndarray:
    with FrameReader(path) as reader:
        return np.mean([f.image.reshape(-1, 3).mean(0) for f in reader], axis=0)


@pytest.mark.parametrize(
    ("colour", "color_range", "suffix"),
    [("bt709", "tv", ".mp4"), ("bt601", "tv", ".mp4"), ("bt601", "pc", ".mkv"), (None, "tv", ".mp4")],
)
def test_flat_colour_survives(media: Path, colour: str | None, color_range: str, suffix: str) -> None:
    rgb = (180, 40, 90)
    src = mediagen.make_video(
        media / f"flat_{colour}_{color_range}{suffix}",
        size=(128, 96),
        frames=4,
        flat_rgb=rgb,
        colour=colour,
        color_range=color_range,
    )
    before = _mean_rgb(src)
    # The reader uses the tagged matrix (untagged SD: BT.601): within 1 level of the true colour...
    assert np.abs(before - rgb).max() <= 1.0
    info, mid = _identity(src, media)
    out = assemble_output(mid, info, media / f"flat_out_{colour}_{color_range}{suffix}")
    after = _mean_rgb(out.path)
    # ...and read -> write -> assemble -> read moves it by at most one level.
    assert np.abs(after - before).max() <= 1.0
    assert out.color_matrix == (info.color_matrix or "smpte170m")
    assert out.color_range == color_range


def test_wrong_matrix_would_be_caught(media: Path) -> None:
    # Sensitivity check for the test above: BT.601 vs BT.709 differ by far more than one level here.
    from vsrflow.media.colour import sws_matrix
    from vsrflow.media.reader import frame_to_rgb

    src = mediagen.make_video(
        media / "sens.mp4", size=(64, 48), frames=1, flat_rgb=(180, 40, 90), colour="bt709"
    )
    info = probe(src)
    wrong = VideoInfo(**{**info.__dict__, "color_matrix": "smpte170m"})
    with av.open(str(src)) as c:
        frame = next(c.decode(video=0))
        right_rgb = frame_to_rgb(frame, info).reshape(-1, 3).mean(0)
        wrong_rgb = frame_to_rgb(frame, wrong).reshape(-1, 3).mean(0)
    assert sws_matrix("bt709") != sws_matrix("smpte170m")
    assert np.abs(right_rgb - wrong_rgb).max() > 5


def test_mkv_all_streams_metadata_and_bit_identical_audio(media: Path) -> None:
    src = mediagen.make_video(
        media / "full.mkv", frames=12, audio_tracks=2, subtitles=("srt", "ass"), chapters=2, attachment=True
    )
    info, mid = _identity(src, media)
    out = media / "full_out.mkv"
    result = assemble_output(mid, info, out)
    assert [(s.kind, s.codec, s.language, s.title) for s in result.streams] == [
        (s.kind, s.codec, s.language, s.title) for s in info.streams
    ]
    assert [s.default for s in result.streams[1:]] == [s.default for s in info.streams[1:]]
    assert result.chapters == 2 and result.frame_count == 12
    assert result.duration == pytest.approx(info.duration, abs=1e-9)
    with av.open(str(out)) as c:
        assert c.metadata.get("title") == "vsrflow test"
        assert c.streams[5].metadata.get("mimetype") == "text/plain"
    for audio in info.audio_streams:
        assert _packets(src, audio.index) == _packets(out, audio.index)  # stream copy: same bytes
    # Video pts are the source's (A/V sync kept even though the video starts 21 ms after the audio).
    with FrameReader(out) as r:
        assert [f.pts for f in r] == [f.pts for f in FrameReader(src)]


def test_mov_text_in_mp4_kept(media: Path) -> None:
    src = mediagen.make_video(media / "mt.mp4", frames=10, audio_tracks=1, subtitles=("mov_text",))
    info, mid = _identity(src, media)
    result = assemble_output(mid, info, media / "mt_out.mp4")
    assert [(s.kind, s.codec, s.language) for s in result.streams] == [
        ("video", "h264", None),
        ("audio", "aac", "eng"),
        ("subtitle", "mov_text", "fra"),
    ]
    assert _packets(src, 1) == _packets(result.path, 1)


def test_mov_text_to_mkv_becomes_srt(media: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = mediagen.make_video(media / "mt2.mp4", frames=6, subtitles=("mov_text",))
    info, mid = _identity(src, media)
    with caplog.at_level(logging.WARNING, logger="vsrflow.media"):
        result = assemble_output(mid, info, media / "mt2_out.mkv")
    assert result.subtitle_streams[0].codec == "subrip"
    assert any("mov_text" in r.getMessage() for r in caplog.records)


def test_srt_into_mp4_converted_with_warning(media: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = mediagen.make_video(
        media / "srt.mkv", frames=8, audio_tracks=1, subtitles=("srt", "ass"), attachment=True
    )
    info, mid = _identity(src, media)
    with caplog.at_level(logging.WARNING, logger="vsrflow.media"):
        result = assemble_output(mid, info, media / "srt_out.mp4")
    assert [s.codec for s in result.subtitle_streams] == ["mov_text", "mov_text"]
    assert [s.language for s in result.subtitle_streams] == [s.language for s in info.subtitle_streams]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "converted to mov_text" in messages and "attachment" in messages


def test_rotation_sar_and_timescale_preserved(media: Path) -> None:
    src = mediagen.make_video(
        media / "rot.mp4", frames=6, rotation=90, sar="4/3", fps="30000/1001", audio_tracks=1
    )
    info, mid = _identity(src, media)
    result = assemble_output(mid, info, media / "rot_out.mp4")
    assert result.rotation == 90 and result.sar == Fraction(4, 3)
    assert result.time_base == info.time_base and result.frame_rate == Fraction(30000, 1001)
    with FrameReader(result.path) as r:
        assert [f.pts for f in r] == [i * 1001 for i in range(6)]


def test_vfr_assembled_exactly(media: Path) -> None:
    src = mediagen.make_video(media / "vfr.mp4", frames=12, vfr=True, audio_tracks=1)
    info, mid = _identity(src, media)
    result = assemble_output(mid, info, media / "vfr_out.mp4")
    assert result.is_vfr and result.frame_count == 12
    with FrameReader(src) as a, FrameReader(result.path) as b:
        assert [f.pts for f in a] == [f.pts for f in b]


def test_one_frame_video(media: Path) -> None:
    src = mediagen.make_video(media / "one.mp4", frames=1)
    info, mid = _identity(src, media)
    result = assemble_output(mid, info, media / "one_out.mp4")
    assert result.frame_count == 1


def test_validation_mismatch_raises_and_leaves_nothing(media: Path) -> None:
    src = mediagen.make_video(media / "val.mp4", frames=5, audio_tracks=1)
    info, mid = _identity(src, media)
    outdir = media / "val_out"
    outdir.mkdir()
    with pytest.raises(OutputValidationError, match="expected 6"):
        assemble_output(mid, info, outdir / "out.mp4", expected_frames=6)
    assert list(outdir.iterdir()) == []


def test_dropped_frames_are_caught(media: Path) -> None:
    src = mediagen.make_video(media / "drop.mp4", frames=8)
    info = probe(src)
    mid = media / "drop.mid.nut"
    with (
        FrameReader(src, info) as reader,
        FrameWriter(mid, width=64, height=48, source=info, options=FAST) as w,
    ):
        for frame in reader:
            if frame.index < 6:  # an upscaler that lost the last two frames
                w.write(frame.image, frame.pts)
    outdir = media / "drop_out"
    outdir.mkdir()
    with pytest.raises(OutputValidationError, match="6 video frames, expected 8"):
        assemble_output(mid, info, outdir / "out.mkv")
    assert list(outdir.iterdir()) == []


def test_unwritable_output_dir(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = mediagen.make_video(media / "ro.mp4", frames=2)
    info, mid = _identity(src, media)
    ro = media / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.geteuid() == 0:  # root ignores permission bits: simulate what access(2) says for a user
        monkeypatch.setattr("vsrflow.media.assemble.os.access", lambda *_a, **_k: False)
    try:
        with pytest.raises(InputError, match="not writable"):
            assemble_output(mid, info, ro / "out.mp4")
    finally:
        ro.chmod(0o700)


def test_missing_output_dir_and_bad_container(media: Path) -> None:
    src = mediagen.make_video(media / "md.mp4", frames=2)
    info, mid = _identity(src, media)
    with pytest.raises(InputError, match="does not exist"):
        assemble_output(mid, info, media / "nope" / "out.mp4")
    with pytest.raises(InputError, match="unsupported output container"):
        assemble_output(mid, info, media / "out.avi")
