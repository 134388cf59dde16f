"""Final mux: upscaled video + every audio/subtitle/attachment stream, chapters and tags of the source.

Every stream is stream-copied (audio bit-identical) where the target container holds its codec
(:func:`container_holds`); otherwise, with a logged warning, lossless audio becomes ALAC (the same
samples), text subtitles become mov_text (MP4/MOV) or srt (Matroska); audio and bitmap subtitles
that cannot be converted without loss are refused. Cover art is kept (copied into MP4, attached
to Matroska); closed captions in the video's side data are detected and warned about.
:func:`check_streams` takes these decisions, and proves them with a trial mux, BEFORE any work:
``vsrflow upscale`` and the chunked job (at submission) call it, and the final mux uses its plan.
Source timestamps are kept (``-copyts``), so audio stays in sync even when the video
starts later than the audio; a positive start clock (MPEG-PS/TS) is removed from every stream alike
(:func:`leading_time`), so the output starts at 0 with the source's relative timing. The result is
written to a hidden temporary name next to ``output``, validated by probing (frame count, duration,
streams, rotation) and only then renamed into place; on any failure nothing is left at ``output``
or in the temporary name.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import IO

import av

from vsrflow.errors import InputError, VsrError
from vsrflow.media.captions import CAPTION_TITLE, caption_codec, caption_offset, extract_captions
from vsrflow.media.ffmpeg import run_ffmpeg, run_ffmpeg_fed
from vsrflow.media.info import CLOCK_CONTAINERS, StreamInfo, VideoInfo
from vsrflow.media.lastframe import mp4_timescale, setts_args, stated_span
from vsrflow.media.probe import probe
from vsrflow.media.writer import pts_offset

log = logging.getLogger(__name__)

#: Output suffix -> ffmpeg muxer.
MUXERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

#: Video codec ids the ffmpeg CLI's (5.1) mp4/mov muxers accept for stream copy; Matroska takes them all.
_MP4_VIDEO = {"h264", "hevc", "mpeg4", "av1", "vp9", "mjpeg", "mpeg2video", "mpeg1video"}
_MOV_VIDEO = _MP4_VIDEO | {"prores", "png", "rawvideo", "dnxhd", "qtrle"}

#: Codecs ffmpeg 5.1's mp4/mov muxers take by stream copy, per kind (each one muxed for real in
#: tests/integration/test_stream_rules.py). Matroska holds every codec ffmpeg can name except those
#: of :data:`_NOT_IN_MATROSKA`; the up-front trial mux (:func:`check_streams`) has the last word.
_PCM = frozenset({"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_s32be", "pcm_u8"})
_PCM |= {"pcm_f32le", "pcm_f32be", "pcm_f64le", "pcm_f64be", "pcm_s8", "pcm_mulaw", "pcm_alaw"}
_MP4_AUDIO = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "dts", "alac", "opus", "vorbis"})
_COPYABLE: dict[str, dict[str, frozenset[str]]] = {
    "mp4": {"audio": _MP4_AUDIO, "subtitle": frozenset({"mov_text"}), "cover": frozenset({"mjpeg", "png"})},
    # ffmpeg 5.1's mov muxer takes PCM and WMA but not Opus, and writes no cover art (its mp4 mode does).
    "mov": {
        "audio": (_MP4_AUDIO - {"opus"}) | _PCM | {"wmav2"},
        "subtitle": frozenset({"mov_text"}),
        "cover": frozenset(),
    },
}
_NOT_IN_MATROSKA: dict[str, frozenset[str]] = {"subtitle": frozenset({"mov_text"})}
#: Lossless audio whose decoded samples ALAC stores exactly (integer, at most 24 bits): what an
#: MP4 output gets instead of a codec it cannot hold (PCM from a MOV, FLAC), bit-exact on decode.
_ALAC_EXACT = frozenset(
    {"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_u8", "pcm_s8", "pcm_mulaw", "pcm_alaw", "flac"}
)
#: Subtitle codecs that are text (convertible to mov_text / srt); the others are bitmaps.
_TEXT_SUBS = frozenset({"subrip", "srt", "ass", "ssa", "webvtt", "text", "mov_text"})
#: Output suffix that keeps every stream kind: the fix named when a stream cannot be stored.
_KEEPS_ALL = ".mkv"

#: MIME types of the images Matroska attaches (cover art, image attachments).
_MIME = {
    "mjpeg": "image/jpeg",
    "png": "image/png",
    "bmp": "image/bmp",
    "gif": "image/gif",
    "webp": "image/webp",
}


class OutputValidationError(VsrError):
    """The assembled file does not match the source (frames, duration or streams); nothing was kept."""


@dataclass(frozen=True)
class PlannedStream:
    """One source stream carried into the output.

    Attributes:
        source: the source stream.
        convert_to: the output codec (an encoder name) when the stream is converted; None: stream copy.
        attach: write it as a Matroska attachment (an image attachment or cover art, which ffmpeg's
            demuxer presents as an ``attached_pic`` video stream and its muxer would otherwise
            write back as a one-frame video track).
    """

    source: StreamInfo
    convert_to: str | None = None
    attach: bool = False

    @property
    def output_kind(self) -> str:
        """The stream kind ffmpeg reads back from the output ('video' for cover art and images)."""
        return "video" if self.attach else self.source.kind


def _is_mp4_family(muxer: str) -> bool:
    return muxer in ("mp4", "mov")


def container_holds(muxer: str, kind: str, codec: str) -> bool:
    """Whether an output of ``muxer`` holds a stream-copied ``kind`` stream of ``codec``.

    The one owner of "can container X hold codec Y" (the video codec: :func:`check_video_codec`).
    ``kind`` is 'audio', 'subtitle', 'cover' (an ``attached_pic`` image) or 'attachment'. Matroska
    holds every kind and codec but mov_text subtitles; mp4 and mov what :data:`_COPYABLE` lists
    (no attachments).
    """
    if not _is_mp4_family(muxer):
        return codec not in _NOT_IN_MATROSKA.get(kind, frozenset())
    return codec in _COPYABLE[muxer].get(kind, frozenset())


def _holders(kind: str, codec: str) -> str:
    """The output suffixes that hold ``codec`` as it is, for the fix of a refusal ('.mkv or .mov')."""
    names = [
        s
        for s, m in ((".mkv", "matroska"), (".mov", "mov"), (".mp4", "mp4"))
        if container_holds(m, kind, codec)
    ]
    return " or ".join(names)


def _describe(st: StreamInfo) -> str:
    return f"stream {st.index} ({st.codec})"


def plan_streams(
    source: VideoInfo, muxer: str, *, video_stream: int | None = None, warn: bool = True
) -> list[PlannedStream]:
    """Decide which non-video source streams go into a ``muxer`` output, and how (module docstring).

    Rules, per stream the target cannot hold as it is: lossless audio whose samples ALAC keeps
    exactly (integer PCM up to 24 bits, FLAC) into MP4 -> ALAC, bit-exact on decode; other audio
    -> refused. Text subtitles -> mov_text (MP4/MOV) or srt (mov_text into Matroska); bitmap
    subtitles (DVD, PGS, DVB) into MP4/MOV -> refused (ffmpeg 5.1 writes no PGS/DVB track there,
    and its MP4 DVD-subtitle track is read by almost no player). Cover art: copied (MP4) or
    re-attached (Matroska), dropped with a warning for MOV; attachments: dropped with a warning
    for MP4/MOV. A second real video stream: refused unless ``video_stream`` names the one to
    upscale (the caller's choice); then the others are not carried. Conversions and drops are
    logged as warnings (``warn``; else at info level, for a plan already announced).

    Raises:
        InputError: a stream the target container cannot hold (naming it, the input and the
            containers that hold it), or several video streams and no ``video_stream`` choice.
    """
    say = log.warning if warn else log.info
    others = [s for s in source.non_video_streams if s.kind == "video" and not s.attached_pic]
    if others and video_stream is None:
        listed = ", ".join(
            _describe(s) for s in sorted((*others, _main_video(source)), key=lambda s: s.index)
        )
        raise InputError(
            f"{source.path}: has {len(others) + 1} video streams ({listed}); which one to upscale "
            "is not guessed",
            hint=f"pass --video-stream N (N = {source.video_stream_index}: the first one; the "
            "others are then not carried into the output)",
        )
    if source.closed_captions:
        # The model's frames are new pictures: the encoder gets no A/53 side data to carry, so the
        # final mux carries the captions as a text subtitle stream (vsrflow.media.captions).
        say(
            "closed captions (CEA-608/708 in the video's A/53 side data) of %s are carried as a %s "
            "subtitle stream (decoded by ffmpeg: text and timing kept, styling and positions simplified)",
            source.path, caption_codec(_is_mp4_family(muxer)),
        )  # fmt: skip
    planned: list[PlannedStream] = []

    def refuse(st: StreamInfo, kind: str) -> InputError:
        return InputError(
            f"{source.path}: {st.kind} {_describe(st)} cannot be stored in the {muxer} container",
            hint=f"write a {_holders(kind, st.codec)} output to keep it as it is",
        )

    for st in source.non_video_streams:
        if st.kind == "audio":
            if container_holds(muxer, "audio", st.codec):
                planned.append(PlannedStream(st))
            elif st.codec in _ALAC_EXACT and container_holds(muxer, "audio", "alac"):
                say(
                    "audio %s of %s converted to ALAC (lossless: the same samples) because %s cannot "
                    "hold %s; write a %s output to keep the original bytes",
                    _describe(st), source.path, muxer, st.codec, _holders("audio", st.codec),
                )  # fmt: skip
                planned.append(PlannedStream(st, "alac"))
            else:
                raise refuse(st, "audio")
        elif st.kind == "subtitle":
            if container_holds(muxer, "subtitle", st.codec):
                planned.append(PlannedStream(st))
            elif st.codec not in _TEXT_SUBS:
                raise refuse(st, "subtitle")
            else:
                target = "mov_text" if _is_mp4_family(muxer) else "srt"
                say(
                    "subtitle %s of %s converted to %s: %s cannot hold %s (styling is lost; "
                    "write a %s output to keep it)",
                    _describe(st), source.path, target, muxer, st.codec, _holders("subtitle", st.codec),
                )  # fmt: skip
                planned.append(PlannedStream(st, target))
        elif st.kind == "attachment":
            if container_holds(muxer, "attachment", st.codec):
                planned.append(PlannedStream(st))
            else:
                say("attachment %s of %s dropped: %s cannot hold attachments (an .mkv output keeps "
                    "it)", _describe(st), source.path, muxer)  # fmt: skip
        elif st.kind == "video" and st.attached_pic:
            if not _is_mp4_family(muxer):
                planned.append(PlannedStream(st, attach=True))
            elif container_holds(muxer, "cover", st.codec):
                planned.append(PlannedStream(st))
            else:
                say("cover art %s of %s dropped: ffmpeg cannot write it into %s (an .mkv output keeps "
                    "it)", _describe(st), source.path, muxer)  # fmt: skip
        elif st.kind == "video":
            say("video %s of %s not carried: --video-stream %d is the one upscaled",
                _describe(st), source.path, video_stream)  # fmt: skip
        else:
            # Data streams (timecode, GPS...) are not media the output needs; say so.
            say("%s %s of %s not carried into the output", st.kind, _describe(st), source.path)
    return planned


def _main_video(source: VideoInfo) -> StreamInfo:
    found = next((s for s in source.streams if s.index == source.video_stream_index), None)
    return found or StreamInfo(index=source.video_stream_index, kind="video", codec=source.codec)


def check_streams(
    source: VideoInfo,
    output: Path,
    *,
    video_stream: int | None = None,
    ffmpeg: str = "ffmpeg",
    warn: bool = True,
    trial: bool = True,
) -> list[PlannedStream]:
    """Plan ``source``'s streams for ``output`` and prove the plan with a trial mux, before any work.

    :func:`plan_streams` decides (and refuses what the container cannot hold); then the real
    ffmpeg writes the header of an empty ``output``-type file with those streams (copied or
    converted, ``-t 0``), so a codec the tables do not know fails here, not in the final mux after
    the whole upscale (``trial=False``: a plan already proved, e.g. at submission, is only
    re-made). Returns the plan for :func:`assemble_output` / :func:`assemble_streamed`.

    Raises:
        InputError: as :func:`plan_streams`; the trial mux failed (ffmpeg's reason quoted).
    """
    muxer = _muxer_for(Path(output))
    planned = plan_streams(source, muxer, video_stream=video_stream, warn=warn)
    mapped = [p for p in planned if not p.attach]
    if not mapped or not trial:
        return planned
    with tempfile.TemporaryDirectory(prefix="vsrflow-mux-check-") as tmp:
        argv = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(source.path)]
        for p in mapped:
            argv += ["-map", f"0:{p.source.index}"]
        argv += ["-c", "copy", *_conversions(mapped, first=0), "-t", "0"]
        argv += ["-f", muxer, str(Path(tmp) / f"check{Path(output).suffix}")]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        reason = " ".join(proc.stderr.strip().splitlines()[:2])[:300]
        raise InputError(
            f"{source.path}: its streams cannot be written into a {muxer} output ({output}): {reason}",
            hint=f"write a {_KEEPS_ALL} output",
        )
    return planned


def _conversions(mapped: list[PlannedStream], first: int) -> list[str]:
    """``-c:N codec`` for each converted stream, N its output index (``first`` + position)."""
    argv: list[str] = []
    for out_index, p in enumerate(mapped, start=first):
        if p.convert_to:
            argv += [f"-c:{out_index}", p.convert_to]
    return argv


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
    starts += [
        p.source.start_time for p in planned if p.source.start_time is not None and p.source.kind != "video"
    ]
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
    attachments: dict[int, tuple[Path, str, str]] | None = None,
    video_adjust: Fraction = Fraction(0),
    frames: int | None = None,
    captions: Path | None = None,
) -> list[str]:
    """The ffmpeg argument list that muxes ``video_path``'s video with ``source``'s other streams.

    ``video_adjust``: seconds added to the video's shift (the correction :func:`_av_error`
    measured on a first mux). ``frames``: the video input's frame count (default
    ``source.frame_count``), for the filter that sets the last frame's duration
    (:mod:`vsrflow.media.lastframe`). ``captions``: a SubRip file of the source's closed captions
    (:func:`~vsrflow.media.captions.extract_captions`), muxed after the mapped streams.

    ``video_format`` forces the demuxer of the video input (needed for ``pipe:0``); when it is
    set ffmpeg reads its stdin, so ``-nostdin`` is left out. ``attachments``: for each planned
    stream with ``attach``, by source index, (image file, mimetype, file name) to attach.
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
    if captions is not None:
        argv += [*_itsoffset(caption_offset(source, lead)), "-i", str(captions)]
    mapped = [p for p in planned if not p.attach]
    argv += ["-map", f"0:{video.video_stream_index}"]
    for p in mapped:
        argv += ["-map", f"1:{p.source.index}"]
    argv += ["-c", "copy", *_conversions(mapped, first=1)]
    after_mapped = len(mapped) + 1
    if captions is not None:
        cc = after_mapped
        argv += ["-map", "2:0", f"-c:{cc}", caption_codec(_is_mp4_family(muxer))]
        argv += [f"-metadata:s:{cc}", f"title={CAPTION_TITLE}", f"-metadata:s:{cc}", "language=und"]
        after_mapped += 1
    for out_index, p in enumerate(mapped, start=1):
        if p.source.attached_pic:
            # Cover art stays cover art (the CLI does not carry the flag over by itself).
            argv += [f"-disposition:{out_index}", "attached_pic"]
    # Image attachments (Matroska) go back as attachments: ffmpeg's muxer would write the
    # attached_pic stream it demuxed as a one-frame video track. They follow the mapped streams.
    for out_index, p in enumerate((p for p in planned if p.attach), start=after_mapped):
        image, mimetype, filename = (attachments or {})[p.source.index]
        argv += ["-attach", str(image), f"-metadata:s:{out_index}", f"mimetype={mimetype}"]
        argv += [f"-metadata:s:{out_index}", f"filename={filename}"]
    # Global tags and chapters from the source. Any per-stream -map_metadata switches ffmpeg's
    # default per-stream copy off, so map every stream's tags (language, title, mimetype) explicitly.
    argv += ["-map_metadata", "1", "-map_chapters", "1"]
    argv += ["-map_metadata:s:0", f"1:s:{source.video_stream_index}"]
    for out_index, p in enumerate(mapped, start=1):
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
        timescale = mp4_timescale(source)
        if timescale is not None:
            argv += ["-video_track_timescale", str(timescale)]
        argv += ["-movflags", "+faststart"]
    else:
        argv += ["-max_interleave_delta", "0"]
    frames = source.frame_count if frames is None else frames
    argv += setts_args(source, _is_mp4_family(muxer), frames)
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
    lasts: float,
    source: VideoInfo,
    expected_frames: int,
    planned_kinds: dict[str, int],
    check_rotation: bool,
    covers: int,
    output: Path,
) -> None:
    problems: list[str] = []
    if result.frame_count != expected_frames:
        problems.append(f"{result.frame_count} video frames, expected {expected_frames}")
    tolerance = float(source.frame_duration) + 1e-3
    if abs(lasts - source.duration) > tolerance:
        problems.append(f"video duration {lasts:.4f} s, source {source.duration:.4f} s")
    # Compare per kind; 'data' is ignored because the MP4 muxer stores chapters as an extra text track.
    for kind in ("video", "audio", "subtitle", "attachment"):
        got = sum(1 for s in result.streams if s.kind == kind)
        want = planned_kinds.get(kind, 0)
        if got != want:
            problems.append(f"{got} {kind} streams, planned {want}")
    got_covers = sum(1 for s in result.streams if s.attached_pic)
    if got_covers != covers:
        problems.append(f"{got_covers} cover-art/image streams, planned {covers}")
    if check_rotation and result.rotation != source.rotation:
        problems.append(f"rotation {result.rotation}, source {source.rotation}")
    if problems:
        raise OutputValidationError(
            f"{output}: assembled output does not match {source.path}: " + "; ".join(problems),
            hint="no output was written; check the upscaled intermediate for dropped frames",
        )


