"""probe() on generated inputs: every field, and an InputError naming the file for each bad input."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from tests import mediagen
from vsrflow.errors import InputError
from vsrflow.media.probe import probe


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe")


def test_basic_mp4_fields(media: Path) -> None:
    src = mediagen.make_video(media / "basic.mp4", size=(64, 48), frames=12, fps="25", audio_tracks=1)
    info = probe(src)
    assert (info.width, info.height, info.container, info.codec) == (64, 48, "mov", "h264")
    assert info.frame_rate == Fraction(25) and info.avg_frame_rate == Fraction(25)
    assert info.frame_count == 12
    assert info.duration == pytest.approx(12 / 25, abs=1e-9)
    assert info.time_base == Fraction(1, 12800) and info.start_pts == 0
    assert info.last_frame_duration == 512 and info.frame_duration_ticks == 512
    assert (info.pix_fmt, info.bit_depth, info.sar, info.rotation) == ("yuv420p", 8, Fraction(1), 0)
    assert not info.is_vfr and info.chapters == 0
    assert [s.kind for s in info.streams] == ["video", "audio"]
    assert info.streams[1].language == "eng"
    # Cross-check the packet count against ffprobe's own count.
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_packets",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "json",
            str(src),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(json.loads(out.stdout)["streams"][0]["nb_read_packets"]) == info.frame_count


def test_ntsc_rate_is_rational(media: Path) -> None:
    info = probe(mediagen.make_video(media / "ntsc.mp4", frames=10, fps="30000/1001"))
    assert info.frame_rate == Fraction(30000, 1001)
    assert info.frame_count == 10
    assert info.duration == pytest.approx(10 * 1001 / 30000, abs=1e-9)


def test_mkv_streams_languages_titles_chapters(media: Path) -> None:
    src = mediagen.make_video(
        media / "full.mkv", frames=12, audio_tracks=2, subtitles=("srt", "ass"), chapters=3, attachment=True
    )
    info = probe(src)
    assert info.container == "matroska" and info.frame_count == 12  # MKV has no nb_frames: counted
    kinds = [(s.kind, s.codec) for s in info.streams]
    assert kinds == [
        ("video", "h264"),
        ("audio", "aac"),
        ("audio", "aac"),
        ("subtitle", "subrip"),
        ("subtitle", "ass"),
        ("attachment", "unknown"),
    ]
    assert [s.language for s in info.audio_streams] == ["eng", "fra"]
    assert [s.title for s in info.audio_streams] == ["Audio 0", "Audio 1"]
    assert info.chapters == 3
    assert len(info.non_video_streams) == 5


def test_vfr_detected(media: Path) -> None:
    info = probe(mediagen.make_video(media / "vfr.mp4", frames=12, vfr=True))
    assert info.is_vfr and info.frame_count == 12
    # frame n at (n + n//2)/25: last frame 11 -> slot 16, plus one 40 ms frame.
    assert info.duration == pytest.approx(17 / 25, abs=1e-9)


def test_ten_bit_colour_tags(media: Path) -> None:
    info = probe(mediagen.make_video(media / "t10.mkv", frames=5, pix_fmt="yuv420p10le", colour="bt709"))
    assert (info.pix_fmt, info.bit_depth) == ("yuv420p10le", 10)
    assert (info.color_primaries, info.color_transfer, info.color_matrix, info.color_range) == (
        "bt709",
        "bt709",
        "bt709",
        "tv",
    )


def test_bt601_tags(media: Path) -> None:
    info = probe(mediagen.make_video(media / "c601.mp4", frames=3, colour="bt601", color_range="pc"))
    assert (info.color_matrix, info.color_range) == ("smpte170m", "pc")


def test_rotation_and_sar(media: Path) -> None:
    info = probe(mediagen.make_video(media / "rot.mp4", frames=5, rotation=90, sar="4/3"))
    assert info.rotation == 90 and info.sar == Fraction(4, 3)
    assert (info.width, info.height) == (64, 48)  # pixels are not rotated
    assert probe(mediagen.make_video(media / "rot270.mp4", frames=2, rotation=270)).rotation == 270


def test_one_frame_video_is_valid(media: Path) -> None:
    info = probe(mediagen.make_video(media / "one.mp4", frames=1))
    assert info.frame_count == 1 and info.duration == pytest.approx(0.04)


def test_odd_size(media: Path) -> None:
    info = probe(mediagen.make_video(media / "odd.mkv", size=(321, 241), frames=3))
    assert (info.width, info.height, info.codec) == (321, 241, "ffv1")


BAD_INPUTS = {
    "missing": (lambda d: d / "nope.mp4", "not found"),
    "zero": (lambda d: mediagen.make_zero_byte(d / "zero.mp4"), "empty"),
    "truncated": (lambda d: mediagen.make_truncated_mp4(d / "trunc.mp4"), "moov atom missing"),
    "text": (lambda d: mediagen.make_text_file(d / "text.mp4"), "not a recognisable media file"),
    "audio_only": (lambda d: mediagen.make_audio_only(d / "audio.mp4"), "no video stream"),
    "undecodable": (lambda d: mediagen.make_undecodable(d / "bad.mkv"), "cannot be decoded|damaged"),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_inputs_raise_input_error_naming_the_file(media: Path, kind: str) -> None:
    make, pattern = BAD_INPUTS[kind]
    path = make(media)
    with pytest.raises(InputError, match=pattern) as err:
        probe(path)
    assert str(path) in str(err.value)
    assert err.value.hint  # every error says what to do


def test_edit_list_preroll_is_not_counted(media: Path) -> None:
    # A stream-copy cut between keyframes (``ffmpeg -ss 0.3 -i in.mp4 -c copy``, what phone and NLE
    # trims produce) keeps the GOP's earlier packets, flagged discard by the edit list: they are
    # decoded for reference and never shown. Counting them made every such file "damaged"
    # (decoded 22 frames but the probe counted 30 packets).
    from vsrflow.media.reader import FrameReader

    src = mediagen.make_video(media / "long.mp4", frames=30, audio_tracks=1)
    cut = media / "cut.mp4"
    mediagen.run([mediagen.FFMPEG, "-v", "error", "-y", "-ss", "0.3", "-i", str(src), "-c", "copy", str(cut)])
    info = probe(cut)
    with FrameReader(cut, info) as reader:
        pts = [f.pts for f in reader]
    assert info.frame_count == len(pts) == 22  # frames shown from 0.32 s on (ffprobe -count_frames)
    assert info.start_pts == min(pts) == 0
    assert info.duration == pytest.approx(len(pts) / 25, abs=1e-9)


@pytest.mark.parametrize("faststart", [True, False])
def test_an_mp4_cut_short_is_a_damaged_source(media: Path, faststart: bool) -> None:
    """Half a file: refused at probe as damaged (not planned short, then failing in a chunk)."""
    full = media / f"whole-{faststart}.mp4"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-t", "4",
            "-c:v", "libx264", "-g", "25", *(["-movflags", "+faststart"] if faststart else []), str(full),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    assert probe(full).frame_count == 100  # the whole file is fine
    half = media / f"half-{faststart}.mp4"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        probe(half)
    assert str(half) in str(err.value)
    if faststart:  # the index survives: it says how much is missing
        assert "damaged source" in str(err.value) and "lists 100 video frames" in str(err.value)
        assert "whole file again" in str(err.value.hint)
