"""Chunk planning on synthetic VideoInfo and keyframe lists (no media files).

The property tests draw many random sources with a seeded ``random.Random`` (hypothesis is not a
project dependency) and check the plan contract of :mod:`vsrflow.workflow.job.plan` on each.
"""

from __future__ import annotations

import logging
import random
from fractions import Fraction
from pathlib import Path

import pytest

from vsrflow.errors import InputError
from vsrflow.media.info import VideoInfo
from vsrflow.workflow.job.plan import (
    ALIGN_TOLERANCE,
    MIN_CHUNK_FRAMES,
    Chunk,
    check_plan,
    plan_chunks,
)


def info(
    frames: int,
    *,
    fps: Fraction = Fraction(25),
    time_base: Fraction = Fraction(1, 12800),
    start_pts: int = 0,
    vfr: bool = False,
) -> VideoInfo:
    return VideoInfo(
        path=Path("synthetic.mp4"),
        container="mov",
        width=64,
        height=48,
        frame_rate=fps,
        avg_frame_rate=fps,
        time_base=time_base,
        frame_count=frames,
        duration=float(frames / fps),
        start_pts=start_pts,
        sar=Fraction(1),
        rotation=0,
        pix_fmt="yuv420p",
        bit_depth=8,
        color_primaries=None,
        color_transfer=None,
        color_matrix=None,
        color_range=None,
        is_vfr=vfr,
        video_stream_index=0,
        streams=(),
        chapters=0,
        last_frame_duration=round(1 / (fps * time_base)),
    )


def gop(frames: int, every: int) -> list[int]:
    return list(range(0, frames, every))


def assert_contract(chunks: list[Chunk], frames: int, keyframes: list[int], max_chunks: int) -> None:
    check_plan(chunks, frames)  # contiguous, exactly-once coverage, pts chain, decode_from <= start
    assert chunks[0].start == 0 and chunks[-1].end == frames
    assert len(chunks) <= max_chunks
    keys = set(keyframes) | {0}
    for chunk in chunks:
        assert chunk.decode_from in keys
        assert chunk.aligned == (chunk.start in keys)
        # decode_from is the LAST keyframe at or before start: no needless extra decoding.
        assert not any(chunk.decode_from < k <= chunk.start for k in keys)


# ---- basics ------------------------------------------------------------------------------------


def test_aligned_gop_gives_keyframe_cuts() -> None:
    src = info(1000)
    keys = gop(1000, 50)
    chunks = plan_chunks(src, keys, target_frames=200)
    assert [(c.start, c.end) for c in chunks] == [(0, 200), (200, 400), (400, 600), (600, 800), (800, 1000)]
    assert all(c.aligned for c in chunks)
    assert chunks[1].start_pts == 200 * 512 and chunks[-1].end_pts == 1000 * 512


def test_nearest_keyframe_within_tolerance_wins() -> None:
    src = info(1000)
    # Ideal cut at 200; keyframes at 150 (50 away) and 230 (30 away): 230 is nearest.
    chunks = plan_chunks(src, [0, 150, 230, 600], target_frames=200)
    assert chunks[0].end == 230 and chunks[0].aligned and chunks[1].aligned
    # The next ideal cut is measured from 230 (430); keyframe 600 is outside +-100: cut at 430.
    assert chunks[1].end == 430
    assert chunks[2].start == 430 and chunks[2].decode_from == 230 and not chunks[2].aligned


def test_no_keyframes_cuts_at_target_and_decodes_from_zero() -> None:
    chunks = plan_chunks(info(600), [0], target_frames=100)
    assert [c.start for c in chunks] == [0, 100, 200, 300, 400, 500]
    assert [c.decode_from for c in chunks] == [0] * 6


def test_tie_prefers_the_earlier_keyframe() -> None:
    chunks = plan_chunks(info(1000), [0, 180, 220], target_frames=200)
    assert chunks[0].end == 180


def test_tail_is_never_a_sliver() -> None:
    # 1010 frames at target 200: the last chunk takes the 10 extra frames instead of a 10-frame chunk.
    chunks = plan_chunks(info(1010), gop(1010, 1), target_frames=200)
    assert min(c.frames for c in chunks) >= 100
    assert chunks[-1].end == 1010


def test_seconds_target_on_cfr() -> None:
    chunks = plan_chunks(info(250 * 10), gop(2500, 25), target_seconds=20.0)
    assert [c.frames for c in chunks] == [500] * 5


