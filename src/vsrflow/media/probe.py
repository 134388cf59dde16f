"""Probe a media file with PyAV: count packets, read timing, colour, rotation and every stream.

One demux pass over the video stream (fast: no decoding except the first frame, which proves the
stream decodes and carries the display matrix). ``nb_frames`` from headers is never trusted.
"""

from __future__ import annotations

import itertools
import logging
import os
import statistics
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.container import InputContainer
from av.sidedata.sidedata import Type as SideDataType
from av.stream import Disposition, Stream
from av.video.stream import VideoStream

from vsrflow.errors import InputError
from vsrflow.media.colour import MATRICES, PRIMARIES, RANGES, TRANSFERS, name_of
from vsrflow.media.ebml import segment_is_cut
from vsrflow.media.info import (
    CLOCK_CONTAINERS,
    CLOCK_JUMP_S,
    ClockJump,
    Damage,
    HdrMetadata,
    StreamInfo,
    VideoInfo,
    field_order_name,
)

log = logging.getLogger(__name__)

_FIX_MEDIA = "re-export or re-upload the file as MP4/MKV/MOV with one video stream"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found", hint="check the path and that the upload finished")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file", hint="pass a video file, not a directory")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)", hint="the upload or export did not complete")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: file is not readable", hint="fix its permissions")


def _open_error(path: Path, err: Exception) -> InputError:
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[4:8] == b"ftyp":
        # An ISO-BMFF header without a usable moov: cut off during upload, or still being written.
        return InputError(
            f"{path}: truncated or incomplete MP4/MOV (moov atom missing): {err}",
            hint="the file was cut off; upload it again completely, or remux it with -movflags +faststart",
        )
    return InputError(f"{path}: not a recognisable media file: {err}", hint=_FIX_MEDIA)


def open_input(path: Path) -> InputContainer:
    """Open ``path`` with PyAV, turning every failure into an :class:`InputError` naming the file."""
    path = Path(path)
    _check_file(path)
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as err:
        raise _open_error(path, err) from err


def _stream_kind(stream: Stream) -> str:
    kind = str(stream.type)
    return kind if kind in ("video", "audio", "subtitle", "attachment") else "data"


def _codec_name(stream: Stream) -> str:
    """The codec id name ('subrip', 'ass', 'h264'), as ffprobe prints it, not the decoder's name."""
    try:
        ctx = stream.codec_context
        if ctx is not None and ctx.codec is not None:
            return str(ctx.codec.canonical_name)
    except (AttributeError, ValueError):
        pass
    return "unknown"


def _stream_info(stream: Stream) -> StreamInfo:
    codec = _codec_name(stream)
    meta = {k.lower(): v for k, v in stream.metadata.items()}
    language = stream.language or meta.get("language")
    disp = stream.disposition
    flags = tuple(flag.name for flag in Disposition if flag.name and disp & flag)
    return StreamInfo(
        index=stream.index,
        kind=_stream_kind(stream),
        codec=codec,
        language=None if not language or language == "und" else language,
        title=meta.get("title"),
        default=bool(disp & Disposition.default),
        forced=bool(disp & Disposition.forced),
        dispositions=flags,
        attached_pic=bool(disp & Disposition.attached_pic),
        start_time=None
        if stream.start_time is None or not stream.time_base
        else stream.start_time * Fraction(stream.time_base),
    )


def pick_video(container: InputContainer, path: Path, index: int | None = None) -> VideoStream:
    """The video stream to process: stream ``index`` of ``container`` when given (``--video-stream``),
    else its first real video stream (cover art is skipped); InputError if there is none."""
    if index is not None:
        chosen = next((s for s in container.streams if s.index == index), None)
        if chosen is None or chosen.type != "video" or chosen.disposition & Disposition.attached_pic:
            found = [s.index for s in container.streams.video if not s.disposition & Disposition.attached_pic]
            raise InputError(
                f"{path}: stream {index} is not a video stream to upscale",
                hint=f"--video-stream takes one of {', '.join(map(str, found)) or 'none'} "
                "(the stream indices `vsrflow probe` lists)",
            )
        return chosen  # type: ignore[return-value]
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:
            return stream
    kinds = ", ".join(sorted({str(s.type) for s in container.streams})) or "none"
    raise InputError(
        f"{path}: no video stream (streams found: {kinds})",
        hint="vsrflow upscales video; pass a file that contains a video track",
    )


