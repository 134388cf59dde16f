"""Decode a video stream to RGB frames with PyAV, honouring the source's matrix and range.

Frames come out in presentation order with their original pts. Pixels are never rotated (rotation
stays metadata, see :attr:`VideoInfo.rotation`). With a :class:`~vsrflow.media.condition.Conditioning`
(deinterlace, inverse telecine) the frames are those of the conditioned video, with its index and pts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import av.error
import numpy as np
import numpy.typing as npt
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange
from av.video.stream import VideoStream

from vsrflow.errors import InputError
from vsrflow.media.colour import (
    READ_SWS_FLAGS,
    READ_SWS_FLAGS_DEEP,
    effective_matrix,
    effective_range,
    sws_matrix,
    sws_range,
)
from vsrflow.media.condition import Conditioning, condition
from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import discontinuity_error, open_input, probe

log = logging.getLogger(__name__)


@dataclass
class Frame:
    """One decoded picture.

    Attributes:
        image: (H, W, 3) RGB, C-contiguous. uint8 (0..255) for sources of <= 8 bits per component,
            uint16 full scale (0..65535, i.e. rgb48) for deeper sources.
        pts: presentation timestamp in the source video stream's ``time_base``.
        index: 0-based position in presentation order.
    """

    image: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]
    pts: int
    index: int


def rgb_format(info: VideoInfo) -> str:
    """The PyAV pixel format frames are converted to: 'rgb24' (<= 8 bit) or 'rgb48le'."""
    return "rgb48le" if info.bit_depth > 8 else "rgb24"


def frame_to_rgb(frame: VideoFrame, info: VideoInfo) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]:
    """Convert a decoded frame to an (H, W, 3) RGB array using ``info``'s matrix and range."""
    fmt = rgb_format(info)
    if frame.format.is_rgb:
        rgb = frame.reformat(format=fmt)
    else:
        matrix = sws_matrix(effective_matrix(info.color_matrix, info.width, info.height))
        rng = sws_range(effective_range(info.color_range, frame.format.name))
        rgb = frame.reformat(
            format=fmt,
            src_colorspace=matrix,
            dst_colorspace=matrix,
            src_color_range=rng,
            dst_color_range=ColorRange.JPEG,
            interpolation=READ_SWS_FLAGS if fmt == "rgb24" else READ_SWS_FLAGS_DEEP,
        )
    array = np.ascontiguousarray(rgb.to_ndarray())
    if fmt == "rgb24":
        return array.astype(np.uint8, copy=False)
    return array.astype(np.uint16, copy=False)


class FrameReader:
    """Iterate the RGB :class:`Frame` s of a file's video stream.

    Use as a context manager (``with FrameReader(path) as reader: for frame in reader: ...``); the
    decoder runs with frame/slice threads. A decode failure raises :class:`InputError` naming the
    file and frame index (frames are never silently dropped). A source whose clock jumps
    (:attr:`VideoInfo.clock_jumps`) is refused: re-time it first (:mod:`vsrflow.media.retime`).
    """

    def __init__(
        self, path: Path | str, info: VideoInfo | None = None, conditioning: Conditioning | None = None
    ) -> None:
        self.path = Path(path)
        self.info = info if info is not None else probe(self.path)
        if self.info.clock_jumps:
            raise discontinuity_error(self.info)
        self.conditioning = conditioning or Conditioning()
        #: What the frames are: the source, or the conditioned video (rate, time base, count).
        self.output_info = self.conditioning.output_info(self.info)
        self._container: InputContainer | None = None
        self._stream: VideoStream | None = None

    def __enter__(self) -> FrameReader:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Open the container (idempotent)."""
        if self._container is None:
            self._container = open_input(self.path)
            stream = self._container.streams[self.info.video_stream_index]
            assert isinstance(stream, VideoStream)
            stream.thread_type = "AUTO"
            self._stream = stream

    def close(self) -> None:
        """Release the decoder and file (idempotent)."""
        if self._container is not None:
            self._container.close()
            self._container = None
            self._stream = None

    def __len__(self) -> int:
        return self.output_info.frame_count

    def __iter__(self) -> Iterator[Frame]:
        """Frames of the (conditioned) video; pts in ``output_info.time_base``."""
        for frame, index, pts in condition(self._source_frames(), self.conditioning, self.info):
            yield Frame(image=frame_to_rgb(frame, self.info), pts=pts, index=index)

    def _source_frames(self) -> Iterator[tuple[VideoFrame, int]]:
        """Decoded source frames with their pts, in presentation order."""
        self.open()
        assert self._container is not None and self._stream is not None
        index = 0
        next_pts = self.info.start_pts
        step = self.info.frame_duration_ticks
        try:
            for frame in self._container.decode(self._stream):
                # A frame without pts (rare: raw streams) continues the nominal cadence.
                pts = int(frame.pts) if frame.pts is not None else next_pts
                if index == 0 and pts < self.info.start_pts:
                    continue  # the undecodable lead (VideoInfo.skipped_packets), should it decode
                yield frame, pts
                index += 1
                next_pts = pts + step
        except av.error.FFmpegError as err:
            raise InputError(
                f"{self.path}: decoding failed at frame {index}: {err}",
                hint="the video stream is damaged; re-export the source",
            ) from err
