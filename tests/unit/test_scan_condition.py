"""Scan-type rules and conditioning arithmetic on counts (no media: the media tests are in
tests/integration/test_legacy_sources.py)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vsrflow.errors import InputError
from vsrflow.media.condition import DEINTERLACE_MODES, Conditioning, choose_conditioning
from vsrflow.media.info import VideoInfo
from vsrflow.media.scan import SCAN_OVERRIDES, IdetCounts, classify
from vsrflow.workflow.job.plan import plan_chunks
from vsrflow.workflow.job.spec import DEINTERLACE_CHOICES, SCAN_CHOICES, JobSpec

NTSC = Fraction(30000, 1001)
PAL = Fraction(25)
#: idet over 40 frames of a 3:2 pulldown (measured on a generated telecine clip: 8 + 8 repeated).
PULLDOWN = IdetCounts(tff=40, repeated_top=8, repeated_bottom=8, repeated_neither=24)
WOVEN_TFF = IdetCounts(tff=40, repeated_neither=40)
WOVEN_BFF = IdetCounts(bff=40, repeated_neither=40)
PROGRESSIVE = IdetCounts(progressive=40, repeated_neither=40)
STATIC = IdetCounts(undetermined=40, repeated_neither=40)


def _info(frames: int = 60, rate: Fraction = NTSC, tb: Fraction = Fraction(1, 90000)) -> VideoInfo:
    return VideoInfo(
        path=Path("in.mpg"), container="mpeg", width=64, height=48, frame_rate=rate,
        avg_frame_rate=rate, time_base=tb, frame_count=frames, duration=float(frames / rate),
        start_pts=0, sar=Fraction(1), rotation=0, pix_fmt="yuv420p", bit_depth=8,
        color_primaries=None, color_transfer=None, color_matrix=None, color_range=None,
        is_vfr=False, video_stream_index=0, streams=(), chapters=0, field_order="tt",
    )  # fmt: skip


def test_pulldown_at_ntsc_is_telecine_never_at_pal() -> None:
    assert classify("tt", NTSC, PULLDOWN).kind == "telecine"
    pal = classify("tt", PAL, PULLDOWN)
    assert (pal.kind, pal.parity) == ("interlaced", "tff")  # PAL is never inverse-telecined
    # Camera-native 29.97i repeats no field: deinterlaced, not IVTC.
    assert classify("tt", NTSC, WOVEN_TFF).kind == "interlaced"


def test_flag_and_content() -> None:
    assert classify("bb", PAL, WOVEN_BFF).parity == "bff"
    # Flag and content disagree on the parity: the content wins, and the note names --scan.
    mixed = classify("tt", PAL, WOVEN_BFF)
    assert (mixed.kind, mixed.parity) == ("interlaced", "bff")
    assert "--scan tff" in mixed.notes[0]
    # Interlaced flag, progressive content: the safe choice (deinterlace) and a warning.
    psf = classify("tt", PAL, PROGRESSIVE)
    assert psf.kind == "interlaced" and "--deinterlace off" in psf.notes[0]
    # Interlaced flag, static content: deinterlace, noted.
    assert classify("bb", PAL, STATIC).notes
    # Progressive flag is trusted; interlaced-looking content is only noted.
    flagged = classify("progressive", PAL, WOVEN_TFF)
    assert flagged.kind == "progressive" and "--scan tff" in flagged.notes[0]
    # No flag: the content decides.
    assert classify("unknown", PAL, WOVEN_BFF).parity == "bff"
    assert classify("unknown", PAL, STATIC).kind == "progressive"
    assert classify("unknown", PAL, None).kind == "progressive"


def test_overrides() -> None:
    assert classify("tt", PAL, WOVEN_TFF, "progressive").kind == "progressive"
    assert classify("progressive", PAL, None, "bff").parity == "bff"
    assert classify("unknown", NTSC, None, "telecine").kind == "telecine"
    with pytest.raises(InputError, match="--scan"):
        classify("tt", PAL, None, "weird")


def test_choose_conditioning() -> None:
    tele = classify("tt", NTSC, PULLDOWN)
    inter = classify("bb", PAL, WOVEN_BFF)
    prog = classify("progressive", PAL, PROGRESSIVE)
    assert choose_conditioning(tele, "frame").to_text() == "ivtc:tff"
    assert choose_conditioning(tele, "field").to_text() == "ivtc:tff"
    assert choose_conditioning(inter, "frame").to_text() == "bwdif:bff"
    assert choose_conditioning(inter, "field").to_text() == "bwdif-field:bff"
    assert not choose_conditioning(inter, "off").active
    assert not choose_conditioning(prog, "field").active
    with pytest.raises(InputError, match="--deinterlace"):
        choose_conditioning(inter, "fast")


def test_conditioned_timeline() -> None:
    info = _info(frames=62)
    ivtc = Conditioning("ivtc", "tff")
    out = ivtc.output_info(info)
    assert out.frame_count == 62 - 12 == ivtc.output_count(62)  # a partial last cycle keeps all
    assert out.frame_rate == Fraction(24000, 1001) and out.field_order == "progressive"
    pts = ivtc.output_pts(info, [i * 3003 for i in range(62)])
    assert pts[:3] == [0, 3754, 7508]  # 3753.75 ticks per frame, rounded once per frame
    assert ivtc.source_index(24) == 30
    with pytest.raises(ValueError):
        ivtc.source_index(25)
    field = Conditioning("bwdif-field", "bff")
    pal = _info(frames=4, rate=PAL)
    fout = field.output_info(pal)
    assert (fout.frame_count, fout.frame_rate, fout.time_base) == (8, 50, Fraction(1, 180000))
    assert field.output_pts(pal, [0, 3600, 7200, 10800]) == [0, 3600, 7200, 10800, 14400, 18000, 21600, 25200]
    assert Conditioning.from_text("bwdif:bff") == Conditioning("bwdif", "bff")
    assert Conditioning.from_text("none") == Conditioning()


def test_chunk_cuts_fall_on_the_cycle() -> None:
    info = Conditioning("ivtc", "tff").output_info(_info(frames=250))
    chunks = plan_chunks(info, [0], target_frames=30, multiple=4)
    assert len(chunks) > 3
    assert all(c.start % 4 == 0 for c in chunks)


def test_spec_choices_agree_and_defaults_keep_old_ids() -> None:
    assert DEINTERLACE_CHOICES == DEINTERLACE_MODES
    assert SCAN_CHOICES == SCAN_OVERRIDES
    base = JobSpec(source="/in.mpg", destination="/out.mkv", model="realesr-animevideov3")
    assert "deinterlace" not in base.to_json() and "scan" not in base.to_json()
    field = JobSpec(
        source="/in.mpg", destination="/out.mkv", model="realesr-animevideov3", deinterlace="field"
    )
    assert JobSpec.from_json(field.to_json()) == field
    assert field.job_id() != base.job_id()
    with pytest.raises(InputError, match="deinterlace"):
        JobSpec(source="/in.mpg", destination="/out.mkv", model="realesr-animevideov3", deinterlace="yes")