def test_ntsc_rate_in_millisecond_time_base_has_exact_pts() -> None:
    src = info(3000, fps=Fraction(30000, 1001), time_base=Fraction(1, 1000))
    chunks = plan_chunks(src, gop(3000, 30), target_frames=300)
    # Frame 300 shows at 300 * 1001/30000 s = 10.01 s exactly: no drift from a rounded 33 ms step.
    assert chunks[1].start == 300 and chunks[1].start_pts == 10010


def test_start_pts_offset_is_kept() -> None:
    chunks = plan_chunks(info(100, start_pts=1024), [0], target_frames=50)
    assert chunks[0].start_pts == 1024 and chunks[1].start_pts == 1024 + 50 * 512


# ---- VFR ---------------------------------------------------------------------------------------


def vfr_pts(frames: int) -> list[int]:
    # First half at 50 fps, second half at 10 fps (time base 1/1000).
    pts, t = [], 0
    for i in range(frames):
        pts.append(t)
        t += 20 if i < frames // 2 else 100
    return pts


def test_vfr_seconds_target_uses_pts_not_frame_count() -> None:
    frames = 1000
    src = info(frames, fps=Fraction(25), time_base=Fraction(1, 1000), vfr=True)
    pts = vfr_pts(frames)
    chunks = plan_chunks(src, [0], target_seconds=10.0, frame_pts=pts)
    durations = [(c.end_pts - c.start_pts) / 1000 for c in chunks]
    # Every chunk but the last is exactly 10 s of presentation time despite the rate change.
    assert durations[:-1] == [10.0] * (len(chunks) - 1)
    assert chunks[0].frames == 500 and chunks[-1].frames == 100


def test_vfr_without_frame_pts_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="frame_pts"):
        plan_chunks(info(100, vfr=True), [0], target_seconds=1.0)


def test_frame_pts_length_must_match() -> None:
    with pytest.raises(ValueError, match="entries"):
        plan_chunks(info(100), [0], target_frames=50, frame_pts=list(range(99)))


# ---- limits and bad input ----------------------------------------------------------------------


def test_max_chunks_grows_the_chunks() -> None:
    src = info(100_000)
    chunks = plan_chunks(src, gop(100_000, 48), target_frames=48, max_chunks=100)
    assert len(chunks) <= 100
    assert len(chunks) >= 50  # grown only as much as needed, not collapsed
    assert_contract(chunks, 100_000, gop(100_000, 48), 100)


def test_max_chunks_one_gives_one_chunk() -> None:
    chunks = plan_chunks(info(5000), gop(5000, 25), target_frames=100, max_chunks=1)
    assert [(c.start, c.end) for c in chunks] == [(0, 5000)]


def test_tiny_target_is_raised_to_the_minimum(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        chunks = plan_chunks(info(1000), gop(1000, 1), target_frames=1)
    assert min(c.frames for c in chunks) >= MIN_CHUNK_FRAMES
    assert "chunk length 1 frames raised to the minimum 25 frames" in caplog.text  # 1 s at 25 fps


def test_seconds_target_is_reported_in_seconds(caplog: pytest.LogCaptureFixture) -> None:
    """The log speaks seconds for a seconds target, never the time base's ticks (1/12800 here)."""
    with caplog.at_level(logging.INFO):
        plan_chunks(info(1000), gop(1000, 1), target_seconds=0.4)
    assert "chunk length 0.4 s raised to the minimum 1 s" in caplog.text
    assert "5120" not in caplog.text and "12800" not in caplog.text


def test_minimum_is_one_second_at_high_rates() -> None:
    chunks = plan_chunks(info(1200, fps=Fraction(120), time_base=Fraction(1, 120)), [0], target_frames=24)
    assert min(c.frames for c in chunks) >= 120


def test_oversize_target_gives_one_chunk(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        chunks = plan_chunks(info(100), [0], target_seconds=3600.0)
    assert [(c.start, c.end) for c in chunks] == [(0, 100)]
    assert "one chunk" in caplog.text


def test_video_shorter_than_minimum_is_one_chunk() -> None:
    chunks = plan_chunks(info(3), [0], target_frames=1)
    assert [(c.start, c.end, c.end_pts) for c in chunks] == [(0, 3, 3 * 512)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target_frames": 0},
        {"target_frames": -5},
        {"target_seconds": 0.0},
        {"target_seconds": -1.0},
        {"target_seconds": float("nan")},
        {"target_seconds": float("inf")},
        {},
        {"target_frames": 10, "target_seconds": 1.0},
        {"target_frames": 100, "max_chunks": 0},
    ],
)
def test_bad_targets_are_input_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError):
        plan_chunks(info(100), [0], **kwargs)  # type: ignore[arg-type]


