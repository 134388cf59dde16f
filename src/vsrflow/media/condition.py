"""Conditioning before the model: deinterlace or inverse-telecine, with ffmpeg's own filters.

One owner for what the model sees, used by BOTH the single pass (:class:`vsrflow.media.reader.FrameReader`)
and the chunked job (:func:`vsrflow.workflow.job.chunk_io.decode_conditioned_chunk`), so they give
the same frames with the same timestamps:

=============  =========================================  ==========================  ==============
mode           filter graph (PyAV, in-process)            frames out per source       rate, time base
=============  =========================================  ==========================  ==============
``none``       (no graph)                                 1                           source's
``bwdif``      ``bwdif=mode=send_frame:parity=P:deint=all``  1 (pts of its source frame) source's
``bwdif-field`` ``bwdif=mode=send_field:...``              2 (pts 2p and p + p_next)   2x rate, tb / 2
``ivtc``       ``fieldmatch,bwdif=deint=interlaced,decimate`` 4 of every 5 (the last,      4/5 rate
               (combed leftovers deinterlaced)             partial cycle keeps all)    (nominal pts)
=============  =========================================  ==========================  ==============

Timestamps are computed here from the source pts and the output index (never taken from the
filters), so the conditioned timeline is a function of the source alone: ``output_pts`` gives
every conditioned frame's pts (the chunk plan uses it), :class:`Conditioner` stamps frames with the
same function. Output frames are progressive (``interlaced_frame`` cleared).

Pre-filters (:mod:`vsrflow.media.prefilter`: deblock, denoise, crop, square pixels) ride in the
same graph: deblock before the scan-type filters, the rest after them; they keep one frame per
frame and the pts, and change the picture size and SAR as :meth:`Conditioning.output_info` says.

Chunk boundaries: a conditioned chunk starts at a multiple of :attr:`Conditioning.cut_multiple`
output frames (2 fields; 4 IVTC frames = one 5-frame decimation cycle), and is decoded from
:attr:`Conditioning.context` source frames earlier (and as many later), so the filters see the
same neighbours as in the single pass (temporal denoisers widen the context by their radius).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import av
import av.error
import av.filter
from av.video.format import VideoFormat
from av.video.frame import VideoFrame

from vsrflow.errors import InputError, VsrError
from vsrflow.media.colour import effective_matrix
from vsrflow.media.info import VideoInfo
from vsrflow.media.prefilter import Prefilters
from vsrflow.media.scan import ScanType

log = logging.getLogger(__name__)

#: ``--deinterlace`` choices: deinterlace to the frame rate, to the field rate, or not at all.
DEINTERLACE_MODES = ("frame", "field", "off")
MODES = ("none", "bwdif", "bwdif-field", "ivtc")


@dataclass(frozen=True)
class Conditioning:
    """How the source's frames are turned into the model's (see the module table).

    Attributes:
        mode: one of :data:`MODES`.
        parity: 'tff' or 'bff' (the field order the filters assume), None for 'none'.
        prefilters: the pre-filters (deblock, denoise, crop, square pixels), resolved for the source.
    """

    mode: str = "none"
    parity: str | None = None
    prefilters: Prefilters = field(default_factory=Prefilters)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"conditioning mode {self.mode!r} is not one of {MODES}")
        if self.mode != "none" and self.parity not in ("tff", "bff"):
            raise ValueError(f"conditioning {self.mode} needs parity tff or bff, got {self.parity!r}")

    @property
    def active(self) -> bool:
        """Frames go through a filter graph (scan-type conditioning or any pre-filter)."""
        return self.mode != "none" or self.prefilters.active

    # -- text form (stored in the job manifest) --------------------------------------------
    def to_text(self) -> str:
        """'none', 'bwdif:tff', 'bwdif-field:bff', 'ivtc:tff', then ';'-separated pre-filters
        ('none;crop=704:560:8:8:auto', 'bwdif:tff;deblock=weak;denoise=nlmeans:light')."""
        base = self.mode if self.mode == "none" else f"{self.mode}:{self.parity}"
        extra = self.prefilters.to_text()
        return f"{base};{extra}" if extra else base

    @classmethod
    def from_text(cls, text: str) -> Conditioning:
        head, *parts = text.split(";")
        mode, _, parity = head.partition(":")
        return cls(mode, parity or None, Prefilters.from_text(parts))

    def describe(self) -> str:
        """One line for logs and ``vsrflow probe`` (the scan-type conditioning, then pre-filters)."""
        return "; ".join([self._describe_scan(), *self.prefilters.describe()])

    def to_json(self) -> dict[str, object]:
        """The provenance record: the text form and every filter with its arguments, in graph order."""
        return {
            "text": self.to_text(),
            "filters": [{"filter": name, "args": args} for name, args in self.filter_chain()],
            "prefilters": self.prefilters.to_json(),
        }

    def _describe_scan(self) -> str:
        return {
            "none": "no deinterlacing" if self.prefilters.active else "none (frames used as they are)",
            "bwdif": f"deinterlace (bwdif, {self.parity}) at the frame rate",
            "bwdif-field": f"deinterlace (bwdif, {self.parity}) at the field rate (frame rate doubled)",
            "ivtc": f"inverse telecine (fieldmatch {self.parity} + decimate) to 4/5 of the rate",
        }[self.mode]

    # -- geometry of the conditioned timeline ------------------------------------------------
    @property
    def cut_multiple(self) -> int:
        """Chunk boundaries (output indices) must be multiples of this."""
        return {"none": 1, "bwdif": 1, "bwdif-field": 2, "ivtc": 4}[self.mode]

    @property
    def context(self) -> int:
        """Source frames decoded before and after a chunk so the filters see the same neighbours.

        The scan-type filters' own context, plus the source frames that cover a temporal
        denoiser's radius of conditioned frames (whole 5-frame cycles for IVTC).
        """
        base = {"none": 0, "bwdif": 2, "bwdif-field": 2, "ivtc": 5}[self.mode]
        radius = self.prefilters.radius
        if not radius:
            return base
        if self.mode == "bwdif-field":
            return base + (radius + 1) // 2
        if self.mode == "ivtc":
            return base + 5 * -(-(radius * 5 // 4 + 1) // 5)
        return base + radius

    def output_count(self, source_frames: int) -> int:
        """Conditioned frames from ``source_frames`` consecutive source frames from frame 0."""
        if self.mode == "bwdif-field":
            return 2 * source_frames
        if self.mode == "ivtc":
            return source_frames - source_frames // 5
        return source_frames

    def source_index(self, output_index: int) -> int:
        """The source frame where the output frame ``output_index`` (a chunk cut) starts."""
        if self.mode == "bwdif-field":
            if output_index % 2:
                raise ValueError(f"field-rate cut {output_index} is not even")
            return output_index // 2
        if self.mode == "ivtc":
            if output_index % 4:
                raise ValueError(f"IVTC cut {output_index} is not a multiple of 4")
            return output_index // 4 * 5
        return output_index

    def output_info(self, info: VideoInfo) -> VideoInfo:
        """``info`` as the conditioned video: rate, time base, frame count, duration (progressive
        when deinterlaced); size and SAR after the pre-filters (1:1 with square pixels)."""
        out = self._scan_output_info(info)
        pf = self.prefilters
        if not pf.active:
            return out
        width, height = pf.size(info.width, info.height)
        # The matrix an untagged source is read with follows its size (SD: BT.601): keep the
        # source's, so cropping or resampling never changes how the colours are converted.
        matrix = info.color_matrix or effective_matrix(None, info.width, info.height)
        return replace(
            out,
            width=width,
            height=height,
            sar=Fraction(1) if pf.square_width is not None else info.sar,
            color_matrix=matrix if (width, height) != (info.width, info.height) else info.color_matrix,
        )

    def _scan_output_info(self, info: VideoInfo) -> VideoInfo:
        if self.mode == "none":
            return info
        n = self.output_count(info.frame_count)
        if self.mode == "bwdif":
            return replace(info, field_order="progressive")
        if self.mode == "bwdif-field":
            tb = info.time_base / 2
            last = max(1, info.last_frame_duration or info.frame_duration_ticks)
            return replace(
                info,
                frame_rate=info.frame_rate * 2,
                avg_frame_rate=info.avg_frame_rate * 2,
                time_base=tb,
                frame_count=n,
                start_pts=info.start_pts * 2,
                last_frame_duration=last,  # half a source frame, in the halved time base
                field_order="progressive",
            )
        rate = info.frame_rate * Fraction(4, 5)
        step = 1 / rate / info.time_base
        last = round(step * n) - round(step * (n - 1))
        return replace(
            info,
            frame_rate=rate,
            avg_frame_rate=rate,
            frame_count=n,
            duration=float(n / rate),
            last_frame_duration=max(1, last),
            is_vfr=False,
            field_order="progressive",
        )

    def output_pts(self, info: VideoInfo, source_pts: Sequence[int]) -> list[int]:
        """Every conditioned frame's pts (in ``output_info(info).time_base``), from the source's.

        ``source_pts`` are all source frames' pts in presentation order (``len == frame_count``).
        """
        if self.mode in ("none", "bwdif"):
            return list(source_pts)
        if self.mode == "bwdif-field":
            last = max(1, info.last_frame_duration or info.frame_duration_ticks)
            out: list[int] = []
            for i, p in enumerate(source_pts):
                nxt = source_pts[i + 1] if i + 1 < len(source_pts) else p + last
                out += [2 * p, p + nxt]
            return out
        return [self._nominal_pts(info, j) for j in range(self.output_count(len(source_pts)))]

    def _nominal_pts(self, info: VideoInfo, index: int) -> int:
        step = 1 / (info.frame_rate * Fraction(4, 5)) / info.time_base
        return info.start_pts + round(step * index)

    def output_keyframes(self, keyframes: Iterable[int]) -> list[int]:
        """Output indices where a decode from a source keyframe starts a clean cut (on the grid)."""
        out = []
        for k in keyframes:
            if self.mode == "ivtc" and k % 5:
                continue
            out.append(self.output_count(k))
        return out

    def filter_chain(self) -> list[tuple[str, str]]:
        """(filter name, arguments) in graph order."""
        return self.prefilters.head_chain() + self._scan_chain() + self.prefilters.tail_chain()

    def _scan_chain(self) -> list[tuple[str, str]]:
        p = self.parity or "tff"
        if self.mode == "bwdif":
            return [("bwdif", f"mode=send_frame:parity={p}:deint=all")]
        if self.mode == "bwdif-field":
            return [("bwdif", f"mode=send_field:parity={p}:deint=all")]
        if self.mode == "ivtc":
            return [
                ("fieldmatch", f"order={p}:combmatch=full"),
                ("bwdif", f"mode=send_frame:parity={p}:deint=interlaced"),
                ("decimate", "cycle=5"),
            ]
        return []


def crop_alignment(pix_fmt: str) -> tuple[int, int]:
    """The (horizontal, vertical) multiple a crop of ``pix_fmt`` frames keeps: its chroma
    subsampling, and at least 2 each way (field pairs): (2, 2) for 4:2:0 and 4:2:2, (4, 2) for
    4:1:1 (NTSC DV), (4, 4) for 4:1:0."""
    fmt = VideoFormat(pix_fmt)
    return max(2, 64 // fmt.chroma_width(64)), max(2, 64 // fmt.chroma_height(64))


def choose_conditioning(
    scan: ScanType, deinterlace: str, prefilters: Prefilters | None = None
) -> Conditioning:
    """The conditioning for a scan type and the user's ``--deinterlace`` (frame, field, off).

    Telecined film is inverse-telecined unless deinterlacing is off (never at other rates: the
    scan type is only 'telecine' for 29.97/30 fps sources, see :mod:`vsrflow.media.scan`).
    ``prefilters`` (resolved by :func:`vsrflow.media.prefilter.resolve`) ride along unchanged.
    """
    pf = prefilters or Prefilters()
    if deinterlace not in DEINTERLACE_MODES:
        raise InputError(
            f"--deinterlace {deinterlace!r} is not one of {', '.join(DEINTERLACE_MODES)}",
            hint="use frame (default), field or off",
        )
    if not scan.interlaced or deinterlace == "off":
        return Conditioning(prefilters=pf)
    if scan.kind == "telecine":
        return Conditioning("ivtc", scan.parity, pf)
    return Conditioning("bwdif-field" if deinterlace == "field" else "bwdif", scan.parity, pf)


def warn_about(scan: ScanType, conditioning: Conditioning, deinterlace: str, source: object) -> None:
    """Log the scan type's notes and what conditioning does to ``source``, as warnings when risky."""
    for note in scan.notes:
        log.warning("%s: %s", source, note)
    if scan.interlaced and not conditioning.active:
        log.warning(
            "%s: the source is %s (%s) but --deinterlace %s: fields are upscaled as frames and any "
            "combing is magnified",
            source, scan.kind, scan.parity, deinterlace,
        )  # fmt: skip
    elif conditioning.active:
        log.info("%s: %s source (%s): %s", source, scan.kind, scan.basis, conditioning.describe())


