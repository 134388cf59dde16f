"""The last frame's duration through the final mux: set it, and read back what the output states.

Every frame's pts survives the intermediate, so every frame but the last keeps its duration (the gap
to the next pts). The last one's cannot: the NUT intermediate stores no packet durations, and the
stream copy in the final mux then guesses one nominal frame. A source whose last frame lasts
otherwise (an animated GIF's final delay, a variable-rate capture) would end early or late.

:func:`setts_args` gives the final mux a ``setts`` bitstream filter that writes the source's end
into the one place each container keeps it:

- MP4/MOV: the last sample's duration, in decode order (the ``stts`` table sums to the track
  duration). It is set so that the track lasts exactly the source's span.
- Matroska/WebM: the duration of the frame shown last (the muxer's track ``DURATION`` and the
  segment duration are the largest pts + duration).

Units, measured on ffmpeg 5.1: the filter sees the packets in the *muxer's* time base (1/1000 for
Matroska; ``1/video_track_timescale`` for MP4/MOV, which :func:`mp4_timescale` fixes), while its
``TB`` variable reports the input's. So the expressions use integer ticks of the muxer's time base
and never ``TB``. :func:`stated_span` reads the result back; the caller compares it with the source
and says so when it differs (another ffmpeg could place the filter elsewhere).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import duration_tag

#: Matroska stores timestamps in milliseconds.
_MKV_TICK = Fraction(1, 1000)


def mp4_timescale(source: VideoInfo) -> int | None:
    """The MP4/MOV video timescale that keeps ``source``'s pts exact: its time base's denominator
    (pts x num / den is a whole number of 1/den ticks). None when the muxer cannot store it."""
    den = source.time_base.denominator
    return den if den <= 2**31 - 1 else None


def _span(source: VideoInfo) -> Fraction:
    """The source video's span in seconds: first pts to the end of the last frame."""
    return Fraction(source.duration).limit_denominator(10**9)


def setts_args(source: VideoInfo, mp4_family: bool, frames: int) -> list[str]:
    """ffmpeg output options (``-bsf:v:0 setts=...``) that give the output video ``source``'s end.

    Args:
        source: the (conditioned) source: ``duration`` (s), ``last_frame_duration`` (time_base
            units) and ``time_base`` describe the timeline the intermediate holds.
        mp4_family: the output muxer is mp4/mov (else Matroska/WebM).
        frames: packets of the video input (its frame count): the last one, in decode order, is
            number ``frames - 1``.

    Returns ``[]`` when the source states no last frame duration or the muxer's tick is unknown.
    """
    if source.last_frame_duration <= 0 or frames <= 0:
        return []
    span = _span(source)
    last = source.last_frame_duration * source.time_base
    if mp4_family:
        den = mp4_timescale(source)
        if den is None:
            return []
        end = round(span * den)
        # The track lasts (last dts - first dts) + the last sample's duration: make that the span.
        expr = f"if(eq(N,{frames - 1}),STARTDTS+{end}-DTS,DURATION)"
    else:
        last_at = round((span - last) / _MKV_TICK)
        duration = max(1, round(last / _MKV_TICK))
        # The frame shown last is the one at the span minus its duration (1 ms: Matroska's rounding).
        expr = f"if(gte(PTS-STARTPTS,{last_at - 1}),{duration},DURATION)"
    # pts and dts named explicitly: ffmpeg 5.1's setts otherwise writes the dts over the pts.
    return ["-bsf:v:0", f"setts=pts=PTS:dts=DTS:duration='{expr}'"]


def stated_span(path: Path, video_index: int) -> Fraction | None:
    """Seconds the video stream ``video_index`` of ``path`` lasts as its container states it.

    MP4/MOV: the track duration; Matroska: the track's ``DURATION`` tag less the track's start.
    None when the container states none (then the caller falls back to the packets' own).
    """
    with av.open(str(path)) as container:
        stream = container.streams[video_index]
        tb = Fraction(stream.time_base) if stream.time_base else None
        if tb is None:
            return None
        if stream.duration:
            return stream.duration * tb
        tag = duration_tag(stream)
        return None if tag is None else tag - (stream.start_time or 0) * tb
