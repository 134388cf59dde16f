"""Final mux: upscaled video + every audio/subtitle/attachment stream, chapters and tags of the source.

Audio is stream-copied (bit-identical). Subtitles are copied unless the target container cannot hold
their codec, then converted with a logged warning (text -> mov_text for MP4/MOV, mov_text -> srt
for Matroska). Source timestamps are kept (``-copyts``), so audio stays in sync even when the video
starts later than the audio; a positive start clock (MPEG-PS/TS) is removed from every stream alike
(:func:`leading_time`), so the output starts at 0 with the source's relative timing. The result is
written to a hidden temporary name next to ``output``, validated by probing (frame count, duration,
streams, rotation) and only then renamed into place; on any failure nothing is left at ``output``
or in the temporary name.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import IO

from vsrflow.errors import InputError, VsrError
from vsrflow.media.ffmpeg import run_ffmpeg, run_ffmpeg_fed
from vsrflow.media.info import CLOCK_CONTAINERS, StreamInfo, VideoInfo
from vsrflow.media.probe import probe
from vsrflow.media.writer import pts_offset

log = logging.getLogger(__name__)

#: Output suffix -> ffmpeg muxer.
MUXERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

#: Video codec ids the ffmpeg CLI's (5.1) mp4/mov muxers accept for stream copy; Matroska takes them all.
_MP4_VIDEO = {"h264", "hevc", "mpeg4", "av1", "vp9", "mjpeg", "mpeg2video", "mpeg1video"}
_MOV_VIDEO = _MP4_VIDEO | {"prores", "png", "rawvideo", "dnxhd", "qtrle"}

_TEXT_SUBS = {"subrip", "srt", "ass", "ssa", "webvtt", "text", "mov_text"}
_MP4_SUBS = {"mov_text", "dvd_subtitle"}


class OutputValidationError(VsrError):
    """The assembled file does not match the source (frames, duration or streams); nothing was kept."""


@dataclass(frozen=True)
class PlannedStream:
    """One source stream carried into the output: its output codec (None = stream copy)."""

    source: StreamInfo
    convert_to: str | None = None


def _is_mp4_family(muxer: str) -> bool:
    return muxer in ("mp4", "mov")


def plan_streams(source: VideoInfo, muxer: str) -> list[PlannedStream]:
    """Decide which non-video source streams go into a ``muxer`` output and how.

    Raises:
        InputError: a subtitle stream the target container cannot hold and that cannot be converted
            (bitmap subtitles into MP4): use .mkv instead of silently dropping it.
    """
    planned: list[PlannedStream] = []
    for st in source.non_video_streams:
        if st.kind == "audio":
            planned.append(PlannedStream(st))
        elif st.kind == "subtitle":
            if _is_mp4_family(muxer):
                if st.codec in _MP4_SUBS:
                    planned.append(PlannedStream(st))
                elif st.codec in _TEXT_SUBS:
                    log.warning(
                        "subtitle stream %d (%s) of %s converted to mov_text: %s cannot hold %s "
                        "(styling is lost; use an .mkv output to keep it)",
                        st.index,
                        st.codec,
                        source.path,
                        muxer,
                        st.codec,
                    )
                    planned.append(PlannedStream(st, "mov_text"))
                else:
                    raise InputError(
                        f"{source.path}: subtitle stream {st.index} ({st.codec}) cannot be stored in {muxer}",
                        hint="write an .mkv output to keep bitmap subtitles",
                    )
            elif st.codec == "mov_text":
                log.warning(
                    "subtitle stream %d (mov_text) of %s converted to srt: Matroska cannot hold mov_text",
                    st.index,
                    source.path,
                )
                planned.append(PlannedStream(st, "srt"))
            else:
                planned.append(PlannedStream(st))
        elif st.kind == "attachment":
            if _is_mp4_family(muxer):
                log.warning(
                    "attachment stream %d of %s dropped: %s cannot hold attachments",
                    st.index,
                    source.path,
                    muxer,
                )
            else:
                planned.append(PlannedStream(st))
        else:
            # Data streams (timecode, GPS...) and cover art are not media the output needs; say so.
            what = "cover-art" if st.attached_pic else st.kind
            log.warning(
                "%s stream %d (%s) of %s not carried into the output", what, st.index, st.codec, source.path
            )
    return planned


def _muxer_for(output: Path) -> str:
    muxer = MUXERS.get(output.suffix.lower())
    if muxer is None:
        raise InputError(
            f"{output}: unsupported output container {output.suffix!r}",
            hint=f"use one of {', '.join(sorted(MUXERS))}",
        )
    return muxer


def check_video_codec(output: Path, codec_id: str) -> None:
    """Refuse, before any work, a video codec id the output's container cannot hold (ffv1 in .mp4).

    Without this the run computed every frame and then failed in the final mux with exit 1.
    """
    muxer = _muxer_for(Path(output))
    allowed = _MOV_VIDEO if muxer == "mov" else _MP4_VIDEO if muxer == "mp4" else None
    if allowed is not None and codec_id not in allowed:
        raise InputError(
            f"{output}: a {Path(output).suffix} ({muxer}) file cannot hold {codec_id} video",
            hint="write an .mkv output, or choose --codec libx264/libx265",
        )


def _check_output_dir(output: Path) -> None:
    parent = output.parent
    if not parent.is_dir():
        raise InputError(f"{output}: output directory {parent} does not exist", hint="create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{output}: output directory {parent} is not writable", hint="fix its permissions")


def leading_time(source: VideoInfo, planned: list[PlannedStream]) -> Fraction:
    """Seconds before the first kept stream starts: the smallest start of the video and of every
    planned stream (exact; 0 when none is known). The mux removes it when positive."""
    starts = [source.start_pts * source.time_base]
    starts += [p.source.start_time for p in planned if p.source.start_time is not None]
    return min(starts)


#: Demuxers that store decode times only: the frames' pts are derived (dts + the decoder's reorder
#: delay), while the container presents its first frame at the stream's start.
DTS_ONLY_CONTAINERS = frozenset({"avi"})


def reorder_delay(source: VideoInfo) -> Fraction:
    """Seconds the derived pts of a DTS-only container (AVI with B-frames: Xvid/DivX) start after
    its video stream's start (its first dts); 0 elsewhere. The mux moves the video back by it, so
    the output keeps the source's A/V start offset (ffmpeg's own transcode adds that one frame,
    40 ms at 25 fps, to the video)."""
    video = next((s for s in source.streams if s.index == source.video_stream_index), None)
    if source.container not in DTS_ONLY_CONTAINERS or video is None or video.start_time is None:
        return Fraction(0)
    return max(Fraction(0), source.start_pts * source.time_base - video.start_time)


def _itsoffset(seconds: Fraction) -> list[str]:
    """``-itsoffset S`` (microseconds: what ffmpeg parses) for a non-zero shift, else nothing."""
    micro = round(seconds * 1_000_000)
    if micro == 0:
        return []
    sign, micro = ("-" if micro < 0 else ""), abs(micro)
    return ["-itsoffset", f"{sign}{micro // 1_000_000}.{micro % 1_000_000:06d}"]


def build_argv(
    video_path: Path,
    video: VideoInfo,
    source: VideoInfo,
    target: Path,
    muxer: str,
    planned: list[PlannedStream],
    ffmpeg: str = "ffmpeg",
    video_format: str | None = None,
    video_adjust: Fraction = Fraction(0),
) -> list[str]:
    """The ffmpeg argument list that muxes ``video_path``'s video with ``source``'s other streams.

    ``video_adjust``: seconds added to the video's shift (the correction :func:`_av_error`
    measured on a first mux).

    ``video_format`` forces the demuxer of the video input (needed for ``pipe:0``); when it is
    set ffmpeg reads its stdin, so ``-nostdin`` is left out.
    """
    argv = [ffmpeg, "-hide_banner", "-v", "error", "-y"]
    if video_format is None:
        argv.insert(1, "-nostdin")
    # -copyts keeps every timestamp as it is in the inputs: without it ffmpeg shifts each input to
    # start at 0, and a video starting after the audio (AAC priming) would drift out of sync.
    argv += ["-copyts"]
    # ... but a broadcast clock (MPEG-PS/TS start at 0.5 s, 1.4 s, 10 h) would become leading
    # empty time: shift BOTH inputs by the same amount, so the earliest kept stream starts at 0
    # and every relative offset (A/V) stays exact. Elsewhere only a positive lead is removed: a
    # negative start (encoder priming) is the container's own business. The intermediate's own
    # offset (writer.pts_offset: NUT holds no negative pts) is undone on the video input.
    lead = leading_time(source, planned)
    if lead < 0 and source.container not in CLOCK_CONTAINERS:
        lead = Fraction(0)
    video_shift = -lead - pts_offset(source) * source.time_base - reorder_delay(source) + video_adjust
    if video_format is not None:
        argv += ["-f", video_format]
    argv += [*_itsoffset(video_shift), "-i", str(video_path), *_itsoffset(-lead), "-i", str(source.path)]
    argv += ["-map", f"0:{video.video_stream_index}"]
    for p in planned:
        argv += ["-map", f"1:{p.source.index}"]
    argv += ["-c", "copy"]
    sub_out = 0
    for p in planned:
        if p.source.kind == "subtitle":
            if p.convert_to:
                argv += [f"-c:s:{sub_out}", p.convert_to]
            sub_out += 1
    # Global tags and chapters from the source. Any per-stream -map_metadata switches ffmpeg's
    # default per-stream copy off, so map every stream's tags (language, title, mimetype) explicitly.
    argv += ["-map_metadata", "1", "-map_chapters", "1"]
    argv += ["-map_metadata:s:0", f"1:s:{source.video_stream_index}"]
    for out_index, p in enumerate(planned, start=1):
        argv += [f"-map_metadata:s:{out_index}", f"1:s:{p.source.index}"]
    src_video = next((s for s in source.streams if s.index == source.video_stream_index), None)
    if src_video is not None:
        argv += ["-disposition:v:0", "+".join(src_video.dispositions) or "0"]
    # Colour tags at container level (the h264/hevc bitstream already carries them in its VUI).
    for opt, value in (
        ("-color_primaries", video.color_primaries or source.color_primaries),
        ("-color_trc", video.color_transfer or source.color_transfer),
        ("-colorspace", video.color_matrix or source.color_matrix),
        ("-color_range", video.color_range or source.color_range),
    ):
        if value and value != "gbr":
            argv += [f"{opt}:v:0", value]
    # Scan type: a conditioned (deinterlaced, inverse-telecined) video is progressive; an
    # unconditioned one keeps the source's flag. NUT intermediates carry no field order.
    if source.field_order != "unknown":
        argv += ["-field_order:v:0", source.field_order]
    if source.rotation:
        if _is_mp4_family(muxer):
            # ffmpeg 5.1 turns the legacy rotate tag into the tkhd display matrix when stream copying.
            argv += ["-metadata:s:v:0", f"rotate={source.rotation}"]
        else:
            log.warning(
                "%s: rotation %d deg of %s cannot be stored in %s by this ffmpeg; the output will play "
                "unrotated (write .mp4/.mov to keep it)",
                target,
                source.rotation,
                source.path,
                muxer,
            )
    if _is_mp4_family(muxer):
        if video.codec == "hevc":
            # ffmpeg's default 'hev1' tag is refused by Apple players (QuickTime, Safari, iOS).
            argv += ["-tag:v:0", "hvc1"]
        tb = source.time_base
        if tb.numerator == 1 and tb.denominator <= 2**31 - 1:
            argv += ["-video_track_timescale", str(tb.denominator)]
        argv += ["-movflags", "+faststart"]
    else:
        argv += ["-max_interleave_delta", "0"]
    argv += ["-f", muxer, str(target)]
    return argv


#: The largest A/V start error (seconds) accepted in an output: below Matroska's 1 ms precision.
AV_TOLERANCE = Fraction(1, 1000)


def _av_error(result: VideoInfo, source: VideoInfo, planned: list[PlannedStream]) -> Fraction:
    """Seconds the output's video starts late against its first audio stream, compared with the
    source (0 without audio or start times). Both sides are read by the same demuxer library, so
    codec delays (Opus pre-skip, AAC priming) count alike on both."""
    audio = next(
        (p.source for p in planned if p.source.kind == "audio" and p.source.start_time is not None), None
    )
    out_audio = next((s for s in result.streams if s.kind == "audio" and s.start_time is not None), None)
    if audio is None or out_audio is None or audio.start_time is None or out_audio.start_time is None:
        return Fraction(0)
    want = source.start_pts * source.time_base - reorder_delay(source) - audio.start_time
    got = result.start_pts * result.time_base - out_audio.start_time
    return got - want


def _validate(
    result: VideoInfo,
    source: VideoInfo,
    expected_frames: int,
    planned_kinds: dict[str, int],
    check_rotation: bool,
    output: Path,
) -> None:
    problems: list[str] = []
    if result.frame_count != expected_frames:
        problems.append(f"{result.frame_count} video frames, expected {expected_frames}")
    tolerance = float(source.frame_duration) + 1e-3
    if abs(result.duration - source.duration) > tolerance:
        problems.append(f"video duration {result.duration:.4f} s, source {source.duration:.4f} s")
    # Compare per kind; 'data' is ignored because the MP4 muxer stores chapters as an extra text track.
    for kind in ("video", "audio", "subtitle", "attachment"):
        got = sum(1 for s in result.streams if s.kind == kind)
        want = planned_kinds.get(kind, 0)
        if got != want:
            problems.append(f"{got} {kind} streams, planned {want}")
    if check_rotation and result.rotation != source.rotation:
        problems.append(f"rotation {result.rotation}, source {source.rotation}")
    if problems:
        raise OutputValidationError(
            f"{output}: assembled output does not match {source.path}: " + "; ".join(problems),
            hint="no output was written; check the upscaled intermediate for dropped frames",
        )


def assemble_output(
    video_path: Path,
    source: VideoInfo,
    output: Path,
    *,
    expected_frames: int | None = None,
    ffmpeg: str = "ffmpeg",
) -> VideoInfo:
    """Mux ``video_path``'s video with every other stream of ``source`` into ``output``; validate it.

    Args:
        video_path: the encoded (upscaled) video-only intermediate (its first video stream is used).
        source: probe of the original input (audio, subtitles, attachments, chapters, tags, timing).
        output: final file (.mp4, .m4v, .mov or .mkv); replaced atomically.
        expected_frames: frames the output must have; default ``source.frame_count``.
        ffmpeg: ffmpeg binary (Settings.ffmpeg).

    Returns:
        The probe of the written output.

    Raises:
        InputError: output directory missing/unwritable, unsupported container, or a subtitle stream
            the container cannot hold.
        ExternalToolError: ffmpeg failed (argv and stderr tail in the error).
        OutputValidationError: frame count, duration, stream count or rotation mismatch.
    """
    video_path, output = Path(video_path), Path(output)
    _check_output_dir(output)  # before any work: the cheapest check, and the one users hit most
    return _assemble(str(video_path), probe(video_path), source, output, expected_frames, ffmpeg)


def assemble_streamed(
    feed: Callable[[IO[bytes]], object],
    video: VideoInfo,
    source: VideoInfo,
    output: Path,
    *,
    expected_frames: int | None = None,
    ffmpeg: str = "ffmpeg",
    video_format: str = "nut",
) -> VideoInfo:
    """Like :func:`assemble_output`, but the video arrives on ffmpeg's stdin, written by ``feed``.

    No intermediate video file is stored: ``feed(pipe)`` writes a ``video_format`` stream (its
    first stream is the video) straight into the mux. ``video`` describes that stream (codec and
    colour tags; take it from one of the pieces being fed). Same validation, atomic rename and
    errors as :func:`assemble_output`; an exception raised by ``feed`` propagates after ffmpeg
    has been stopped and nothing is left at ``output``.
    """
    video = replace(video, video_stream_index=0)
    return _assemble("pipe:0", video, source, Path(output), expected_frames, ffmpeg, feed, video_format)


def _assemble(
    video_input: str,
    video: VideoInfo,
    source: VideoInfo,
    output: Path,
    expected_frames: int | None,
    ffmpeg: str,
    feed: Callable[[IO[bytes]], object] | None = None,
    video_format: str | None = None,
) -> VideoInfo:
    _check_output_dir(output)
    muxer = _muxer_for(output)
    planned = plan_streams(source, muxer)
    expected = source.frame_count if expected_frames is None else expected_frames
    tmp = output.with_name(f".{output.stem}.partial-{os.getpid()}{output.suffix}")
    what = f"muxing {output} from {video_input} and {source.path}"
    try:
        adjust = Fraction(0)
        for attempt in range(2):
            argv = build_argv(
                Path(video_input), video, source, tmp, muxer, planned, ffmpeg, video_format, adjust
            )
            if feed is None:
                run_ffmpeg(argv, what=what)
            else:
                run_ffmpeg_fed(argv, feed, what=what)
            result = probe(tmp)
            error = _av_error(result, source, planned)
            if abs(error) < AV_TOLERANCE:
                break
            if attempt:
                raise OutputValidationError(
                    f"{output}: the video starts {float(error) * 1000:+.1f} ms off its place against "
                    f"the audio of {source.path}",
                    hint="no output was written; write an .mp4/.mov output, or report the source kind",
                )
            # A muxer moved the video against the audio (ffmpeg 5.1's Matroska muxer shifts every
            # stream but an Opus one by the Opus codec delay, 7 ms): mux once more, compensated.
            log.info("%s: the mux moved the video by %+.1f ms; compensating", output, float(error) * 1000)
            adjust -= error
        kinds = Counter(p.source.kind for p in planned)
        kinds["video"] += 1
        _validate(result, source, expected, dict(kinds), _is_mp4_family(muxer), output)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("assembled %s: %d frames, %d streams", output, result.frame_count, len(result.streams))
    return probe(output)
