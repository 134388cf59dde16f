"""Encode RGB frames to a video-only intermediate with PyAV, with the source's colour and timing.

The writer converts RGB -> YUV with the SAME matrix and range the reader used for the source, tags
primaries/transfer/matrix/range and SAR on the stream, and keeps the caller's pts (source time base),
so variable frame rate and exact timestamps survive. Each frame's duration is the gap to the next
frame's pts (the last frame gets ``last_duration``), written into the packets.

Container choice for intermediates (:data:`INTERMEDIATE_SUFFIX`): ``.nut`` keeps the source time base
exactly and holds every codec used here (libx264 8/10-bit, ffv1, libx264rgb). ``.mkv`` stores
milliseconds: exact for MKV sources and 25/50 fps MP4s, rounded (with a warning) for 30000/1001.
Output goes to a hidden temporary name and is renamed on a clean close. Caveat: NUT does not store
colour range and ffv1 does not either, so an ffv1 + .nut intermediate of a full-range source reads
back as limited unless the caller passes the writer's VideoInfo; libx264 carries it in its VUI.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np
import numpy.typing as npt
from av.container import OutputContainer
from av.video.format import VideoFormat
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange
from av.video.stream import VideoStream

from vsrflow.errors import ExternalToolError, InputError
from vsrflow.media.colour import (
    LUMA_COEFFS,
    MATRICES,
    PRIMARIES,
    RANGES,
    TRANSFERS,
    WRITE_SWS_FLAGS,
    effective_matrix,
    effective_range,
    sws_matrix,
    sws_range,
    value_of,
)
from vsrflow.media.info import HDR_TRANSFERS, VideoInfo

log = logging.getLogger(__name__)

#: Recommended suffix for video-only intermediates: exact timestamps for any source time base.
INTERMEDIATE_SUFFIX = ".nut"


@dataclass(frozen=True)
class EncoderOptions:
    """How the writer encodes.

    Attributes:
        codec: PyAV/FFmpeg encoder name ('libx264', 'libx265', 'ffv1', 'libx264rgb', ...).
        crf: constant rate factor (0 = lossless for libx264); only passed to encoders that have it.
        preset: encoder speed preset; only passed to encoders that have it.
        pix_fmt: encoder pixel format; None derives yuv420p (<= 8-bit source) or yuv420p10le.
            An RGB format (gbrp, rgb24, bgr0...) skips the YUV matrix entirely: with ffv1 or
            libx264rgb crf 0 the round trip is bit-exact.
        extra: further encoder options, e.g. {"tune": "film", "g": "48"} (strings).
        threads: encoder threads (0 = FFmpeg's automatic choice).
    """

    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    threads: int = 0

    def resolved_pix_fmt(self, source: VideoInfo) -> str:
        """The pixel format actually encoded for ``source``."""
        if self.pix_fmt:
            return self.pix_fmt
        return "yuv420p10le" if source.bit_depth > 8 else "yuv420p"


def check_encoder(codec: str) -> str:
    """The codec id (``'h264'`` for ``libx264``) of the video encoder ``codec``; InputError if unknown.

    Called before any frame is computed, so a typo fails in a second with a message naming the
    option, rather than naming a hidden intermediate file after the model has loaded.
    """
    try:
        found = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError) as err:
        raise InputError(
            f"--codec {codec!r} is not a video encoder this build of FFmpeg (PyAV) has",
            hint="use libx264, libx265, ffv1 or libx264rgb",
        ) from err
    if found.type != "video":
        raise InputError(f"--codec {codec!r} encodes {found.type}, not video", hint="use libx264")
    return str(found.canonical_name)


#: Encoders that write HDR10 static metadata (mastering display, content light level) from
#: :attr:`VideoInfo.hdr` into the bitstream (SEI), where every container and player finds it.
HDR_METADATA_ENCODERS = frozenset({"libx265"})


def x265_params(source: VideoInfo, extra: str | None = None) -> str:
    """libx265's ``x265-params``: quiet, the source's HDR10 static metadata, then ``extra``."""
    params = ["log-level=error"]  # x265 prints 30 banner lines otherwise
    if source.hdr is not None and source.hdr.master_display:
        params.append(f"master-display={source.hdr.master_display}")
    if source.hdr is not None and source.hdr.max_cll:
        params.append(f"max-cll={source.hdr.max_cll}")
    if extra:
        params.append(extra)
    return ":".join(params)


def hdr_warnings(source: VideoInfo, codec: str) -> list[str]:
    """What an upscale of ``source`` with ``codec`` does to an HDR signal, for the run's log (once).

    A PQ/HLG signal is given to the model as it is (the models are trained on SDR video; no tone
    mapping); HDR10 static metadata is kept only by :data:`HDR_METADATA_ENCODERS`.
    """
    notes = []
    if source.color_transfer in HDR_TRANSFERS:
        notes.append(
            f"{source.path}: an HDR signal ({source.color_transfer}): the model, trained on SDR video, "
            "is applied to its code values as they are (no tone mapping); the output keeps the "
            "source's transfer and colour tags"
        )
    if source.hdr is not None and codec not in HDR_METADATA_ENCODERS:
        notes.append(
            f"{source.path}: its HDR10 static metadata (mastering display, content light level) "
            f"cannot be written by {codec} and is dropped; use --codec libx265 to keep it"
        )
    return notes


def pts_offset(source: VideoInfo) -> int:
    """Ticks added to every pts in a video-only intermediate: ``-start_pts`` for a source that starts
    below 0 (a TS whose clock wrapped, an edit-list MP4), else 0. NUT cannot store negative pts and
    would otherwise shift the video by an amount nothing records; the final mux
    (:mod:`vsrflow.media.assemble`) subtracts exactly this offset again."""
    return -source.start_pts if source.start_pts < 0 else 0


def encodable_size(width: int, height: int, pix_fmt: str) -> tuple[int, int]:
    """Smallest (w, h) >= (width, height) that ``pix_fmt``'s chroma subsampling allows.

    yuv420p needs even width and height, yuv422p an even width, yuv444p/RGB anything.
    """
    fmt = VideoFormat(pix_fmt)
    sub_w = sub_h = 1
    for comp in fmt.components:
        if comp.is_chroma:
            # Component size at a 1x1 picture tells nothing; use a 64x64 probe instead.
            sub_w = max(sub_w, 64 // max(1, VideoFormat(pix_fmt, 64, 64).chroma_width(64)))
            sub_h = max(sub_h, 64 // max(1, VideoFormat(pix_fmt, 64, 64).chroma_height(64)))
    return -(-width // sub_w) * sub_w, -(-height // sub_h) * sub_h


def pad_to(image: npt.NDArray[np.generic], width: int, height: int) -> npt.NDArray[np.generic]:
    """Edge-replicate ``image`` (H, W, C) on the right/bottom up to (height, width)."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    return np.pad(image, ((0, height - h), (0, width - w), (0, 0)), mode="edge")


class FrameWriter:
    """Encode RGB frames into ``path`` (a video-only file) with ``source``'s colour and timing.

    Use as a context manager; ``close()`` (or a clean ``with`` exit) flushes the encoder and renames
    the temporary file to ``path``. On an exception the temporary file is removed.

    Args:
        path: output file; its suffix picks the container (.mkv, .nut, .mov, .mp4).
        width, height: encoded size; must be :func:`encodable_size` for the pixel format.
        source: the probed input; gives time_base, frame rate, colour tags, SAR and last duration.
        options: encoder settings.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        width: int,
        height: int,
        source: VideoInfo,
        options: EncoderOptions | None = None,
    ) -> None:
        self.path = Path(path)
        self.width = width
        self.height = height
        self.source = source
        self.options = options or EncoderOptions()
        self.pix_fmt = self.options.resolved_pix_fmt(source)
        if encodable_size(width, height, self.pix_fmt) != (width, height):
            ew, eh = encodable_size(width, height, self.pix_fmt)
            raise InputError(
                f"{self.path}: {width}x{height} cannot be encoded as {self.pix_fmt}",
                hint=f"pad frames to {ew}x{eh} (vsrflow.media.writer.encodable_size / pad_to)",
            )
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: output directory does not exist", hint="create it first")
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._pending: tuple[npt.NDArray[np.uint8] | npt.NDArray[np.uint16], int] | None = None
        self._last_pts: int | None = None
        self.frames_written = 0
        self._ms_only = self.path.suffix.lower() in (".mkv", ".webm", ".mka")
        self._warned_rounding = False
        self._is_rgb_out = VideoFormat(self.pix_fmt).is_rgb
        self._matrix = effective_matrix(source.color_matrix, source.width, source.height)
        self._range = effective_range(source.color_range, source.pix_fmt)
        self._offset = pts_offset(source)

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FrameWriter:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        """Create the container and encoder (idempotent)."""
        if self._container is not None:
            return
        opts = self.options
        # Encoders with B-frames (x264/x265 presets above ultrafast) emit a first dts below the first
        # pts; by default the muxer then shifts EVERY timestamp up by that delay (2 frames for x264
        # medium), which delays the video against the source's audio. Keep the caller's pts as they
        # are; NUT and Matroska store pts only and MP4/MOV write an edit list. NUT cannot store a
        # negative pts: a source starting below 0 is written shifted by pts_offset (undone at mux).
        fmt_opts = {"avoid_negative_ts": "disabled"}
        try:
            container = av.open(str(self._tmp), mode="w", options=fmt_opts)
            stream = container.add_stream(opts.codec, rate=self.source.frame_rate)
        except (av.error.FFmpegError, ValueError) as err:
            self._tmp.unlink(missing_ok=True)
            raise InputError(
                f"{self.path}: cannot create a {opts.codec} stream in this container: {err}",
                hint="choose another codec or file extension (.mkv, .nut, .mov)",
            ) from err
        assert isinstance(stream, VideoStream)
        ctx = stream.codec_context
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = self.pix_fmt
        # Encode in the source time base: the caller's pts go through untouched.
        stream.time_base = self.source.time_base
        ctx.time_base = self.source.time_base
        ctx.framerate = self.source.frame_rate
        ctx.sample_aspect_ratio = self.source.sar
        ctx.thread_type = "AUTO"
        ctx.thread_count = opts.threads
        self._tag_colour(stream)
        private = {o.name for o in ctx.supported_options.private}
        codec_opts: dict[str, object] = {}
        if opts.crf is not None and "crf" in private:
            codec_opts["crf"] = str(opts.crf)
        if opts.preset is not None and "preset" in private:
            codec_opts["preset"] = opts.preset
        extra = dict(opts.extra)
        if opts.codec == "libx265":
            codec_opts["x265-params"] = x265_params(self.source, extra.pop("x265-params", None))
        codec_opts.update(extra)
        stream.options = codec_opts
        self._container = container
        self._stream = stream

    def _tag_colour(self, stream: VideoStream) -> None:
        ctx = stream.codec_context
        src = self.source
        if self._is_rgb_out:
            ctx.colorspace = 0  # AVCOL_SPC_RGB
            ctx.color_range = 2  # RGB is full range
        else:
            # Always tag the matrix/range actually used: an untagged SD source upscaled to HD would
            # otherwise be decoded with BT.709 by players and shift colour.
            ctx.colorspace = value_of(MATRICES, self._matrix) or 2
            ctx.color_range = value_of(RANGES, self._range) or 0
        ctx.color_primaries = value_of(PRIMARIES, src.color_primaries) or 2
        ctx.color_trc = value_of(TRANSFERS, src.color_transfer) or 2

    # -- frames ----------------------------------------------------------------------------
    def _to_frame(self, image: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]) -> VideoFrame:
        if image.dtype == np.uint8:
            rgb = VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint8), format="rgb24")
        else:
            rgb = VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint16), format="rgb48le")
        if self._is_rgb_out:
            return rgb.reformat(format=self.pix_fmt)
        if self._range == "pc":
            return self._full_range_frame(image)
        out = rgb.reformat(
            format=self.pix_fmt,
            src_colorspace=sws_matrix(self._matrix),
            dst_colorspace=sws_matrix(self._matrix),
            src_color_range=ColorRange.JPEG,
            dst_color_range=sws_range(self._range),
            interpolation=WRITE_SWS_FLAGS,
        )
        return out

    def _full_range_frame(self, image: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]) -> VideoFrame:
        """RGB -> full-range YUV computed exactly in numpy, then subsampled by swscale.

        swscale's RGB -> full-range YUV path truncates chroma (measured bias -0.5 level, enough to
        shift a flat colour by 2 levels over a round trip); the limited-range path is accurate.
        """
        kr, kb = LUMA_COEFFS[self._matrix]
        deep = image.dtype == np.uint16
        scale = 65535.0 if deep else 255.0
        rgb = image.astype(np.float32) / scale
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        y = kr * r + (1.0 - kr - kb) * g + kb * b
        cb = (b - y) / (2.0 * (1.0 - kb))
        cr = (r - y) / (2.0 * (1.0 - kr))
        mid = 32768.0 if deep else 128.0
        planes = np.stack([y * scale, cb * scale + mid, cr * scale + mid], axis=-1)
        dtype = np.uint16 if deep else np.uint8
        yuv = np.clip(np.rint(planes), 0, scale).astype(dtype)
        fmt444 = "yuv444p16le" if deep else "yuv444p"
        frame = VideoFrame.from_ndarray(yuv, format=fmt444, channel_last=True)
        return frame.reformat(
            format=self.pix_fmt,
            src_colorspace=sws_matrix(self._matrix),
            dst_colorspace=sws_matrix(self._matrix),
            src_color_range=ColorRange.JPEG,
            dst_color_range=ColorRange.JPEG,
            interpolation=WRITE_SWS_FLAGS,
        )

    def write(self, image: npt.NDArray[np.uint8] | npt.NDArray[np.uint16], pts: int) -> None:
        """Queue one (H, W, 3) RGB frame, uint8 or uint16 (full scale), at ``pts`` (source time_base).

        pts must increase strictly. Frames are encoded one call late so each frame's duration is
        known (the gap to the next pts).
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != (self.height, self.width):
            raise ValueError(f"expected a ({self.height}, {self.width}, 3) RGB image, got {image.shape}")
        if image.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"expected uint8 or uint16 pixels, got {image.dtype}")
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"pts must increase: {pts} after {self._last_pts}")
        self.open()
        if self._pending is not None:
            prev_image, prev_pts = self._pending
            self._encode(prev_image, prev_pts, pts - prev_pts)
        self._pending = (image, int(pts))
        self._last_pts = int(pts)

    def _encode(
        self, image: npt.NDArray[np.uint8] | npt.NDArray[np.uint16], pts: int, duration: int | None
    ) -> None:
        assert self._container is not None and self._stream is not None
        frame = self._to_frame(image)
        frame.pts = pts + self._offset
        if (
            self._ms_only
            and not self._warned_rounding
            and (pts * self.source.time_base * 1000).denominator != 1
        ):
            self._warned_rounding = True
            log.warning(
                "%s: Matroska stores milliseconds; pts %d (time base %s) is rounded, so timestamps "
                "will jitter; use a .nut or .mov intermediate to keep them exact",
                self.path,
                pts,
                self.source.time_base,
            )
        frame.time_base = self.source.time_base
        if duration:
            frame.duration = duration
        try:
            self._container.mux(self._stream.encode(frame))
        except av.error.FFmpegError as err:
            raise ExternalToolError(
                ["pyav", self.options.codec], 1, str(err), what=f"encoding {self.path} failed"
            ) from err
        self.frames_written += 1

    def close(self, last_duration: int | None = None) -> None:
        """Encode the held frame, flush the encoder and move the file into place (idempotent).

        Args:
            last_duration: duration of the final frame in source time_base units; default is the
                source's last frame duration (or its nominal frame duration).
        """
        if self._container is None:
            return
        try:
            if self._pending is not None:
                image, pts = self._pending
                dur = last_duration or self.source.last_frame_duration or self.source.frame_duration_ticks
                self._encode(image, pts, dur)
                self._pending = None
            assert self._stream is not None
            self._container.mux(self._stream.encode(None))
            self._container.close()
            self._container = None
        except BaseException:
            self.abort()
            raise
        self._tmp.replace(self.path)
        log.debug("wrote %s: %d frames", self.path, self.frames_written)

    def abort(self) -> None:
        """Drop everything written so far (no partial file is left)."""
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError):
                self._container.close()
            self._container = None
        self._pending = None
        self._tmp.unlink(missing_ok=True)
