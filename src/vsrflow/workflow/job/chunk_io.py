"""Frame-exact chunk I/O: decode one chunk's frames from the source, concatenate chunk outputs.

Decoding a chunk (:func:`decode_chunk`): seek (backward, keyframes only) to the chunk's
``start_pts``, which lands on the last keyframe at or before it (the plan's ``decode_from``);
decode and drop every frame whose pts is below ``start_pts``; yield frames with
``start_pts <= pts < end_pts``. The first decoded frame must not lie after ``start_pts`` (else the
seek overshot and frames would be lost) and the first kept frame must be exactly ``start_pts``;
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
from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import open_input
from vsrflow.media.reader import Frame, frame_to_rgb
from vsrflow.workflow.job.plan import Chunk


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
    container = open_input(source)
    with container:
        stream = container.streams[info.video_stream_index]
        assert isinstance(stream, VideoStream)
        stream.thread_type = "AUTO"
        if chunk.start > 0:
            try:
                target = _warmup_seek_pts(container, stream, chunk, warmup) if warmup else chunk.start_pts
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError as err:
                raise InputError(f"{label}: cannot seek to pts {chunk.start_pts}: {err}") from err
        index = chunk.start
        first = True
        before: deque[tuple[av.VideoFrame, int]] = deque(maxlen=warmup or 1)
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    raise InputError(f"{label}: a decoded frame has no pts", hint="remux the source")
                pts = int(frame.pts)
                if first:
                    first = False
                    if pts > chunk.start_pts:
                        raise InputError(
                            f"{label}: seek landed at pts {pts}, after the chunk start {chunk.start_pts}",
                            hint="the source changed since extract, or its index is broken; resubmit",
                        )
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
                        rgb = frame_to_rgb(early, info)
                        yield Frame(image=rgb, pts=early_pts, index=chunk.start - len(before) + i)
                    before.clear()
                yield Frame(image=frame_to_rgb(frame, info), pts=pts, index=index)
                index += 1
        except av.error.FFmpegError as err:
            raise InputError(f"{label}: decoding failed at frame {index}: {err}") from err
    if index != chunk.end:
        raise InputError(
            f"{label}: decoded {index - chunk.start} frames, the plan has {chunk.frames}",
            hint="the source changed since extract; resubmit the job",
        )


def stream_chunks(chunks: Sequence[tuple[Chunk, Path]], sink: IO[bytes], time_base: Fraction) -> int:
    """Remux the chunk outputs as one NUT stream into the writable ``sink`` (e.g. ffmpeg's stdin).

    This is how the encode stage joins chunks without storing a concatenated copy: peak scratch
    stays at the chunk outputs themselves. Returns packets written; checks as :func:`remux_chunks`.
    """
    try:
        with av.open(sink, mode="w", format="nut", options={"avoid_negative_ts": "disabled"}) as out:
            return remux_chunks(chunks, out, time_base)
    except av.error.FFmpegError as err:
        raise VsrError(f"streaming the chunk outputs failed: {err}") from err


def remux_chunks(chunks: Sequence[tuple[Chunk, Path]], out: OutputContainer, time_base: Fraction) -> int:
    """Mux every packet of the chunk outputs (in plan order) into the open container ``out``.

    ``time_base`` is the plan's (the source video stream's): chunk ranges are checked in it, since
    a chunk file may store another (exactly convertible) time base, as NUT does.

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
                pts = None if packet.pts is None else packet.pts * in_tb / time_base
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