def _normalise_rotation(degrees: float) -> int:
    return round(degrees / 90.0) * 90 % 360


def _is_vfr(pts: list[int]) -> bool:
    """True when frame intervals vary by more than one tick and 1 % of the median interval.

    The one-tick slack absorbs millisecond rounding in Matroska (29.97 fps stores 33/34 ms).
    """
    if len(pts) < 3:
        return False
    ordered = sorted(pts)
    deltas = [b - a for a, b in itertools.pairwise(ordered)]
    median = statistics.median(deltas)
    slack = max(1.0, 0.01 * median)
    return any(abs(d - median) > slack for d in deltas)


#: A Matroska video may end this much (or two nominal frames, whichever is more) before its
#: DURATION tag and still count as whole: the tag is rounded to the millisecond and includes the
#: encoder's reordering delay (ffmpeg tags a 3.000 s x264 stream 3.023 s).
DAMAGE_TOLERANCE_S = 0.25
#: The way past a refused damaged source (both ``upscale`` and ``submit`` take the flag).
ACCEPT_DAMAGED = "--accept-damaged"


def duration_tag(stream: Stream) -> Fraction | None:
    """The stream's ``DURATION`` tag (``HH:MM:SS.fraction``, Matroska statistics tags written by
    ffmpeg and mkvmerge when the file is finalised) in seconds, exactly; None when absent or
    unreadable. ffmpeg's muxer writes the track's end: its largest pts + duration."""
    value = next((v for k, v in stream.metadata.items() if k.upper() == "DURATION"), None)
    try:
        hours, minutes, seconds = str(value).split(":")
        return int(hours) * 3600 + int(minutes) * 60 + Fraction(seconds)
    except ValueError:
        return None


def _tag_seconds(video: VideoStream) -> float | None:
    tag = duration_tag(video)
    return None if tag is None else float(tag)


def _held_last_frame(path: Path, format_name: str, video: VideoStream, last: int, last_dur: int) -> int:
    """The last frame's duration (time_base units) of a whole Matroska file whose video track ends
    later than its last packet's default duration says: ffmpeg's muxer writes no BlockDuration, so
    a last frame held long (an animated GIF's final delay) is stated only in the DURATION tag. A
    file cut short (:func:`~vsrflow.media.ebml.segment_is_cut`) is not read so: it is damage."""
    tag = duration_tag(video) if "matroska" in format_name.split(",") else None
    if tag is None or not video.time_base:
        return last_dur
    end = round(tag / Fraction(video.time_base))
    if end - last > last_dur + 1 and segment_is_cut(path) is False:  # +1: Matroska's ms rounding
        return end - last
    return last_dur


def _cut_short(
    format_name: str, video: VideoStream, demuxed: int, readable: float, rate: Fraction
) -> Damage | None:
    """What the container declares and the file does not hold, or None when it is whole.

    Only containers that declare a length independently of the data are judged; the others
    (MPEG-TS, whose length is estimated from the bit rate; Ogg, read from its last page) give
    no witness. MP4/MOV: the sample table is exact (edit-list preroll is demuxed too, flagged
    discard), so any shortfall counts. Matroska: the video track's DURATION tag, with
    :data:`DAMAGE_TOLERANCE_S`; an unfinalised recording has no tag and is not judged. Per
    track, so audio that runs longer than the video is no damage.
    """
    formats = set(format_name.split(","))
    declared_frames = int(video.frames or 0)
    if {"mov", "mp4"} & formats and declared_frames > demuxed:
        lost = declared_frames - demuxed
        declared = float(video.duration * video.time_base) if video.duration and video.time_base else 0.0
        declared = max(declared, readable + float(lost / rate))
        return Damage(declared, readable, lost, "index", declared_frames=declared_frames)
    declared_tag = _tag_seconds(video) if "matroska" in formats else None
    if declared_tag is not None and declared_tag - readable > max(DAMAGE_TOLERANCE_S, float(2 / rate)):
        return Damage(declared_tag, readable, max(1, round((declared_tag - readable) * rate)), "DURATION tag")
    return None