class Conditioner:
    """Push decoded source frames, get conditioned frames with their output index and pts.

    Args:
        conditioning: what to do (an inactive one passes frames through).
        info: the source probe (time base, rate, last frame duration).
        first_source_index: index of the first frame that will be pushed (a chunk's context
            start; a multiple of 5 for IVTC), so output indices are those of the whole video.

    ``push(frame, source_pts)`` and ``finish()`` yield ``(frame, output_index, output_pts)``.
    """

    def __init__(
        self,
        conditioning: Conditioning,
        info: VideoInfo,
        *,
        first_source_index: int = 0,
    ) -> None:
        self.c = conditioning
        self.info = info
        if conditioning.mode == "ivtc" and first_source_index % 5:
            raise ValueError(f"IVTC must start on a 5-frame cycle, not at source frame {first_source_index}")
        self._first_out = conditioning.output_count(first_source_index)
        self._src_index = first_source_index
        self._src_pts: dict[int, int] = {}
        self._out = 0
        self._pushed = 0
        self._graph: av.filter.Graph | None = None
        if conditioning.active:
            graph = av.filter.Graph()
            # The buffer is described by hand: PyAV's template leaves the frame rate out, and
            # decimate (and the field-rate bwdif) derive their output rate from it.
            rate, tb, sar = info.frame_rate, info.time_base, info.sar
            node = graph.add(
                "buffer",
                f"video_size={info.width}x{info.height}:pix_fmt={info.pix_fmt}"
                f":time_base={tb.numerator}/{tb.denominator}"
                f":pixel_aspect={sar.numerator}/{sar.denominator}"
                f":frame_rate={rate.numerator}/{rate.denominator}",
            )
            for name, args in conditioning.filter_chain():
                nxt = graph.add(name, args)
                node.link_to(nxt)
                node = nxt
            sink = graph.add("buffersink")
            node.link_to(sink)
            graph.configure()
            self._graph = graph

    def push(self, frame: VideoFrame, source_pts: int) -> Iterator[tuple[VideoFrame, int, int]]:
        self._src_pts[self._src_index] = int(source_pts)
        self._src_index += 1
        self._pushed += 1
        if self._graph is None:
            yield from self._emit(frame)
            return
        try:
            self._graph.push(frame)
        except av.error.FFmpegError as err:
            raise VsrError(f"the {self.c.to_text()} filters refused a frame: {err}") from err
        yield from self._drain()

    def finish(self) -> Iterator[tuple[VideoFrame, int, int]]:
        """Flush the filters; checks that they produced exactly the expected number of frames."""
        if self._graph is not None:
            self._graph.push(None)
            yield from self._drain()
        expected = self.c.output_count(self._pushed)
        if self._out != expected:
            raise VsrError(
                f"{self.info.path}: the {self.c.mode} filters gave {self._out} frames for "
                f"{self._pushed} source frames, expected {expected}",
                hint="report this with the source: a conditioned frame would be lost or duplicated",
            )

    def _drain(self) -> Iterator[tuple[VideoFrame, int, int]]:
        assert self._graph is not None
        while True:
            try:
                out = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            assert isinstance(out, VideoFrame)
            yield from self._emit(out)

    def _emit(self, frame: VideoFrame) -> Iterator[tuple[VideoFrame, int, int]]:
        index = self._first_out + self._out
        self._out += 1
        yield frame, index, self._pts(index)

    def _pts(self, index: int) -> int:
        mode, pts = self.c.mode, self._src_pts
        if mode in ("none", "bwdif"):
            return pts.pop(index)
        if mode == "bwdif-field":
            src = index // 2
            p = pts[src]
            if index % 2 == 0:
                return 2 * p
            nxt = pts.get(src + 1)
            if nxt is None:
                nxt = p + max(1, self.info.last_frame_duration or self.info.frame_duration_ticks)
            pts.pop(src - 1, None)
            return p + nxt
        # IVTC: nominal times of the 4/5 rate; forget source pts already behind the filters.
        for old in [k for k in pts if k < self._src_index - 16]:
            del pts[old]
        return self.c._nominal_pts(self.info, index)


def condition(
    frames: Iterable[tuple[VideoFrame, int]],
    conditioning: Conditioning,
    info: VideoInfo,
    *,
    first_source_index: int = 0,
) -> Iterator[tuple[VideoFrame, int, int]]:
    """Run source ``(frame, pts)`` pairs through :class:`Conditioner` (convenience wrapper)."""
    cond = Conditioner(conditioning, info, first_source_index=first_source_index)
    for frame, pts in frames:
        yield from cond.push(frame, pts)
    yield from cond.finish()
