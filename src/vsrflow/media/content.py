"""What kind of picture a video holds: footage, or cartoon/graphics (the ``auto`` preset's input).

The one feature is *flatness*: the fraction of 4x4 pixel blocks of the grey picture whose values
span at most :data:`FLAT_LEVELS` levels. Cels, test patterns, slides and burnt-in graphics are
mostly perfectly flat areas between sharp edges; camera footage (even lossy h264) carries sensor
noise, grain and texture nearly everywhere. The video's flatness is the median over
:data:`SAMPLES` frames spread over its duration (one detail-free frame, a fade or a title card,
does not decide). Measured on the sample clips (footage 0.07 .. 0.14), synthetic anime-style frames
(0.73 .. 0.83) and lavfi test patterns (0.53 .. 1.0): see docs/quality.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av.error
import numpy as np
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from vsrflow.errors import InputError
from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import open_input, probe
from vsrflow.media.reader import frame_to_rgb

FLAT_LEVELS = 2
#: Median flatness at or above which a video is cartoon/graphics.
CARTOON_FLATNESS = 0.4
SAMPLES = 6


@dataclass(frozen=True)
class ContentGuess:
    """``kind`` is ``footage`` or ``cartoon``; ``flatness`` the median; ``per_frame`` the samples."""

    kind: str
    flatness: float
    per_frame: tuple[float, ...]


def flatness(image: np.ndarray) -> float:
    """Fraction of 4x4 blocks of the grey (mean of RGB, 8-bit scale) ``image`` (H, W, 3; uint8 or
    uint16) whose max - min is at most :data:`FLAT_LEVELS` levels; 0.0 for frames under 4x4."""
    grey = image.astype(np.float32).mean(axis=2)
    if image.dtype == np.uint16:
        grey /= 257.0
    h, w = (grey.shape[0] // 4) * 4, (grey.shape[1] // 4) * 4
    if h == 0 or w == 0:
        return 0.0
    blocks = grey[:h, :w].reshape(h // 4, 4, w // 4, 4)
    spread = blocks.max(axis=(1, 3)) - blocks.min(axis=(1, 3))
    return float((spread <= FLAT_LEVELS + 0.5).mean())


def sample_frames(path: Path, info: VideoInfo, count: int = SAMPLES) -> list[np.ndarray]:
    """Up to ``count`` RGB frames spread evenly over the video: seek to the keyframe before each
    target time, then decode up to the first frame at or after it (at most a GOP per sample)."""
    frames: list[np.ndarray] = []
    with open_input(path) as container:
        stream = container.streams[info.video_stream_index]
        assert isinstance(stream, VideoStream)
        duration_ticks = max(1, info.frame_count) * max(1, info.frame_duration_ticks)
        for i in range(count):
            target = info.start_pts + int((i + 0.5) * duration_ticks / count)
            picked: VideoFrame | None = None
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    picked = frame
                    if frame.pts is None or frame.pts >= target:
                        break
            except av.error.FFmpegError as err:
                raise InputError(
                    f"{path}: cannot read a sample frame: {err}", hint="check the source"
                ) from err
            if picked is not None:
                frames.append(frame_to_rgb(picked, info))
    return frames


def classify(path: Path | str, info: VideoInfo | None = None) -> ContentGuess:
    """Footage or cartoon/graphics, from :data:`SAMPLES` frames of ``path``."""
    path = Path(path)
    info = info or probe(path)
    values = tuple(flatness(f) for f in sample_frames(path, info))
    if not values:
        raise InputError(f"{path}: no frame could be decoded to judge its content", hint="check the source")
    median = float(np.median(values))
    return ContentGuess("cartoon" if median >= CARTOON_FLATNESS else "footage", median, values)