def _refuse_damage(path: Path, damage: Damage, accept: bool) -> None:
    """InputError for a cut-short source unless ``accept`` (then a warning naming the loss)."""
    if accept:
        log.warning("%s: damaged source accepted (%s): %s", path, ACCEPT_DAMAGED, damage.describe())
        return
    raise InputError(
        f"{path}: damaged source (cut short: an incomplete upload or copy?): {damage.describe()}",
        hint=f"upload or copy the whole file again, or pass {ACCEPT_DAMAGED} to upscale what is "
        "there and report the loss",
    )


def _hdr_metadata(frame: av.VideoFrame) -> HdrMetadata | None:
    """The HDR10 static metadata a decoded frame carries (from the HEVC/AV1/VP9 bitstream's SEI or
    metadata OBUs, as FFmpeg exports them), or None.

    The side data are FFmpeg's structs: AVMasteringDisplayMetadata (ten AVRationals: R, G, B
    primaries and the white point as x, y, then min and max luminance; has_primaries,
    has_luminance) and AVContentLightMetadata (MaxCLL, MaxFALL).
    """
    master = cll = None
    sides: list[Any] = list(frame.side_data)  # iterating the container yields SideData (the stub says keys)
    for side in sides:
        kind = str(getattr(side.type, "name", side.type))
        data = bytes(side)
        if kind == "MASTERING_DISPLAY_METADATA" and len(data) >= 88:
            *ratios, has_primaries, has_luminance = struct.unpack_from("<20i2i", data)
            pairs = zip(ratios[::2], ratios[1::2], strict=True)
            values = [Fraction(n, d) if d else Fraction(0) for n, d in pairs]
            (rx, ry, gx, gy, bx, by, wx, wy, lmin, lmax) = values
            if has_primaries and has_luminance:

                def xy(x: Fraction, y: Fraction) -> str:
                    return f"({round(x * 50000)},{round(y * 50000)})"

                master = (
                    f"G{xy(gx, gy)}B{xy(bx, by)}R{xy(rx, ry)}WP{xy(wx, wy)}"
                    f"L({round(lmax * 10000)},{round(lmin * 10000)})"
                )
        elif kind == "CONTENT_LIGHT_LEVEL" and len(data) >= 8:
            max_cll, max_fall = struct.unpack_from("<2I", data)
            cll = f"{max_cll},{max_fall}"
    return HdrMetadata(master, cll) if master or cll else None


def clock_jumps(format_name: str, decode_ts: list[int], tb: Fraction) -> tuple[ClockJump, ...]:
    """Discontinuities of an MPEG-PS/TS clock in a stream's timestamps (decode order).

    ``decode_ts``: the packets' dts (their pts when no dts), in decode order. Within one capture
    dts only increases and by less than :data:`CLOCK_JUMP_S`; a step back (two captures joined
    with ``cat``, both starting at the recorder's clock) or forward by more than that is a jump.
    Other containers: none (their timestamps are the presentation times the file means).
    """
    if not CLOCK_CONTAINERS & set(format_name.split(",")):
        return ()
    forward = round(CLOCK_JUMP_S / tb)
    jumps = []
    for i, (a, b) in enumerate(itertools.pairwise(decode_ts), start=1):
        if b - a > forward or b < a:
            jumps.append(ClockJump(packet=i, at=float((a - decode_ts[0]) * tb), jump=float((b - a) * tb)))
    return tuple(jumps)


def discontinuity_error(info: VideoInfo) -> InputError:
    """The InputError for reading a source whose clock jumps as it is (name, jump, the fix)."""
    first = info.clock_jumps[0]
    return InputError(
        f"{info.path}: timestamp discontinuity at video packet {first.packet} ({first.at:.3f} s in): "
        f"the stream clock jumps by {first.jump:+.3f} s (joined captures?)",
        hint=f"re-time it first: ffmpeg -i {info.path.name} -map 0 -c copy retimed.mkv "
        "(vsrflow upscale and submit re-time such sources themselves)",
    )


def timing_notes(info: VideoInfo) -> list[str]:
    """What vsrflow does about the source's timing, one warning line each (empty: nothing).

    The single pass and the chunked job's extract log these once per run.
    """
    notes = []
    if info.skipped_packets:
        notes.append(
            f"{info.path}: {info.skipped_packets} leading video packets before the first keyframe cannot "
            "be decoded (the capture starts mid-GOP: their reference pictures are not in the file) "
            f"and were skipped; the video starts at its first decodable frame ({info.frame_count} frames)"
        )
    return notes


