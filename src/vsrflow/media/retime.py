"""Re-time an MPEG-PS/TS whose clock jumps (joined captures, a recorder glitch) into a clean copy.

Two captures joined with ``cat`` or a recorder that reset its clock give a stream whose
timestamps jump (:attr:`VideoInfo.clock_jumps`); read as they are they would give a wrong
duration, non-monotonic frame times and lost A/V sync. :func:`retime` writes a stream copy (no
re-encode: every packet of every stream, bit for bit) in which each segment between two jumps is
moved to follow the previous one: the gap is closed as ffmpeg's own remux does, but every stream
of a segment moves by the SAME amount, so each segment keeps its A/V offset exactly (ffmpeg's
remux detects the jump per stream and can misplace the first audio packets of a segment).

Segments: the video's jumps split it; every other stream is split by its own jumps (the same
rule, :func:`vsrflow.media.probe.clock_jumps`), and must have as many (or none: a stream that
ends before the jump). Segment ``k`` moves by the smallest amount that keeps every stream
monotonic: the video's next frame follows the previous segment's last frame directly, unless a
stream (audio starting early) needs more; then the video has a short gap there (a pause, frame
times stay exact). The copy is then what both paths (``vsrflow upscale``, the chunked job) read,
so they see the same frames and timestamps.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import av.error

from vsrflow.errors import InputError
from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import clock_jumps, discontinuity_error, open_input, probe

log = logging.getLogger(__name__)

#: Demuxer -> the muxer the re-timed copy is written with (the same kind of container).
_MUXERS = {"mpegts": "mpegts", "mpeg": "vob"}


def retimed_suffix(info: VideoInfo) -> str:
    """File suffix of the re-timed copy of ``info``'s source."""
    return ".ts" if info.container == "mpegts" else ".mpg"


def _segments(ts: list[int | None], fmt: str, tb: Fraction) -> list[int]:
    """Segment index of each packet (demux order) from the stream's own clock jumps."""
    known = [(i, t) for i, t in enumerate(ts) if t is not None]
    jumps = clock_jumps(fmt, [t for _, t in known], tb)
    starts = sorted(known[j.packet][0] for j in jumps)
    seg, out = 0, []
    for i in range(len(ts)):
        while seg < len(starts) and i >= starts[seg]:
            seg += 1
        out.append(seg)
    return out


