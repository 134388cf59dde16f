"""A frame-exact slice of a video for a preview upscale (``vsrflow upscale --frames A:B``).

Contract: :func:`cut_slice` writes frames ``[start, end)`` (presentation order) of ``src`` to a
Matroska file, video lossless (FFV1, the source's pixel format: decoded values unchanged) with each
frame's own timestamp shifted so the slice starts at 0, and every audio stream cut to the same time
span (ALAC: lossless, and MP4, MOV and MKV outputs can all hold it). Subtitles, attachments and
data streams are left out of a preview.
:func:`frame_range` turns ``--frames A:B`` or ``--start T --duration D`` into ``(start, end)``.
"""

from __future__ import annotations

import math
import subprocess
from fractions import Fraction
from pathlib import Path

from vsrflow.errors import ExternalToolError, InputError
from vsrflow.media.info import VideoInfo
from vsrflow.media.keyframes import scan_frames


def parse_frames(text: str) -> tuple[int, int | None]:
    """``A:B`` (B exclusive; ``A:`` to the end) -> (A, B or None); InputError when malformed."""
    first, sep, last = text.partition(":")
    try:
        start = int(first) if first else 0
        end = int(last) if last else None
    except ValueError:
        start, end = -1, None
    if not sep or start < 0 or (end is not None and end <= start):
        raise InputError(
            f"--frames {text!r} is not A:B with 0 <= A < B", hint="e.g. --frames 0:48 (B exclusive)"
        )
    return start, end


def frame_range(
    info: VideoInfo,
    frames: str | None = None,
    start_s: float | None = None,
    duration_s: float | None = None,
    pts: tuple[int, ...] | None = None,
) -> tuple[int, int]:
    """The ``[start, end)`` frame indices a preview covers, inside ``0..frame_count``.

    ``start_s``/``duration_s`` are seconds from the first frame; a frame belongs to the slice when
    its timestamp lies in ``[start, start + duration)``. ``pts`` (presentation-ordered, from
    :func:`vsrflow.media.keyframes.scan_frames`) is needed only for those.
    """
    n = info.frame_count
    if frames is not None:
        start, end = parse_frames(frames)
        end = n if end is None else end
    else:
        assert pts is not None
        # Through the decimal text: 0.4 means 2/5 s (frame 10 at 25 fps), not the binary float below it.
        t0 = Fraction(repr(float(start_s or 0.0)))
        t1 = t0 + Fraction(repr(float(duration_s))) if duration_s is not None else None
        times = [(p - pts[0]) * info.time_base for p in pts]
        start = next((i for i, t in enumerate(times) if t >= t0), n)
        end = n if t1 is None else next((i for i, t in enumerate(times) if t >= t1), n)
    if start >= n or end > n or end <= start:
        raise InputError(
            f"{info.path}: the preview [{start}, {end}) is not inside its {n} frames",
            hint=f"choose frames within 0..{n}",
        )
    return start, end


def cut_slice(
    src: Path, dest: Path, info: VideoInfo, start: int, end: int, *, ffmpeg: str = "ffmpeg"
) -> Path:
    """Write frames ``[start, end)`` of ``src`` to ``dest`` (module contract); returns ``dest``."""
    table = scan_frames(src, info.video_stream_index)
    pts = table.pts
    first = pts[start]
    # Audio: the slice's own span, from its first frame to the next frame after its last one.
    t0 = float((first - pts[0]) * table.time_base)
    t1 = float((pts[end] - pts[0]) * table.time_base) if end < len(pts) else math.inf
    video = f"[0:{info.video_stream_index}]trim=start_frame={start}:end_frame={end},setpts=PTS-STARTPTS[v]"
    graph = [video]
    maps = ["-map", "[v]"]
    audio_end = f":end={t1:.6f}" if t1 != math.inf else ""
    for i, _ in enumerate(info.audio_streams):
        graph.append(f"[0:a:{i}]atrim=start={t0:.6f}{audio_end},asetpts=PTS-STARTPTS[a{i}]")
        maps += ["-map", f"[a{i}]"]
    argv = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
        "-filter_complex", ";".join(graph), *maps, "-fps_mode", "passthrough",
        "-c:v", "ffv1", "-level", "3", "-c:a", "alac", "-f", "matroska", str(dest),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise ExternalToolError(
            argv, proc.returncode, proc.stderr, what=f"could not cut frames {start}:{end} of {src}"
        )
    return dest