#: Packets decoded at most while looking for the first picture (a long GOP of a capture cut in
#: its middle); a stream giving none by then is reported undecodable.
FIRST_FRAME_PACKETS = 600


@dataclass
class PacketScan:
    """The video packets of one demux pass, and the first picture they decode to.

    Attributes:
        frames: (pts, dts, duration, keyframe) of each packet that is a frame, decode order:
            not edit-list preroll (flagged discard: decoded for reference, never presented) and
            not presented before the first decodable picture (``first_frame``).
        discarded: edit-list preroll packets. undecodable: leading packets presented before the
            first decodable picture (a capture cut mid-GOP: they reference missing pictures).
        first_frame: the first decoded picture (None: nothing decoded); decode_error: why not.
    """

    frames: list[PacketRow]
    discarded: int
    undecodable: int
    first_frame: av.VideoFrame | None
    decode_error: Exception | None


#: (pts, dts, duration, keyframe) of one video packet.
PacketRow = tuple[int | None, int | None, int, bool]


def _steps_back(a: PacketRow, b: PacketRow) -> bool:
    """True when packet ``b``'s decode time (dts, else pts) is below ``a``'s (both known)."""
    ta = a[1] if a[1] is not None else a[0]
    tb = b[1] if b[1] is not None else b[0]
    return ta is not None and tb is not None and tb < ta


def scan_packets(container: InputContainer, video: VideoStream, path: Path) -> PacketScan:
    """Demux every packet of ``video`` (decoding only until the first picture): the one rule for
    which packets are frames, shared by :func:`probe` and :mod:`vsrflow.media.keyframes`.

    Raises:
        InputError: the demuxer fails part-way (naming the path and the packet count).
    """
    packets: list[PacketRow] = []
    discarded = 0
    first_frame = None
    decode_error: Exception | None = None
    try:
        for packet in container.demux(video):
            if packet.size == 0 and packet.pts is None:
                continue  # PyAV's end-of-stream flush packet, not a frame
            if first_frame is None and len(packets) + discarded < FIRST_FRAME_PACKETS:
                try:
                    decoded = video.decode(packet)
                except av.error.FFmpegError as err:
                    decode_error, decoded = err, []
                if decoded:
                    first_frame = decoded[0]
            if packet.is_discard:
                discarded += 1
                continue
            pts = None if packet.pts is None else int(packet.pts)
            dts = None if packet.dts is None else int(packet.dts)
            packets.append((pts, dts, int(packet.duration or 0), bool(packet.is_keyframe)))
        if first_frame is None and packets:
            try:
                decoded = video.decode(None)
                first_frame = decoded[0] if decoded else None
            except av.error.FFmpegError as err:
                decode_error = err
    except av.error.FFmpegError as err:
        raise InputError(
            f"{path}: damaged video stream after {len(packets)} packets: {err}", hint=_FIX_MEDIA
        ) from err
    frames = packets
    first_pts = None if first_frame is None or first_frame.pts is None else int(first_frame.pts)
    if first_pts is not None:
        # The decoder skips pictures whose references are not in the file (P/B frames before the
        # first keyframe, leading B-frames of an open GOP); they never become frames. Only the
        # lead counts: packets up to the first step back of the clock (a joined second capture
        # may well present "before" the first one).
        lead = next(
            (i for i in range(1, len(packets)) if _steps_back(packets[i - 1], packets[i])), len(packets)
        )
        lead = min(lead, FIRST_FRAME_PACKETS)
        frames = [p for i, p in enumerate(packets) if i >= lead or p[0] is None or p[0] >= first_pts]
    return PacketScan(frames, discarded, len(packets) - len(frames), first_frame, decode_error)


