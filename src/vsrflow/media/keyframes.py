"""Keyframes and frame times of the video stream, by demuxing packets only (no decoding).

Indices are in PRESENTATION order: frame ``i`` is the packet with the ``i``-th smallest pts. With
B-frames, decode order differs from presentation order, so a keyframe's index is the rank of its
pts among all packet pts, not its position in the demux loop. Timestamps are integers in the video
stream's time base. The frame count equals :func:`vsrflow.media.probe.probe`'s: both count the
packets :func:`vsrflow.media.probe.scan_packets` calls frames (edit-list preroll and the
undecodable lead of a capture cut mid-GOP are not frames).

Open-GOP caveat: a keyframe flagged in an open GOP (a non-IDR I-frame) may be followed in decode
order by leading B-frames that reference the previous GOP; those frames present BEFORE the
keyframe, so they belong to the previous chunk and decoding from the keyframe still yields every
frame from its own index on.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vsrflow.errors import InputError
from vsrflow.media.probe import open_input, pick_video, scan_packets


@dataclass(frozen=True)
class FrameTable:
    """Frame times and keyframes of one video stream.

    Attributes:
        pts: every frame's pts, ascending (presentation order), in ``time_base`` units.
        keyframes: presentation indices (into ``pts``) of packets flagged as keyframes, ascending.
        time_base: the video stream's time base.
    """

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]
    time_base: Fraction

    @property
    def frame_count(self) -> int:
        return len(self.pts)


def scan_frames(path: Path | str, video_stream: int | None = None) -> FrameTable:
    """Demux the video stream of ``path`` (stream ``video_stream`` when given, see
    :func:`~vsrflow.media.probe.pick_video`) and return its :class:`FrameTable`.

    A packet without pts falls back to its dts (raw-stream containers).

    Raises:
        InputError: the file cannot be opened, has no video stream, no video packets, a packet
            without any timestamp, or the demuxer fails part-way. The message names the path.
    """
    path = Path(path)
    container = open_input(path)
    with container:
        video = pick_video(container, path, video_stream)
        time_base = Fraction(video.time_base or Fraction(1, 1000))
        # The same packets probe() counts as frames (no edit-list preroll, no undecodable lead).
        scan = scan_packets(container, video, path)
    # (pts, decode position, keyframe flag): the decode position breaks ties on duplicate pts.
    packets: list[tuple[int, int, bool]] = []
    for pts, dts, _, key in scan.frames:
        stamp = pts if pts is not None else dts
        if stamp is None:
            raise InputError(
                f"{path}: video packet {len(packets)} has no timestamp",
                hint="remux the file into MP4/MKV (ffmpeg -i in -c copy out.mkv)",
            )
        packets.append((stamp, len(packets), key))
    if not packets:
        raise InputError(f"{path}: the video stream has no frames", hint="check the source file")
    packets.sort()
    return FrameTable(
        pts=tuple(p[0] for p in packets),
        keyframes=tuple(i for i, p in enumerate(packets) if p[2]),
        time_base=time_base,
    )


def keyframe_indices(path: Path | str) -> list[int]:
    """Presentation indices of the keyframes of ``path``'s video stream (see :func:`scan_frames`)."""
    return list(scan_frames(path).keyframes)