def _video_lasts(result: VideoInfo, written: Path) -> float:
    """Seconds the written video lasts: as its container states it (the track's duration, which
    carries the last frame's), else as its packets say (:attr:`VideoInfo.duration`)."""
    stated = stated_span(written, result.video_stream_index)
    return float(stated) if stated is not None else result.duration


def _check_last_frame_duration(lasts: float, source: VideoInfo, output: Path) -> None:
    """Say so when the output's video lasts otherwise than the source's (within what
    :func:`_validate` accepts). Every pts is kept and the final mux sets the last frame's
    duration (:mod:`vsrflow.media.lastframe`); this is the check that it took."""
    drift = lasts - source.duration
    if abs(drift) > 1.5e-3:  # Matroska rounds to the millisecond
        log.warning(
            "%s: the video lasts %.3f s, the source's %.3f s (%+.3f s): the source's last frame "
            "lasts %.3f s, and this ffmpeg did not keep that duration",
            output,
            lasts,
            source.duration,
            drift,
            float(source.last_frame_duration * source.time_base),
        )


def assemble_output(
    video_path: Path,
    source: VideoInfo,
    output: Path,
    *,
    expected_frames: int | None = None,
    ffmpeg: str = "ffmpeg",
    streams: list[PlannedStream] | None = None,
    video_stream: int | None = None,
) -> VideoInfo:
    """Mux ``video_path``'s video with every other stream of ``source`` into ``output``; validate it.

    Args:
        video_path: the encoded (upscaled) video-only intermediate (its first video stream is used).
        source: probe of the original input (audio, subtitles, attachments, chapters, tags, timing).
        output: final file (.mp4, .m4v, .mov or .mkv); replaced atomically.
        expected_frames: frames the output must have; default ``source.frame_count``.
        ffmpeg: ffmpeg binary (Settings.ffmpeg).
        streams: the plan :func:`check_streams` returned before the work; None: planned here.
        video_stream: the video stream the user chose (``--video-stream``), for that planning.

    Returns:
        The probe of the written output.

    Raises:
        InputError: output directory missing/unwritable, unsupported container, or a stream the
            container cannot hold (:func:`plan_streams`).
        ExternalToolError: ffmpeg failed (argv and stderr tail in the error).
        OutputValidationError: frame count, duration, stream count or rotation mismatch.
    """
    video_path, output = Path(video_path), Path(output)
    _check_output_dir(output)  # before any work: the cheapest check, and the one users hit most
    planned = _plan(source, output, streams, video_stream)
    return _assemble(str(video_path), probe(video_path), source, output, planned, expected_frames, ffmpeg)