def probe(path: Path | str, video_stream: int | None = None, *, accept_damaged: bool = False) -> VideoInfo:
    """Probe ``path`` and return its :class:`VideoInfo` (of stream ``video_stream`` when given, see
    :func:`pick_video`).

    ``accept_damaged``: a source that holds less video than its container declares (cut short,
    see :func:`_cut_short`) is probed as what it holds, with :attr:`VideoInfo.damage` saying
    what is missing, instead of being refused.

    Raises:
        InputError: missing, empty, unreadable, truncated (moov missing) or non-media file; no video
            stream; no video packets; the video stream does not decode; cut short (unless
            ``accept_damaged``). The message names the path.
    """
    path = Path(path)
    container = open_input(path)
    with container:
        video = pick_video(container, path, video_stream)
        streams = tuple(_stream_info(s) for s in container.streams)
        video.thread_type = "AUTO"
        tb = video.time_base or Fraction(1, 1000)

        scan = scan_packets(container, video, path)
        first_frame, decode_error = scan.first_frame, scan.decode_error
        count = len(scan.frames)
        pts_list = [p[0] for p in scan.frames if p[0] is not None]  # decode order
        durations = {p[0]: p[2] for p in scan.frames if p[0] is not None}
        decode_ts = [p[1] if p[1] is not None else p[0] for p in scan.frames]
        jumps = clock_jumps(container.format.name, [t for t in decode_ts if t is not None], Fraction(tb))
        # Packets the container's index lists that are not frames (edit-list preroll, an
        # undecodable lead): the cut-short check compares the index with every packet.
        discarded = scan.discarded + scan.undecodable
        rate = video.base_rate or video.guessed_rate or video.average_rate or Fraction(25)
        avg = video.average_rate or rate
        start = min(pts_list) if pts_list else 0
        last = max(pts_list) if pts_list else start + (count - 1) * max(1, round(1 / rate / tb))
        last_dur = durations.get(last, 0)
        if last_dur <= 0:
            ordered = sorted(pts_list)
            last_dur = ordered[-1] - ordered[-2] if len(ordered) >= 2 else max(1, round(1 / rate / tb))
        last_dur = _held_last_frame(path, container.format.name, video, last, last_dur)
        duration = float((last + last_dur - start) * tb)
        damage = _cut_short(container.format.name, video, count + discarded, duration, Fraction(rate))
        if damage is not None:
            _refuse_damage(path, damage, accept_damaged)
        # After the damage check: a cut-short file is named as such, not as undecodable.
        if count == 0:
            raise InputError(f"{path}: the video stream has no frames", hint=_FIX_MEDIA)
        if first_frame is None:
            detail = f": {decode_error}" if decode_error else ""
            raise InputError(f"{path}: the video stream cannot be decoded{detail}", hint=_FIX_MEDIA)

        ctx = video.codec_context

        # The container's SAR first, the bitstream's as fallback: ffmpeg's av_guess_sample_aspect_ratio,
        # what ffprobe reports and players show. The decoder's alone can be invented: the H.263
        # decoder says 12:11 for every CIF-family picture, where the 3GP track says 1:1.
        sar = video.sample_aspect_ratio or ctx.sample_aspect_ratio
        sar = Fraction(sar) if sar and sar > 0 else Fraction(1)
        rotation = _normalise_rotation(first_frame.rotation)
        if rotation == 0 and "rotate" in video.metadata:
            rotation = _normalise_rotation(float(video.metadata["rotate"]))
        fmt = first_frame.format
        pix_fmt = fmt.name
        bit_depth = fmt.components[0].bits if fmt.components else 8
        # Prefer the decoded frame's tags (from the bitstream); the container's are a fallback.
        primaries = name_of(PRIMARIES, first_frame.color_primaries) or name_of(PRIMARIES, ctx.color_primaries)
        transfer = name_of(TRANSFERS, first_frame.color_trc) or name_of(TRANSFERS, ctx.color_trc)
        matrix = name_of(MATRICES, first_frame.colorspace) or name_of(MATRICES, ctx.colorspace)
        crange = name_of(RANGES, first_frame.color_range) or name_of(RANGES, ctx.color_range)
        if fmt.is_rgb:
            matrix = matrix or "gbr"

        info = VideoInfo(
            path=path,
            container=container.format.name.split(",")[0],
            width=first_frame.width or ctx.width,
            height=first_frame.height or ctx.height,
            frame_rate=Fraction(rate),
            avg_frame_rate=Fraction(avg),
            time_base=Fraction(tb),
            frame_count=count,
            duration=duration,
            start_pts=start,
            sar=sar,
            rotation=rotation,
            pix_fmt=pix_fmt,
            bit_depth=bit_depth,
            color_primaries=primaries,
            color_transfer=transfer,
            color_matrix=matrix,
            color_range=crange,
            is_vfr=_is_vfr(pts_list),
            video_stream_index=video.index,
            streams=streams,
            chapters=len(container.chapters()),
            codec=_codec_name(video),
            last_frame_duration=last_dur,
            format_tags=tuple(sorted(container.metadata.items())),
            field_order=field_order_name(getattr(ctx, "field_order", 0)),
            damage=damage,
            hdr=_hdr_metadata(first_frame),
            # CEA-608/708 captions travel in the frames' A/53 side data (what ffprobe shows as
            # "Closed Captions"); the first decoded frame carries them when the stream has any.
            closed_captions=SideDataType.A53_CC in first_frame.side_data,
            skipped_packets=scan.undecodable,
            clock_jumps=jumps,
        )
    log.debug("probed %s: %s", path, info)
    return info


