"""Streaming decode -> upscale -> encode for one video, memory flat in video length.

Three stages overlap through BOUNDED queues::

    decode thread (FrameReader) --q_in[frames]--> inference (calling thread, batches)
        --q_out[batches]--> encode thread (FrameWriter -> hidden temp video-only file)

then ``assemble_output`` muxes the temp video with the source's audio/subtitles/chapters into the
output. Inference runs in the calling thread so a KeyboardInterrupt lands where it can stop
everything; torch and PyAV release the GIL in their heavy calls, so the stages really overlap.

Failure contract: an exception in ANY stage sets a stop event; every blocking queue operation
polls that event (no deadlock on a full or empty queue), the other stages exit, all threads are
joined, the temp files are removed, and the FIRST error is re-raised. Nothing is written at
``output_path`` unless every frame went through: decoded == probed == upscaled == encoded.
The Upscaler's sanity guard runs inside inference; with ``--on-artifact fail`` a tripped frame
fails the run (naming the frames) after the last frame and before anything is written.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vsrflow.engine.progress import ProgressCallback, make_progress
from vsrflow.engine.quality import GuardReport
from vsrflow.engine.stagetimer import NULL_TIMER, StageTimer
from vsrflow.errors import InputError, VsrError
from vsrflow.media.assemble import PlannedStream, assemble_output, check_streams
from vsrflow.media.condition import Conditioning, choose_conditioning, crop_alignment, warn_about
from vsrflow.media.info import VideoInfo
from vsrflow.media.prefilter import PrefilterRequest, Prefilters, detect_crop, resolve
from vsrflow.media.probe import probe, timing_notes
from vsrflow.media.reader import Frame, FrameReader
from vsrflow.media.retime import prepare_source, retimed_suffix
from vsrflow.media.scan import detect_scan
from vsrflow.media.writer import (
    INTERMEDIATE_SUFFIX,
    EncoderOptions,
    FrameWriter,
    encodable_size,
    hdr_warnings,
    pad_to,
)

if TYPE_CHECKING:  # annotations only: extract (CPU) plans the conditioning here without torch
    from vsrflow.engine.upscaler import Upscaler

log = logging.getLogger(__name__)

#: Decoded frames buffered ahead of inference, per frame of batch (so decode jitter never starves
#: the GPU, while memory stays a few frames).
IN_QUEUE_BATCHES = 2
#: Upscaled batches buffered ahead of the encoder (output frames are the big ones: keep it small).
OUT_QUEUE_BATCHES = 2
#: Poll period (s) of blocking queue operations: how fast a stage notices the stop event.
POLL_S = 0.1
#: How long to wait for a stage thread to finish after stop before giving up on it (s).
JOIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PipelineResult:
    """What one :func:`upscale_video` run did.

    Attributes:
        frames: frames decoded, upscaled and encoded (all equal, or the run raised).
        seconds: wall-clock seconds of the whole run (probe to assembled output).
        fps: frames / seconds.
        output: probe of the written output file.
        guard: the sanity guard's counts (policy ``off`` when the Upscaler has no guard).
        conditioning: what ran before the model (scan-type conditioning and pre-filters).
    """

    frames: int
    seconds: float
    fps: float
    output: VideoInfo
    guard: GuardReport
    conditioning: Conditioning = field(default_factory=Conditioning)


class _End:
    """Queue sentinel: the producer finished normally."""


_END = _End()


@dataclass
class _Batch:
    images: np.ndarray  # (N, H', W', 3) uint8/uint16
    pts: list[int]


class _Stages:
    """Shared state of one run: the stop event, the first error, the bounded queues."""

    def __init__(self, batch: int) -> None:
        self.stop = threading.Event()
        self.q_in: queue.Queue[Any] = queue.Queue(maxsize=max(2, IN_QUEUE_BATCHES * batch))
        self.q_out: queue.Queue[Any] = queue.Queue(maxsize=OUT_QUEUE_BATCHES)
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        """Record ``exc`` (the first one wins) and tell every stage to stop."""
        with self._lock:
            self._errors.append(exc)
        self.stop.set()

    @property
    def error(self) -> BaseException | None:
        with self._lock:
            return self._errors[0] if self._errors else None

    def put(self, q: queue.Queue[Any], item: object) -> bool:
        """Put unless stopped; False when the run is stopping (the item is dropped with it)."""
        while not self.stop.is_set():
            try:
                q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q: queue.Queue[Any]) -> object | None:
        """Next item, or None when the run is stopping."""
        while not self.stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return None


def _decode_stage(
    stages: _Stages,
    path: Path,
    info: VideoInfo,
    conditioning: Conditioning,
    counts: dict[str, int],
    timer: StageTimer = NULL_TIMER,
) -> None:
    try:
        with FrameReader(path, info, conditioning) as reader:
            for frame in timer.iterate("decode", reader):
                if not stages.put(stages.q_in, frame):
                    return
                counts["decoded"] += 1
        stages.put(stages.q_in, _END)
    except BaseException as exc:
        stages.fail(exc)


def _encode_stage(
    stages: _Stages,
    writer: FrameWriter,
    pad: tuple[int, int] | None,
    counts: dict[str, int],
    timer: StageTimer = NULL_TIMER,
) -> None:
    try:
        writer.open()
        while True:
            item = stages.get(stages.q_out)
            if item is None:  # stopping: another stage failed
                writer.abort()
                return
            if isinstance(item, _End):
                writer.close()
                counts["encoded"] = writer.frames_written
                return
            assert isinstance(item, _Batch)
            for image, pts in zip(item.images, item.pts, strict=True):
                with timer.stage("encode"):
                    writer.write(pad_to(image, *pad) if pad else image, pts)  # type: ignore[arg-type]
    except BaseException as exc:
        stages.fail(exc)
        try:
            writer.abort()
        except Exception:  # cleanup must not mask the real error
            log.debug("writer.abort failed", exc_info=True)


def plan_conditioning(
    path: Path,
    info: VideoInfo,
    deinterlace: str,
    scan: str,
    prefilter: PrefilterRequest | None = None,
    ffmpeg: str = "ffmpeg",
) -> Conditioning:
    """Detect the scan type of ``path`` and choose its conditioning (logged; warnings for risks).

    ``prefilter`` is the user's pre-filter request; ``--crop auto`` detects the black borders
    here, once for the whole source. The single pass and the chunked job's extract stage both
    decide here.
    """
    detected = detect_scan(path, info, scan)
    prefilters = resolve_prefilters(path, info, prefilter or PrefilterRequest(), ffmpeg)
    conditioning = choose_conditioning(detected, deinterlace, prefilters)
    warn_about(detected, conditioning, deinterlace, path)
    return conditioning


def resolve_prefilters(
    path: Path, info: VideoInfo, request: PrefilterRequest, ffmpeg: str = "ffmpeg"
) -> Prefilters:
    """The :class:`Prefilters` of ``request`` for ``path`` (runs ``cropdetect`` for ``--crop auto``)."""
    align = crop_alignment(info.pix_fmt)
    detected = None
    if request.effective().crop == "auto":
        detected = detect_crop(path, info, ffmpeg, align)
        if detected is None:
            log.info("%s: --crop auto: no black borders found; the picture is kept whole", path)
    return resolve(
        request, width=info.width, height=info.height, sar=info.sar, detected_crop=detected, align=align
    )


def plan_output(upscaler: Upscaler, info: VideoInfo, pix_fmt: str) -> tuple[tuple[int, int] | None, int, int]:
    """(resize target for the Upscaler or None, encoded width, encoded height).

    The encoder may need even sizes (4:2:0). A fractional scale is resized anyway, so the
    Upscaler resizes straight to the encodable size (one resample). A native-scale output is
    never resampled for one pixel: it is edge-padded by the encode stage instead.
    """
    out_h, out_w = upscaler.output_size(info.height, info.width)
    enc_w, enc_h = encodable_size(out_w, out_h, pix_fmt)
    if upscaler.scale != upscaler.native_scale:
        return (enc_h, enc_w), enc_w, enc_h
    return None, enc_w, enc_h


def upscale_video(
    input_path: Path | str,
    output_path: Path | str,
    *,
    upscaler: Upscaler,
    encoder: EncoderOptions | None = None,
    progress: bool | ProgressCallback = True,
    ffmpeg: str = "ffmpeg",
    timer: StageTimer | None = None,
    deinterlace: str = "frame",
    scan: str = "auto",
    accept_damaged: bool = False,
    video_stream: int | None = None,
    streams: list[PlannedStream] | None = None,
    prefilter: PrefilterRequest | None = None,
) -> PipelineResult:
    """Upscale every frame of ``input_path`` into ``output_path``, keeping pts and other streams.

    Args:
        input_path: source video.
        output_path: result (container from its suffix); written only on full success.
        upscaler: the configured model runner (its ``batch`` sets frames per inference call).
        encoder: video encoder settings (default :class:`EncoderOptions`).
        progress: ``True``: tqdm bar on a TTY stderr, else periodic log lines; ``False``: quiet;
            a callable: called as ``progress(frames_done, frames_total)`` after each batch.
        ffmpeg: ffmpeg CLI used by the final mux.
        timer: per-stage timer (:mod:`vsrflow.engine.stagetimer`): ``decode``, ``infer`` (with the
            upscaler's ``h2d``/``model``/``d2h`` inside), ``encode``, ``mux``; None records nothing.
        deinterlace: what to do with an interlaced source: 'frame' (bwdif, same frame rate),
            'field' (bwdif, doubled frame rate) or 'off'; telecined film is inverse-telecined
            unless 'off' (see :mod:`vsrflow.media.condition`).
        scan: 'auto' (detect: stream flag + idet sample) or the scan type to assume.
        accept_damaged: upscale a cut-short source as far as it goes (see
            :func:`vsrflow.media.probe.probe`) instead of refusing it.
        video_stream: the container index of the video stream to upscale (``--video-stream``);
            None: the only one (a source with several is refused, see
            :func:`~vsrflow.media.assemble.plan_streams`).
        streams: the other streams' plan, checked by the caller before its own preparations
            (:func:`~vsrflow.media.assemble.check_streams`); None: checked here, before any work.
        prefilter: the pre-filters to run before the model (:mod:`vsrflow.media.prefilter`;
            None: none).

    Raises:
        InputError: unreadable input, input == output, frame count mismatch with the probe, a
            stream the output container cannot hold (before any frame is decoded).
        VsrError: frames lost between stages (a bug, never silent); any stage's own error.
    """
    t0 = time.monotonic()
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise InputError(f"output {output_path} is the input file", hint="choose another -o path")
    encoder = encoder or EncoderOptions()
    source_info = probe(input_path, video_stream, accept_damaged=accept_damaged)
    for note in timing_notes(source_info):
        log.warning("%s", note)
    if streams is None:
        streams = check_streams(source_info, output_path, video_stream=video_stream, ffmpeg=ffmpeg)
    for note in hdr_warnings(source_info, encoder.codec):
        log.warning("%s", note)
    # A clock that jumps (joined captures) is re-timed into a hidden stream copy; from here on
    # that copy is the source (frames, timestamps and the other streams of the final mux; the
    # copy keeps every stream at its index, so the stream plan above holds for it).
    retimed = output_path.with_name(
        f".{output_path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.source{retimed_suffix(source_info)}"
    )
    try:
        source_info = prepare_source(source_info, retimed)
        return _upscale_source(
            t0, source_info, output_path, upscaler, encoder, progress, ffmpeg, timer,
            deinterlace, scan, prefilter, streams,
        )  # fmt: skip
    finally:
        retimed.unlink(missing_ok=True)


def _upscale_source(
    t0: float,
    source_info: VideoInfo,
    output_path: Path,
    upscaler: Upscaler,
    encoder: EncoderOptions,
    progress: bool | ProgressCallback,
    ffmpeg: str,
    timer: StageTimer | None,
    deinterlace: str,
    scan: str,
    prefilter: PrefilterRequest | None,
    streams: list[PlannedStream],
) -> PipelineResult:
    """:func:`upscale_video` of the probed (and, when needed, re-timed) source ``source_info``."""
    input_path = source_info.path
    conditioning = plan_conditioning(input_path, source_info, deinterlace, scan, prefilter, ffmpeg)
    # From here on ``info`` is the video the model sees (conditioned rate, time base and count).
    info = conditioning.output_info(source_info)
    resize_to, enc_w, enc_h = plan_output(upscaler, info, encoder.resolved_pix_fmt(info))
    out_h, out_w = upscaler.output_size(info.height, info.width)
    pad = (enc_w, enc_h) if resize_to is None and (enc_w, enc_h) != (out_w, out_h) else None
    log.info(
        "upscaling %s: %dx%d -> %dx%d, %d frames, %s on %s (%s), batch %d",
        input_path, info.width, info.height, enc_w, enc_h, info.frame_count,
        upscaler.descriptor.arch, upscaler.device, upscaler.dtype, upscaler.batch,
    )  # fmt: skip

    temp_video = output_path.with_name(
        f".{output_path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.video{INTERMEDIATE_SUFFIX}"
    )
    writer = FrameWriter(temp_video, width=enc_w, height=enc_h, source=info, options=encoder)
    stages = _Stages(upscaler.batch)
    counts = {"decoded": 0, "upscaled": 0, "encoded": 0}
    timer = timer or NULL_TIMER
    threads = [
        threading.Thread(
            target=_decode_stage,
            args=(stages, input_path, source_info, conditioning, counts, timer),
            name="vsrflow-decode",
            daemon=True,
        ),
        threading.Thread(
            target=_encode_stage,
            args=(stages, writer, pad, counts, timer),
            name="vsrflow-encode",
            daemon=True,
        ),
    ]
    saved_timer, upscaler.timer = upscaler.timer, timer
    bar = make_progress(progress, info.frame_count, input_path.name)
    upscaler.reset()  # a temporal model starts this video from a fresh state
    try:
        for t in threads:
            t.start()
        _infer_stage(stages, upscaler, resize_to, counts, bar.update, timer)
        _join(threads, stages)
        if stages.error is not None:
            raise stages.error
        _check_counts(counts, info, input_path)
        report = upscaler.check_artifacts()  # --on-artifact fail raises here, before any output
        bar.close()
        with timer.stage("mux"):
            out_info = assemble_output(
                temp_video,
                info,
                output_path,
                expected_frames=info.frame_count,
                ffmpeg=ffmpeg,
                streams=streams,
            )
    except BaseException as exc:
        stages.fail(exc)  # no-op for the error already recorded; stops the others otherwise
        _join(threads, stages)
        raise
    finally:
        upscaler.timer = saved_timer
        bar.close()
        temp_video.unlink(missing_ok=True)

    seconds = time.monotonic() - t0
    frames = counts["encoded"]
    log.info("wrote %s: %d frames in %.1f s (%.2f fps)", output_path, frames, seconds, frames / seconds)
    return PipelineResult(
        frames=frames,
        seconds=seconds,
        fps=frames / max(seconds, 1e-9),
        output=out_info,
        guard=report,
        conditioning=conditioning,
    )


def _infer_stage(
    stages: _Stages,
    upscaler: Upscaler,
    resize_to: tuple[int, int] | None,
    counts: dict[str, int],
    on_progress: Callable[[int], None],
    timer: StageTimer = NULL_TIMER,
) -> None:
    """Pull frames, upscale them in batches, push batches; return at the end, raise on stop."""
    images: list[np.ndarray] = []
    pts: list[int] = []
    finished = False
    while not finished:
        item = stages.get(stages.q_in)
        if item is None:
            raise stages.error or VsrError("pipeline stopped without an error")
        if isinstance(item, _End):
            finished = True
        else:
            assert isinstance(item, Frame)
            images.append(item.image)
            pts.append(item.pts)
        if images and (finished or len(images) == upscaler.batch):
            with timer.stage("infer"):
                out = upscaler.upscale_frames(np.stack(images), output_size=resize_to)
            if not stages.put(stages.q_out, _Batch(out, pts)):
                raise stages.error or VsrError("pipeline stopped without an error")
            counts["upscaled"] += len(images)
            on_progress(len(images))
            images, pts = [], []
    if not stages.put(stages.q_out, _END):
        raise stages.error or VsrError("pipeline stopped without an error")


def _join(threads: list[threading.Thread], stages: _Stages) -> None:
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for t in threads:
        # Short timed joins keep the main thread responsive to KeyboardInterrupt.
        while t.is_alive():
            t.join(timeout=POLL_S)
            if stages.stop.is_set() and time.monotonic() > deadline:
                log.error("stage thread %s did not stop within %.0f s", t.name, JOIN_TIMEOUT_S)
                return


def _check_counts(counts: dict[str, int], info: VideoInfo, path: Path) -> None:
    decoded, upscaled, encoded = counts["decoded"], counts["upscaled"], counts["encoded"]
    if decoded != info.frame_count:
        raise InputError(
            f"{path}: decoded {decoded} frames but the probe (and conditioning) gave {info.frame_count}",
            hint="the video stream may be damaged; remux or re-encode the source",
        )
    if not decoded == upscaled == encoded:
        raise VsrError(f"{path}: frames lost in the pipeline: decoded {decoded}, "
                       f"upscaled {upscaled}, encoded {encoded}")  # fmt: skip