def assemble_streamed(
    feed: Callable[[IO[bytes]], object],
    video: VideoInfo,
    source: VideoInfo,
    output: Path,
    *,
    expected_frames: int | None = None,
    ffmpeg: str = "ffmpeg",
    video_format: str = "nut",
    streams: list[PlannedStream] | None = None,
    video_stream: int | None = None,
) -> VideoInfo:
    """Like :func:`assemble_output`, but the video arrives on ffmpeg's stdin, written by ``feed``.

    No intermediate video file is stored: ``feed(pipe)`` writes a ``video_format`` stream (its
    first stream is the video) straight into the mux. ``video`` describes that stream (codec and
    colour tags; take it from one of the pieces being fed). Same validation, atomic rename and
    errors as :func:`assemble_output`; an exception raised by ``feed`` propagates after ffmpeg
    has been stopped and nothing is left at ``output``.
    """
    video = replace(video, video_stream_index=0)
    output = Path(output)
    _check_output_dir(output)
    planned = _plan(source, output, streams, video_stream)
    return _assemble("pipe:0", video, source, output, planned, expected_frames, ffmpeg, feed, video_format)


def _plan(
    source: VideoInfo, output: Path, streams: list[PlannedStream] | None, video_stream: int | None
) -> list[PlannedStream]:
    if streams is not None:
        return streams
    return plan_streams(source, _muxer_for(output), video_stream=video_stream)


