"""Frames for the compare view, extracted on demand with the ffmpeg CLI and cached as PNG.

The source frame is resized to the result's size (bicubic), so the side-by-side and the slider
compare the model against a plain resize of the same picture. ``location`` is a local path or an
``http(s)`` URL (a presigned GET in AWS mode: ffmpeg reads only what it needs around the time).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from vsrflow.errors import InputError
from vsrflow.media.ffmpeg import run_ffmpeg

#: Longest a frame extraction may take (seconds).
FRAME_TIMEOUT_S = 120.0


def frame_png(
    ffmpeg: str,
    location: str,
    seconds: float,
    cache_dir: Path,
    *,
    size: tuple[int, int] | None = None,
    cache_key: str,
) -> Path:
    """The PNG of the frame shown at ``seconds`` of ``location`` (resized to ``size`` when given).

    ``cache_key`` names the video independently of a (changing) presigned URL. Raises InputError
    for a negative or non-finite time; ExternalToolError when ffmpeg fails.
    """
    if not 0 <= seconds < 1e7:
        raise InputError(f"time {seconds!r} is not a time in the video", hint="pick a time from 0 s")
    tag = hashlib.sha256(f"{cache_key}|{seconds:.3f}|{size}".encode()).hexdigest()[:24]
    out = cache_dir / f"{tag}.png"
    if out.is_file():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part.png")
    argv = [ffmpeg, "-nostdin", "-v", "error", "-y", "-ss", f"{seconds:.3f}", "-i", location]
    if size is not None:
        argv += ["-vf", f"scale={size[0]}:{size[1]}:flags=bicubic"]
    argv += ["-frames:v", "1", "-update", "1", str(partial)]
    run_ffmpeg(argv, what="extracting a compare frame", timeout=FRAME_TIMEOUT_S)
    if not partial.is_file():
        raise InputError(f"no frame at {seconds:.3f} s", hint="pick an earlier time")
    partial.rename(out)
    return out