def test_zero_frame_source_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no frames"):
        plan_chunks(info(0), [], target_frames=10)


def test_keyframe_out_of_range_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="keyframe"):
        plan_chunks(info(100), [0, 100], target_frames=50)


# ---- check_plan --------------------------------------------------------------------------------


def _c(i: int, s: int, e: int) -> Chunk:
    return Chunk(i, s, e, s * 10, e * 10, s)


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ([_c(0, 0, 50), _c(1, 40, 100)], "overlaps"),
        ([_c(0, 0, 50), _c(1, 60, 100)], "gap"),
        ([_c(0, 0, 50), _c(1, 50, 90)], "cover frames 0..90"),
        ([_c(0, 0, 50), _c(2, 50, 100)], "index"),
        ([Chunk(0, 0, 100, 0, 1000, 5)], "decode_from"),
        ([_c(0, 0, 50), Chunk(1, 50, 100, 400, 1000, 50)], "start_pts"),
        ([], "no chunks"),
    ],
)
def test_check_plan_names_the_problem(chunks: list[Chunk], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_plan(chunks, 100)


# ---- properties --------------------------------------------------------------------------------


def test_property_random_sources() -> None:
    rng = random.Random(20240611)
    for _ in range(400):
        frames = rng.randint(1, 20_000)
        fps = rng.choice([Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(60)])
        tb = rng.choice([Fraction(1, 1000), Fraction(1, 90000), 1 / fps])
        kind = rng.random()
        if kind < 0.3:
            keys = gop(frames, rng.randint(1, 400))
        elif kind < 0.6:
            keys = sorted(rng.sample(range(frames), min(frames, rng.randint(0, 50))))
        else:
            keys = [0]
        max_chunks = rng.choice([1, 2, 7, 50, 1000])
        if rng.random() < 0.5:
            target: dict[str, float] = {"target_frames": rng.randint(1, 3000)}
        else:
            target = {"target_seconds": rng.uniform(0.1, 120.0)}
        chunks = plan_chunks(info(frames, fps=fps, time_base=tb), keys, max_chunks=max_chunks, **target)  # type: ignore[arg-type]
        assert_contract(chunks, frames, keys, max_chunks)
        duration = frames / fps
        if len(chunks) > 1:
            # Never one task per few frames: every chunk is >= the minimum (1 s and 24 frames).
            assert min(c.frames for c in chunks) >= min(MIN_CHUNK_FRAMES, frames)
            assert min((c.end_pts - c.start_pts) * tb for c in chunks) >= Fraction(99, 100)
        else:
            assert chunks[0].frames == frames or duration < 1


def test_property_alignment_when_the_gop_allows() -> None:
    """With a keyframe every g frames and a target >= 2 g, every cut lands on a keyframe."""
    rng = random.Random(7)
    for _ in range(300):
        g = rng.randint(1, 120)
        frames = rng.randint(1, 30_000)
        target = rng.randint(max(2 * g, 25), 5000)
        keys = gop(frames, g)
        chunks = plan_chunks(info(frames), keys, target_frames=target, max_chunks=rng.choice([10, 1000]))
        assert all(c.aligned for c in chunks), (g, frames, target)
        for c in chunks[:-1]:
            # An aligned boundary is within the tolerance of the target (unless max_chunks grew it).
            assert c.frames >= target * (1 - ALIGN_TOLERANCE) or len(chunks) == 10


def test_property_vfr_random_pts() -> None:
    rng = random.Random(3)
    for _ in range(150):
        frames = rng.randint(1, 5000)
        pts, t = [], rng.randint(0, 5000)
        for _ in range(frames):
            pts.append(t)
            t += rng.choice([10, 20, 33, 40, 100, 500])
        keys = sorted(rng.sample(range(frames), min(frames, rng.randint(0, 30))))
        src = info(frames, time_base=Fraction(1, 1000), vfr=True, start_pts=pts[0])
        chunks = plan_chunks(src, keys, target_seconds=rng.uniform(0.5, 60), frame_pts=pts, max_chunks=100)
        assert_contract(chunks, frames, keys, 100)
        assert chunks[0].start_pts == pts[0]
        assert all(c.start_pts == pts[c.start] for c in chunks)