def retime(info: VideoInfo, target: Path) -> VideoInfo:
    """Write the re-timed stream copy of ``info``'s source to ``target``; return its probe.

    Raises:
        InputError: the source is not MPEG-PS/TS, a stream's jumps cannot be paired with the
            video's, the copy cannot be written, or the copy still jumps or lost a frame (the
            message names the source and the manual fix). ``target`` is removed then.
    """
    fmt = next((k for k in _MUXERS if k in info.container.split(",")), None)
    if fmt is None:
        raise discontinuity_error(info)
    target = Path(target)
    try:
        return _retime(info, target, fmt)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _retime(info: VideoInfo, target: Path, fmt: str) -> VideoInfo:
    # Pass 1: every packet's (pts, dts, duration) per stream, in demux order.
    packets: dict[int, list[tuple[int | None, int | None, int]]] = {}
    time_bases: dict[int, Fraction] = {}
    with open_input(info.path) as src:
        for stream in src.streams:
            time_bases[stream.index] = Fraction(stream.time_base or Fraction(1, 90000))
        for packet in src.demux():
            if packet.size == 0 and packet.pts is None:
                continue
            packets.setdefault(packet.stream.index, []).append(
                (packet.pts, packet.dts, int(packet.duration or 0))
            )
    n_seg = len(info.clock_jumps) + 1
    seg_of: dict[int, list[int]] = {}
    for index, rows in packets.items():
        decode = [d if d is not None else p for p, d, _ in rows]
        seg_of[index] = _segments(decode, fmt, time_bases[index])
        if seg_of[index] and seg_of[index][-1] >= n_seg:
            raise InputError(
                f"{info.path}: stream {index}'s clock jumps {seg_of[index][-1]} times, the video's "
                f"{n_seg - 1}: the segments cannot be paired to keep A/V sync",
                hint=discontinuity_error(info).hint,
            )
    # Per stream and segment: first presentation time, first/last decode time, presentation end.
    start: dict[tuple[int, int], Fraction] = {}
    first: dict[tuple[int, int], Fraction] = {}
    last: dict[tuple[int, int], Fraction] = {}
    end: dict[tuple[int, int], Fraction] = {}
    nominal = info.frame_duration
    for index, rows in packets.items():
        tb = time_bases[index]
        for (pts, dts, dur), seg in zip(rows, seg_of[index], strict=True):
            key = (index, seg)
            d = dts if dts is not None else pts
            if d is None:
                continue
            p = pts if pts is not None else d
            stop = (p + dur) * tb if dur else p * tb + (nominal if index == info.video_stream_index else 0)
            start[key] = min(start.get(key, p * tb), p * tb)
            first[key] = min(first.get(key, d * tb), d * tb)
            last[key] = max(last.get(key, d * tb), d * tb)
            end[key] = max(end.get(key, stop), stop)
    offsets = [Fraction(0)]
    for seg in range(1, n_seg):
        need: list[Fraction] = []
        for index in packets:
            if (index, seg) not in first:
                continue
            prev = max((s for s in range(seg) if (index, s) in first), default=None)
            if prev is None:
                continue
            tb = time_bases[index]
            # Presentation: this segment starts after the last one ends; decode: dts increases.
            need.append(end[(index, prev)] + offsets[prev] - start[(index, seg)])
            need.append(last[(index, prev)] + offsets[prev] + tb - first[(index, seg)])
        offsets.append(max(need) if need else offsets[-1])
    for j, off in zip(info.clock_jumps, offsets[1:], strict=True):
        log.warning(
            "%s: the stream clock jumps by %+.3f s at video packet %d (%.3f s in; joined captures?): "
            "re-timed monotonically (the gap closed, every stream of the segment moved by %+.3f s, so "
            "its A/V offset is kept) into a stream copy %s",
            info.path, j.jump, j.packet, j.at, float(off), target,
        )  # fmt: skip
    # Pass 2: the stream copy with every packet moved by its segment's offset.
    counters = dict.fromkeys(packets, 0)
    try:
        with open_input(info.path) as src, av.open(str(target), mode="w", format=_MUXERS[fmt]) as out:
            mapping = {}
            for stream in src.streams:
                if stream.index not in packets:
                    continue
                mapping[stream.index] = out.add_stream_from_template(stream)
                mapping[stream.index].metadata.update(stream.metadata)
            for packet in src.demux():
                index = packet.stream.index
                if (packet.size == 0 and packet.pts is None) or index not in mapping:
                    continue
                seg = seg_of[index][counters[index]]
                counters[index] += 1
                shift = round(offsets[seg] / time_bases[index])
                if packet.pts is not None:
                    packet.pts += shift
                if packet.dts is not None:
                    packet.dts += shift
                packet.stream = mapping[index]
                out.mux(packet)
    except (av.error.FFmpegError, ValueError) as err:
        raise InputError(
            f"{info.path}: the stream clock jumps and the re-timed copy cannot be written: {err}",
            hint=discontinuity_error(info).hint,
        ) from err
    result = probe(target, info.video_stream_index)
    if result.clock_jumps or result.frame_count != info.frame_count:
        raise InputError(
            f"{info.path}: re-timing did not give a continuous copy with every frame "
            f"({result.frame_count} of {info.frame_count} frames, {len(result.clock_jumps)} jumps left)",
            hint=discontinuity_error(info).hint,
        )
    return result


def prepare_source(info: VideoInfo, target: Path) -> VideoInfo:
    """``info`` itself, or for a source whose clock jumps the probe of its re-timed copy at
    ``target`` (written, or replaced, by :func:`retime`). Either way ``target`` holds no stale
    copy afterwards. Used by the single pass and the chunked job's extract alike."""
    target = Path(target)
    target.unlink(missing_ok=True)
    if not info.clock_jumps:
        return info
    return retime(info, target)