def scan_type(location: Path | str, *, frames: int = 24) -> str:
    """What the stream says about its scan: ``progressive``, ``interlaced (<field order>)`` or ``unknown``.

    Decodes up to ``frames`` frames and reads the decoder's flags (the encoder's interlaced
    flag per frame and the stream's field order); ``unknown`` when no frame decoded. This is what
    the headers claim, not a content analysis (telecined film is flagged progressive).

    ``location``: a path or an ``http(s)`` URL (only the first frames are read).

    Raises:
        InputError: as :func:`open_location` and :func:`pick_video`.
    """
    container, shown = open_location(location)
    with container:
        video = pick_video(container, shown)
        interlaced = seen = 0
        try:
            for frame in container.decode(video):
                seen += 1
                interlaced += bool(frame.interlaced_frame)
                if seen >= frames:
                    break
        except av.error.FFmpegError:
            pass  # a damaged tail: the probe reports it; the flags of what decoded still count
        order = str(getattr(video.codec_context, "field_order", "") or "").lower()
    if interlaced or order in ("tt", "bb", "tb", "bt"):
        return f"interlaced ({order})" if order in ("tt", "bb", "tb", "bt") else "interlaced"
    return "progressive" if seen else "unknown"


def open_location(location: Path | str) -> tuple[InputContainer, Path]:
    """Open a path (:func:`open_input`) or an ``http(s)`` URL (a presigned GET: ranges only);
    returns the container and the name to show in messages (a URL without its query)."""
    text = str(location)
    if not text.startswith(("http://", "https://")):
        return open_input(Path(text)), Path(text)
    shown = Path(text.split("?", 1)[0])
    try:
        return av.open(text, mode="r"), shown
    except av.error.FFmpegError as err:
        raise InputError(f"{shown}: cannot be read: {err}", hint="check that the object exists") from err


@dataclass(frozen=True)
class HeaderFacts:
    """What a container's headers say (no packet count; see :func:`probe` for the exact facts).

    Attributes:
        width, height: coded size. duration: seconds (0.0 when the header has none).
        frames: the header's frame count (0 when absent, e.g. MKV). frame_rate: the nominal rate.
        codec, container: short names. streams: one line per stream (``#i kind codec (lang)``).
    """

    width: int
    height: int
    duration: float
    frames: int
    frame_rate: Fraction
    codec: str
    container: str
    streams: tuple[str, ...]


def header_facts(location: Path | str) -> HeaderFacts:
    """The :class:`HeaderFacts` of a path or URL, reading the headers only."""
    container, shown = open_location(location)
    with container:
        video = pick_video(container, shown)
        lines = []
        for stream in container.streams:
            info = _stream_info(stream)
            lines.append(
                f"#{info.index} {info.kind} {info.codec}" + (f" ({info.language})" if info.language else "")
            )
        duration = 0.0
        if video.duration is not None and video.time_base is not None:
            duration = float(video.duration * video.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        return HeaderFacts(
            width=video.codec_context.width,
            height=video.codec_context.height,
            duration=duration,
            frames=int(video.frames or 0),
            frame_rate=Fraction(video.average_rate or video.base_rate or 0),
            codec=_codec_name(video),
            container=container.format.name.split(",")[0],
            streams=tuple(lines),
        )


def coded_size(location: str) -> tuple[int, int]:
    """(width, height) of the video stream of ``location``: a local path or an ``http(s)`` URL."""
    facts = header_facts(location)
    return facts.width, facts.height