def _extract_images(
    source: VideoInfo, planned: list[PlannedStream], work: Path
) -> dict[int, tuple[Path, str, str]]:
    """Write each ``attach`` stream's picture (its one packet: the image file) into ``work``.

    Returns (file, mimetype, file name) by source stream index; the name and type are the
    source's tags when it has them (a Matroska attachment's), else ``cover.<ext>``.
    """
    wanted = {p.source.index for p in planned if p.attach}
    if not wanted:
        return {}
    found: dict[int, tuple[Path, str, str]] = {}
    with av.open(str(source.path)) as container:
        chosen = [container.streams[index] for index in sorted(wanted)]
        # A picture stream's one packet comes first (the demuxer queues it on open): one short pass.
        for packet in container.demux(chosen):
            index = packet.stream.index
            if index in found or not packet.size:
                continue
            meta = {k.lower(): v for k, v in packet.stream.metadata.items()}
            codec = next((s.codec for s in source.streams if s.index == index), "mjpeg")
            mimetype = meta.get("mimetype") or _MIME.get(codec, "application/octet-stream")
            filename = meta.get("filename") or f"cover.{'jpg' if codec == 'mjpeg' else codec}"
            image = work / f"{index}-{Path(filename).name}"
            image.write_bytes(bytes(packet))
            found[index] = (image, mimetype, filename)
            if len(found) == len(wanted):
                break
    missing = sorted(wanted - set(found))
    if missing:
        raise InputError(
            f"{source.path}: image stream {missing[0]} holds no picture",
            hint=f"remux the source without it (ffmpeg -i IN -map 0 -map -0:{missing[0]} -c copy OUT.mkv)",
        )
    return found


