"""Chunk planning: split a video into contiguous, frame-exact ranges, one Slurm array task each.

Contract of :func:`plan_chunks` (``N`` = ``info.frame_count``; frame indices are in PRESENTATION
order; every range is half-open):

* chunks ``[start, end)`` cover ``0..N`` exactly once, in order, with no gap or overlap;
* each chunk also carries ``[start_pts, end_pts)`` in ``info.time_base`` units: the pts of frame
  ``start`` and of frame ``end`` (for the last chunk: the last frame's pts + its duration);
* a boundary sits on a keyframe when one lies within +-50 % of the target chunk length from the
  ideal boundary (:data:`ALIGN_TOLERANCE`; the nearest wins, the earlier on a tie). Otherwise the
  cut is exactly at the target and the chunk's ``decode_from`` is the last keyframe at or before
  ``start``: decode from there and drop the frames before ``start``. Aligned chunks have
  ``decode_from == start``;
* a chunk is never shorter than :data:`MIN_CHUNK_SECONDS` and :data:`MIN_CHUNK_FRAMES` (a smaller
  target is raised to that minimum, with a log note), unless the whole video is shorter, which is
  then one chunk. Array tasks are per chunk, never per frame;
* at most ``max_chunks`` chunks (the cluster's MaxArraySize): the target grows until the plan fits;
* a target at least as long as the video gives ONE chunk (logged), not an error: short uploads are
  valid jobs. A non-positive or non-finite target, a zero-frame source or ``max_chunks < 1`` is an
  :class:`~vsrflow.errors.InputError`.

Seconds targets measure presentation time from the pts of each frame, so variable-frame-rate
sources split by time, not by ``frame_count / fps``. Such sources need their frame pts
(``frame_pts``, e.g. from :func:`vsrflow.media.keyframes.scan_frames`); for constant-rate sources
they are derived from the nominal rate when not given.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from vsrflow.errors import InputError
from vsrflow.media.info import VideoInfo

log = logging.getLogger(__name__)

#: A boundary snaps to a keyframe within this fraction of the target length around the ideal cut.
ALIGN_TOLERANCE = Fraction(1, 2)
#: Minimum chunk length (both must hold), except for a video shorter than that.
MIN_CHUNK_SECONDS = 1.0
MIN_CHUNK_FRAMES = 24


@dataclass(frozen=True)
class Chunk:
    """One contiguous range of the source.

    Attributes:
        index: position in the plan (0-based) = the Slurm array task id.
        start, end: frame range ``[start, end)``, presentation order.
        start_pts, end_pts: time range ``[start_pts, end_pts)`` in the video stream's time base.
        decode_from: keyframe index to start decoding at (<= start); frames before ``start`` are
            decoded only to reach ``start`` and then dropped.
    """

    index: int
    start: int
    end: int
    start_pts: int
    end_pts: int
    decode_from: int

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def aligned(self) -> bool:
        """True when the chunk starts on a keyframe (a stream copy can cut the source here)."""
        return self.decode_from == self.start

    def to_json(self) -> dict[str, int]:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "start_pts": self.start_pts,
            "end_pts": self.end_pts,
            "decode_from": self.decode_from,
        }

    @classmethod
    def from_json(cls, data: Any) -> Chunk:
        """Parse one chunk; ValueError on a missing/unknown key or a non-integer value."""
        keys = ("index", "start", "end", "start_pts", "end_pts", "decode_from")
        if not isinstance(data, dict) or set(data) != set(keys):
            raise ValueError(f"a chunk needs exactly the keys {', '.join(keys)}, got {data!r}")
        if any(not isinstance(data[k], int) or isinstance(data[k], bool) for k in keys):
            raise ValueError(f"chunk fields must be integers, got {data!r}")
        return cls(**{k: data[k] for k in keys})


def check_plan(chunks: Sequence[Chunk], frame_count: int) -> None:
    """Raise ValueError naming the first chunk that breaks the plan contract (module docstring)."""
    if not chunks:
        raise ValueError("the plan has no chunks")
    expected_start = 0
    for position, chunk in enumerate(chunks):
        if chunk.index != position:
            raise ValueError(f"chunk at position {position} has index {chunk.index}")
        if chunk.start != expected_start:
            kind = "overlaps the previous chunk" if chunk.start < expected_start else "leaves a gap"
            raise ValueError(
                f"chunk {position} starts at frame {chunk.start}, expected {expected_start}: {kind}"
            )
        if chunk.end <= chunk.start:
            raise ValueError(f"chunk {position} is empty or reversed: frames [{chunk.start}, {chunk.end})")
        if not 0 <= chunk.decode_from <= chunk.start:
            raise ValueError(f"chunk {position}: decode_from {chunk.decode_from} is not in 0..{chunk.start}")
        if chunk.end_pts <= chunk.start_pts:
            raise ValueError(f"chunk {position}: pts range [{chunk.start_pts}, {chunk.end_pts}) is empty")
        if position and chunk.start_pts != chunks[position - 1].end_pts:
            raise ValueError(f"chunk {position}: start_pts {chunk.start_pts} != previous chunk's end_pts")
        expected_start = chunk.end
    if expected_start != frame_count:
        raise ValueError(
            f"the chunks cover frames 0..{expected_start}, but the video has {frame_count} frames"
        )


def _frame_pts(info: VideoInfo, frame_pts: Sequence[int] | None) -> list[int]:
    """Presentation-ordered pts of every frame plus the end-of-stream pts (N + 1 values)."""
    n = info.frame_count
    if frame_pts is not None:
        pts = [int(p) for p in frame_pts]
        if len(pts) != n:
            raise ValueError(f"frame_pts has {len(pts)} entries, the video {n} frames")
        if any(b < a for a, b in itertools.pairwise(pts)):
            raise ValueError("frame_pts must be in presentation (ascending) order")
        last = info.last_frame_duration or info.frame_duration_ticks
        return [*pts, pts[-1] + max(1, last)]
    if info.is_vfr:
        raise ValueError("a variable-frame-rate source needs frame_pts (media.keyframes.scan_frames)")
    # Exact rational frame times, rounded once per frame, so 30000/1001 in a 1/1000 base does not drift.
    # Integer arithmetic (round half up) because Fraction per frame is slow for long videos.
    ticks_per_frame = 1 / (info.frame_rate * info.time_base)
    p, q = ticks_per_frame.numerator, ticks_per_frame.denominator
    return [info.start_pts + (2 * i * p + q) // (2 * q) for i in range(n + 1)]


def _target(info: VideoInfo, target_frames: int | None, target_seconds: float | None) -> tuple[int, int]:
    """(target, minimum) length in position units: frames, or pts ticks for a seconds target."""
    if (target_frames is None) == (target_seconds is None):
        raise InputError("chunk size: give exactly one of target_frames and target_seconds")
    nominal_fps = float(info.frame_rate) if info.frame_rate > 0 else 25.0
    if target_frames is not None:
        if isinstance(target_frames, bool) or not isinstance(target_frames, int) or target_frames <= 0:
            raise InputError(
                f"chunk size: {target_frames!r} frames is not a positive integer", hint="use e.g. 1440"
            )
        minimum = max(MIN_CHUNK_FRAMES, math.ceil(MIN_CHUNK_SECONDS * nominal_fps))
        return target_frames, minimum
    assert target_seconds is not None
    if (
        not isinstance(target_seconds, int | float)
        or not math.isfinite(target_seconds)
        or target_seconds <= 0
    ):
        raise InputError(
            f"chunk size: {target_seconds!r} seconds is not a positive number", hint="use e.g. 60"
        )
    tb = float(info.time_base)
    minimum_s = max(MIN_CHUNK_SECONDS, MIN_CHUNK_FRAMES / nominal_fps)
    return max(1, round(target_seconds / tb)), max(1, math.ceil(minimum_s / tb))


def _cut_points(
    positions: list[int], keyframes: list[int], step: int, minimum: int, multiple: int = 1
) -> list[int]:
    """Boundary frame indices (excluding 0 and N) for a target ``step`` in position units.

    Every cut is a multiple of ``multiple`` frames (a conditioned video's cycle, e.g. the 4 output
    frames of one inverse-telecine cycle); keyframes off that grid are not candidates.

    Greedy from the start, each cut measured from the previous one so snapping does not drift.
    A cut is only made when the rest is at least ``step + lower`` long; otherwise the rest becomes
    the last chunk (< step + lower <= 2 * step), which keeps the tail from being a sliver.
    """
    n = len(positions) - 1
    total = positions[n]
    lower = max(minimum, math.ceil(step * (1 - ALIGN_TOLERANCE)))
    key_pos = [positions[k] for k in keyframes]
    cuts: list[int] = []
    cur = 0
    while total - positions[cur] >= step + lower:
        here = positions[cur]
        ideal = here + step
        lo, hi = here + lower, min(here + math.floor(step * (1 + ALIGN_TOLERANCE)), total - lower)
        i0 = bisect.bisect_left(key_pos, lo)
        i1 = bisect.bisect_right(key_pos, hi)
        candidates = [k for k in keyframes[i0:i1] if k > cur and k % multiple == 0]
        if candidates:
            cut = min(candidates, key=lambda k: (abs(positions[k] - ideal), k))
        else:
            cut = bisect.bisect_left(positions, ideal, lo=cur + 1)
            cut = max(cur + multiple, round(cut / multiple) * multiple)
        if cut >= n:
            break
        cuts.append(cut)
        cur = cut
    return cuts


def plan_chunks(
    info: VideoInfo,
    keyframes: Sequence[int],
    *,
    target_frames: int | None = None,
    target_seconds: float | None = None,
    max_chunks: int = 1000,
    frame_pts: Sequence[int] | None = None,
    multiple: int = 1,
) -> list[Chunk]:
    """Plan the chunks of ``info``'s video stream (contract: module docstring).

    Args:
        info: the probed source (frame_count, time_base, frame_rate, start_pts, is_vfr).
        keyframes: presentation indices of keyframes (``media.keyframes.keyframe_indices``); frame
            0 is always treated as decodable (decoding starts at the stream start).
        target_frames, target_seconds: the target chunk length; exactly one.
        max_chunks: at most this many chunks (Slurm MaxArraySize), >= 1.
        frame_pts: presentation-ordered pts of every frame; required for VFR sources.
        multiple: every cut is a multiple of this many frames (conditioned videos:
            :attr:`vsrflow.media.condition.Conditioning.cut_multiple`).

    Raises:
        InputError: zero-frame source, bad target, ``max_chunks < 1``.
        ValueError: keyframes outside ``0..N-1`` or inconsistent ``frame_pts`` (caller bugs).
    """
    n = info.frame_count
    if n <= 0:
        raise InputError(f"{info.path}: the video has no frames; nothing to split", hint="check the source")
    if isinstance(max_chunks, bool) or not isinstance(max_chunks, int) or max_chunks < 1:
        raise InputError(f"max_chunks: {max_chunks!r} must be a positive integer", hint="use MaxArraySize")
    keys = sorted(set(keyframes) | {0})
    if keys[-1] >= n or keys[0] < 0:
        raise ValueError(f"keyframe indices must lie in 0..{n - 1}")
    pts = _frame_pts(info, frame_pts)
    positions = list(range(n + 1)) if target_frames is not None else [p - pts[0] for p in pts]
    step, minimum = _target(info, target_frames, target_seconds)
    total = positions[n]

    def length(value: int) -> str:  # a position length as a user reads it: frames or seconds
        return f"{value} frames" if target_frames is not None else f"{float(value * info.time_base):.3g} s"

    if step < minimum:
        log.info(
            "chunk length %s raised to the minimum %s (never one task per few frames)",
            length(step), length(minimum),
        )  # fmt: skip
        step = minimum
    if step >= total:
        log.info("%s: the chunk target covers the whole video; planning one chunk", info.path)
    cuts = _cut_points(positions, keys, step, minimum, multiple)
    while len(cuts) + 1 > max_chunks:
        # Grow the target in proportion to the excess (at least 5 %) until the plan fits the array.
        step = max(step + 1, math.ceil(step * max(1.05, (len(cuts) + 1) / max_chunks)))
        cuts = _cut_points(positions, keys, step, minimum, multiple)
        log.info("chunk length grown to %s to stay within %d array tasks", length(step), max_chunks)
    bounds = [0, *cuts, n]
    chunks = [
        Chunk(
            index=i,
            start=start,
            end=end,
            start_pts=pts[start],
            end_pts=pts[end],
            decode_from=keys[bisect.bisect_right(keys, start) - 1],
        )
        for i, (start, end) in enumerate(itertools.pairwise(bounds))
    ]
    check_plan(chunks, n)
    return chunks
