"""Frame-exact chunk I/O: decode one chunk's frames from the source, concatenate chunk outputs.

Decoding a chunk (:func:`decode_chunk`): seek (backward, keyframes only) to the chunk's
``start_pts``, which lands on the last keyframe at or before it (the plan's ``decode_from``);
decode and drop every frame whose pts is below ``start_pts``; yield frames with
``start_pts <= pts < end_pts``. A seek that lands after ``start_pts`` (MPEG-PS/TS demuxers do)
is retried further back, and finally replaced by decoding from the first frame, so no frame is
lost; the first kept frame must be exactly ``start_pts``;
the number of frames kept must equal the chunk's frame count. Nothing is dropped or duplicated
silently: any mismatch is an error naming the chunk.

Concatenation (:func:`remux_chunks`): packet remux (no re-encode) of the chunk outputs into one
video-only NUT stream written into a pipe (:func:`stream_chunks`: the encode stage feeds ffmpeg's
final mux with it, so no concatenated copy is ever stored). Chunk outputs keep the SOURCE pts, so
no timestamp is shifted. Chunked jobs encode chunks WITHOUT B-frames (see
:func:`chunk_encoder_extra`), so every packet has dts == pts and dts increases monotonically across
chunk boundaries; the remux checks that (and that every chunk has the codec parameters of the
first) and refuses otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO

import av
import av.error
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

from vsrflow.errors import InputError, VsrError
from vsrflow.media.condition import Conditioner, Conditioning
from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import open_input
from vsrflow.media.reader import Frame, frame_to_rgb
from vsrflow.workflow.job.plan import Chunk

log = logging.getLogger(__name__)


def chunk_encoder_extra(codec: str) -> dict[str, str]:
    """Encoder options that make chunk outputs safely concatenable: no B-frames (dts == pts).

    x264/x265 chunks start with an IDR frame anyway (a fresh encoder); intra-only codecs (ffv1)
    need nothing.
    """
    if codec in ("libx264", "libx264rgb"):
        return {"bf": "0"}
    if codec == "libx265":
        return {"x265-params": "log-level=error:bframes=0"}
    return {}


#: Keyframe intervals to step back at most when looking for warm-up frames before a chunk.
MAX_WARMUP_SEEKS = 16


def _warmup_seek_pts(container: InputContainer, stream: VideoStream, chunk: Chunk, warmup: int) -> int:
    """Seek target (pts) whose keyframe precedes ``chunk.start`` by at least ``warmup`` frames.

    Steps back one keyframe interval at a time, counting PACKETS (no decoding) with pts below the
    chunk start, until there are enough or no earlier keyframe exists (the stream start).
    """
    target = chunk.start_pts - 1
    landed: int | None = None
    for _ in range(MAX_WARMUP_SEEKS):
        container.seek(target, stream=stream, backward=True, any_frame=False)
        first: int | None = None
        before = 0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            pts = int(packet.pts)
            first = pts if first is None else min(first, pts)
            if pts >= chunk.start_pts:
                break
            before += 1
        if first is None or before >= warmup or first == landed:
            break
        landed = first
        target = first - 1
    return target


def decode_chunk(source: Path, info: VideoInfo, chunk: Chunk, *, warmup: int = 0) -> Iterator[Frame]:
    """RGB :class:`Frame` s of ``[chunk.start, chunk.end)`` and warm-up frames (:func:`decode_chunk_raw`)."""
    for frame, pts, index in decode_chunk_raw(source, info, chunk, warmup=warmup):
        yield Frame(image=frame_to_rgb(frame, info), pts=pts, index=index)


def decode_chunk_raw(
    source: Path, info: VideoInfo, chunk: Chunk, *, warmup: int = 0
) -> Iterator[tuple[av.VideoFrame, int, int]]:
    """Yield exactly the frames ``[chunk.start, chunk.end)`` of ``source`` with their source pts.

    With ``warmup > 0`` (temporal models), first yield up to ``warmup`` frames immediately BEFORE
    the chunk (``index < chunk.start``; fewer only near the start of the video, none for the first
    chunk), so a recurrent model can settle its state before the chunk's first output frame. The
    caller runs them and discards their outputs; the chunk's own frames follow unchanged.

    Raises:
        InputError: the source cannot be decoded, or the decoded frames do not match the plan
            (seek overshoot, missing first frame, wrong frame count): the source changed since
            the plan was made or its timestamps are broken.
    """
    label = f"{source}: chunk {chunk.index} (frames {chunk.start}..{chunk.end - 1})"
    warmup = max(0, warmup) if chunk.start > 0 else 0
    with contextlib.ExitStack() as stack:
        decoded = _land_before(source, info, chunk, warmup, label, stack)
        index = chunk.start
        before: deque[tuple[av.VideoFrame, int]] = deque(maxlen=warmup or 1)
        try:
            for frame in decoded:
                if frame.pts is None:
                    raise InputError(f"{label}: a decoded frame has no pts", hint="remux the source")
                pts = int(frame.pts)
                if pts < chunk.start_pts:
                    if warmup:
                        before.append((frame, pts))  # converted only if it ends up a warm-up frame
                    continue  # decoded only to reach the chunk start
                if pts >= chunk.end_pts:
                    break
                if index == chunk.start and pts != chunk.start_pts:
                    raise InputError(
                        f"{label}: first frame at pts {pts}, expected {chunk.start_pts}",
                        hint="the source changed since extract; resubmit the job",
                    )
                if index == chunk.start and warmup:
                    for i, (early, early_pts) in enumerate(before):
                        yield early, early_pts, chunk.start - len(before) + i
                    before.clear()
                yield frame, pts, index
                index += 1
        except av.error.FFmpegError as err:
            raise InputError(f"{label}: decoding failed at frame {index}: {err}") from err
    if index != chunk.end:
        raise InputError(
            f"{label}: decoded {index - chunk.start} frames, the plan has {chunk.frames}",
            hint="the source changed since extract; resubmit the job",
        )


#: Seconds to step back when a seek lands after the chunk start (MPEG-PS/TS demuxers seek by
#: byte position and timestamps they find, and often land on a later keyframe); after the last
#: one the chunk is decoded from the start of the file.
SEEK_BACKOFF_S = (1.0, 4.0, 16.0)


def _land_before(
    source: Path, info: VideoInfo, chunk: Chunk, warmup: int, label: str, stack: contextlib.ExitStack
) -> Iterator[av.VideoFrame]:
    """Open ``source`` and position its decoder at or before ``chunk.start_pts``.

    Tries the keyframe seek first, then seeks :data:`SEEK_BACKOFF_S` earlier, then no seek at
    all (decode from the first frame). Each try uses a fresh container (a clean demuxer state).
    Returns the decoded frames, first frame included (the container is closed by ``stack``).

    Raises:
        InputError: even decoding from the start gives a first frame after the chunk start.
    """
    back_ticks = [max(1, round(Fraction(str(s)) / info.time_base)) for s in SEEK_BACKOFF_S]
    attempts: list[int | None] = [None]
    if chunk.start > 0:
        # 0: the plain keyframe seek; negative: that many ticks earlier; None: no seek at all.
        attempts = [0, *[-b for b in back_ticks], None]
    for attempt in attempts:
        container = open_input(source)
        stream = container.streams[info.video_stream_index]
        assert isinstance(stream, VideoStream)
        stream.thread_type = "AUTO"
        try:
            if attempt is not None:
                target = _warmup_seek_pts(container, stream, chunk, warmup) if warmup else chunk.start_pts
                container.seek(target + attempt, stream=stream, backward=True, any_frame=False)
            decoded = container.decode(stream)
            first = next(decoded, None)
        except av.error.FFmpegError as err:
            container.close()
            if attempt is None:
                raise InputError(f"{label}: cannot decode from the start: {err}") from err
            log.debug("%s: seek to pts %s failed (%s); trying earlier", label, chunk.start_pts, err)
            continue
        landed = None if first is None or first.pts is None else int(first.pts)
        if attempt is not None and (landed is None or landed > chunk.start_pts):
            log.debug("%s: seek landed at pts %s, after the chunk start; seeking earlier", label, landed)
            container.close()
            continue
        if landed is not None and landed > chunk.start_pts:
            container.close()
            raise InputError(
                f"{label}: the first decodable frame is at pts {landed}, after the chunk start "
                f"{chunk.start_pts}",
                hint="the source changed since extract, or its timestamps are broken; resubmit",
            )
        stack.callback(container.close)
        return itertools.chain([] if first is None else [first], decoded)
    raise AssertionError("unreachable: the last attempt decodes from the start")


def decode_conditioned_chunk(
    source: Path,
    info: VideoInfo,
    conditioning: Conditioning,
    chunk: Chunk,
    source_pts: Sequence[int],
    *,
    warmup: int = 0,
) -> Iterator[Frame]:
    """Yield exactly the CONDITIONED frames ``[chunk.start, chunk.end)`` (plus warm-up frames).

    ``chunk`` is in the conditioned timeline (:meth:`Conditioning.output_info`, the plan's);
    ``source_pts`` are every source frame's pts (``media.keyframes.scan_frames``). The source
    range is decoded frame-exactly (:func:`decode_chunk_raw`) from :attr:`Conditioning.context`
    frames before the chunk (and ``warmup`` conditioned frames more) to as many after it, and run
    through the same :class:`~vsrflow.media.condition.Conditioner` as the single pass, so the
    filters see the same neighbours and the frames and pts equal the single pass's.

    Raises:
        InputError: the frames do not match the plan (count, first pts): the source changed.
    """
    c = conditioning
    n_src = info.frame_count
    n_out = c.output_count(n_src)
    grid = c.cut_multiple
    frames = f"conditioned frames {chunk.start}..{chunk.end - 1}"
    label = f"{source}: chunk {chunk.index} ({frames}, {c.to_text()})"
    out_from = max(0, chunk.start - max(0, warmup)) // grid * grid
    src_from = max(0, c.source_index(out_from) - c.context)
    src_end = n_src if chunk.end >= n_out else c.source_index(chunk.end)
    src_to = min(n_src, src_end + c.context)
    last = max(1, info.last_frame_duration or info.frame_duration_ticks)
    end_pts = source_pts[src_to] if src_to < n_src else source_pts[-1] + last
    span = Chunk(chunk.index, src_from, src_to, source_pts[src_from], end_pts, 0)
    cond = Conditioner(c, info, first_source_index=src_from)

    def conditioned() -> Iterator[tuple[av.VideoFrame, int, int]]:
        for frame, pts, _ in decode_chunk_raw(source, info, span):
            yield from cond.push(frame, pts)
        yield from cond.finish()

    kept = 0
    for frame, index, pts in conditioned():
        if index >= chunk.end:
            break
        if index < chunk.start - max(0, warmup):
            continue
        if index == chunk.start and pts != chunk.start_pts:
            raise InputError(
                f"{label}: first conditioned frame at pts {pts}, the plan has {chunk.start_pts}",
                hint="the source changed since extract; resubmit the job",
            )
        kept += index >= chunk.start
        yield Frame(image=frame_to_rgb(frame, info), pts=pts, index=index)
    if kept != chunk.frames:
        raise InputError(
            f"{label}: conditioned {kept} frames, the plan has {chunk.frames}",
            hint="the source changed since extract; resubmit the job",
        )


def stream_chunks(
    chunks: Sequence[tuple[Chunk, Path]], sink: IO[bytes], time_base: Fraction, offset: int = 0
) -> int:
    """Remux the chunk outputs as one NUT stream into the writable ``sink`` (e.g. ffmpeg's stdin).

    This is how the encode stage joins chunks without storing a concatenated copy: peak scratch
    stays at the chunk outputs themselves. Returns packets written; checks as :func:`remux_chunks`.
    """
    try:
        with av.open(sink, mode="w", format="nut", options={"avoid_negative_ts": "disabled"}) as out:
            return remux_chunks(chunks, out, time_base, offset)
    except av.error.FFmpegError as err:
        raise VsrError(f"streaming the chunk outputs failed: {err}") from err


def remux_chunks(
    chunks: Sequence[tuple[Chunk, Path]], out: OutputContainer, time_base: Fraction, offset: int = 0
) -> int:
    """Mux every packet of the chunk outputs (in plan order) into the open container ``out``.

    ``time_base`` is the plan's (the source video stream's): chunk ranges are checked in it, since
    a chunk file may store another (exactly convertible) time base, as NUT does. ``offset`` is the
    writer's :func:`~vsrflow.media.writer.pts_offset` (chunk files store pts + offset).

    Raises VsrError when a chunk's packet count or pts range does not match its plan entry, when
    dts would not increase across a boundary, or when the chunks' codec parameters differ.
    """
    written = 0
    out_stream = None
    extradata: bytes | None = None
    last_dts: int | None = None
    for chunk, path in chunks:
        with open_input(path) as src:
            in_stream = src.streams.video[0]
            if out_stream is None:
                out_stream = out.add_stream_from_template(in_stream)
                out_stream.time_base = in_stream.time_base
                # The frame rate is not part of the codec parameters the template copies; without
                # it the joined stream's packets have no duration, and an MP4 mux of a short clip
                # gives the last frame none (ffprobe then counts one frame less). The chunks were
                # written with the source's rate (media.writer), so chunk 0's is the job's.
                rate = in_stream.average_rate or in_stream.guessed_rate
                if rate:
                    out_stream.codec_context.framerate = rate
                extradata = in_stream.codec_context.extradata
            elif in_stream.time_base != out_stream.time_base:
                raise VsrError(
                    f"{path}: chunk {chunk.index} has time base {in_stream.time_base}, "
                    f"chunk 0 {out_stream.time_base}",
                    hint="reset the job's chunks and rerun them with one vsrflow version",
                )
            elif in_stream.codec_context.extradata != extradata:
                raise VsrError(
                    f"{path}: chunk {chunk.index} was encoded with other codec parameters "
                    "than chunk 0; its packets cannot be concatenated",
                    hint="reset the job's chunks and rerun them with one vsrflow version",
                )
            count = 0
            for packet in src.demux(in_stream):
                if packet.size == 0 and packet.pts is None:
                    continue  # flush packet
                in_tb = Fraction(in_stream.time_base or time_base)
                pts = None if packet.pts is None else packet.pts * in_tb / time_base - offset
                if pts is None or not chunk.start_pts <= pts < chunk.end_pts:
                    raise VsrError(
                        f"{path}: chunk {chunk.index} has a packet at pts {pts} ({time_base}), "
                        f"outside its range [{chunk.start_pts}, {chunk.end_pts})"
                    )
                dts = packet.dts if packet.dts is not None else int(packet.pts or 0)
                if last_dts is not None and dts <= last_dts:
                    raise VsrError(
                        f"{path}: chunk {chunk.index}: dts {dts} does not increase after {last_dts}",
                        hint="chunks must be encoded without B-frames (chunk_encoder_extra)",
                    )
                last_dts = dts
                packet.stream = out_stream
                out.mux(packet)
                count += 1
            if count != chunk.frames:
                raise VsrError(
                    f"{path}: chunk {chunk.index} has {count} frames, the plan {chunk.frames}",
                    hint="rerun that chunk (delete its output, then `vsrflow job upscale-chunk`)",
                )
            written += count
    return written