def _assemble(
    video_input: str,
    video: VideoInfo,
    source: VideoInfo,
    output: Path,
    planned: list[PlannedStream],
    expected_frames: int | None,
    ffmpeg: str,
    feed: Callable[[IO[bytes]], object] | None = None,
    video_format: str | None = None,
) -> VideoInfo:
    muxer = _muxer_for(output)
    expected = source.frame_count if expected_frames is None else expected_frames
    tmp = output.with_name(f".{output.stem}.partial-{os.getpid()}{output.suffix}")
    what = f"muxing {output} from {video_input} and {source.path}"
    try:
        with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.stem}.images-") as work:
            images = _extract_images(source, planned, Path(work))
            captions = extract_captions(source, Path(work), ffmpeg)
            adjust = Fraction(0)
            for attempt in range(2):
                argv = build_argv(
                    Path(video_input), video, source, tmp, muxer, planned, ffmpeg, video_format, images,
                    video_adjust=adjust, frames=expected, captions=captions,
                )  # fmt: skip
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
        kinds = Counter(p.output_kind for p in planned)
        kinds["video"] += 1
        kinds["subtitle"] += captions is not None
        covers = sum(1 for p in planned if p.attach or p.source.attached_pic)
        lasts = _video_lasts(result, tmp)
        _validate(result, lasts, source, expected, dict(kinds), _is_mp4_family(muxer), covers, output)
        _check_last_frame_duration(lasts, source, output)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("assembled %s: %d frames, %d streams", output, result.frame_count, len(result.streams))
    return probe(output)
