"""The four stages of a chunked job: extract, upscale-chunk, encode, finalize.

Each stage takes a :class:`~vsrflow.workflow.job.layout.JobDir` and works only through it and the
manifest (:mod:`vsrflow.workflow.job.manifest`), so the same functions run under the local executor
(:mod:`vsrflow.workflow.job.local`), from ``vsrflow job ...`` and in Slurm jobs.

* :func:`extract` probes and validates the source, scans its keyframes and records the frame-exact
  chunk plan. Staging decision: the source must be a local path on storage every node sees (the
  job root is shared storage); it is used IN PLACE, not split or copied: each chunk task decodes
  its range straight from the source (:func:`vsrflow.workflow.job.chunk_io.decode_chunk`). That needs
  no scratch space for a split copy and stays frame-exact for chunks that do not start on a
  keyframe. ``s3://`` sources need a download step first (not done here: InputError).
* :func:`upscale_chunk` upscales one chunk into ``chunks/<i>.nut`` (FrameWriter: temporary name,
  atomic rename), recording checksum and timing; a chunk that is done and whose output still has
  the recorded sha256 is skipped (resume); a done chunk whose output is gone is redone.
* :func:`encode` streams the chunk outputs (packet remux, no re-encode) through a pipe into the
  final mux with every non-video source stream (:func:`vsrflow.media.assemble.assemble_streamed`);
  no concatenated copy is stored, so scratch peaks at the chunk outputs themselves.
* :func:`finalize` records why an unfinished job failed, and removes the chunk outputs of a
  finished one (chunk records stay for ``status``). A failed job keeps its chunks for resume.

Failure recording: extract and encode are the single writers of manifest.json while they run, so
they mark the job failed with the reason themselves; a chunk task marks only its own chunk failed
(other chunks keep running) and :func:`finalize` turns failed chunks into the job's reason.
Chunk outputs are encoded without B-frames so their packets concatenate with monotonic dts
(:func:`vsrflow.workflow.job.chunk_io.chunk_encoder_extra`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.engine.cache import UpscalerCache
from vsrflow.engine.quality import GuardReport, QualityOptions
from vsrflow.errors import InputError, VsrError
from vsrflow.files import sha256_file
from vsrflow.media.info import VideoInfo
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import ChunkState, JobState, ManifestStore
from vsrflow.workflow.job.spec import JobSpec

log = logging.getLogger(__name__)


def local_path(location: str, what: str) -> Path:
    """A spec location as a local path (``file://`` stripped); InputError for ``s3://``."""
    if location.startswith("file://"):
        return Path(location[len("file://") :])
    if "://" in location:
        raise InputError(
            f"{what} {location}: only local paths (shared storage) are supported by these stages",
            hint="download the object to the shared filesystem first, or pass a local path",
        )
    return Path(location)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _fail_job(store: ManifestStore, reason: str) -> None:
    """Best effort: mark the job failed (never masks the original error)."""
    try:
        if store.load().state not in (JobState.DONE, JobState.FAILED):
            store.set_state(JobState.FAILED, reason=reason)
    except Exception:  # an unreadable manifest: the original error is what matters
        log.debug("could not record the job failure", exc_info=True)


def _probe_source(job: JobDir, *, retime: bool = False) -> tuple[Path, VideoInfo]:
    """The path every stage reads the source from, and its probe.

    A source whose MPEG-PS/TS clock jumps is read from its re-timed stream copy in the job's
    ``source/`` directory (:mod:`vsrflow.media.retime`), which extract writes (``retime=True``,
    logging what it did, as ``vsrflow upscale`` does); the later stages find it there.
    """
    from vsrflow.media.probe import probe, timing_notes
    from vsrflow.media.retime import prepare_source, retimed_suffix

    source = local_path(job.spec.source, "source")
    info = probe(source, job.spec.video_stream, accept_damaged=job.spec.accept_damaged)
    if info.frame_count <= 0:
        raise InputError(f"{source}: the video stream has no frames", hint="check the source file")
    copy = job.source_dir / f"retimed{retimed_suffix(info)}"
    if retime:
        for note in timing_notes(info):
            log.warning("%s", note)
        if info.clock_jumps:
            job.source_dir.mkdir(parents=True, exist_ok=True)
        info = prepare_source(info, copy)
    elif info.clock_jumps:
        if not copy.is_file():
            raise VsrError(
                f"{source}: the re-timed copy {copy} that extract wrote is missing",
                hint="resubmit the job (extract writes it again)",
            )
        info = probe(copy, job.spec.video_stream)  # the copy keeps every stream at its index
    return info.path, info


# ---- extract --------------------------------------------------------------------------------


def extract(job: JobDir) -> bool:
    """Probe, validate and plan; returns False (no-op) when the job is already past extraction.

    Raises:
        InputError: unreadable or zero-frame source, bad chunk size (the job is marked failed).
        VsrError: the job is failed (resume it first) or the manifest cannot be written.
    """
    from vsrflow.engine.pipeline import plan_conditioning
    from vsrflow.media.assemble import check_streams
    from vsrflow.media.keyframes import scan_frames
    from vsrflow.media.writer import hdr_warnings
    from vsrflow.workflow.job.plan import plan_chunks

    store = ManifestStore(job)
    manifest = store.create()
    if manifest.state in (JobState.UPSCALING, JobState.ENCODING, JobState.DONE):
        log.info("job %s: already extracted (%s); nothing to do", job.job_id, manifest.state)
        return False
    if manifest.state is JobState.FAILED:
        raise VsrError(f"job {job.job_id} failed: {manifest.reason}", hint="resubmit it to resume")
    store.set_state(JobState.EXTRACTING)
    try:
        spec = job.spec
        source, info = _probe_source(job, retime=True)
        # The streams the final mux needs, as at submission (a job extracted by hand checks here).
        check_streams(
            info, local_path(spec.destination, "destination"), video_stream=spec.video_stream, warn=False
        )
        table = scan_frames(source, spec.video_stream)
        if table.frame_count != info.frame_count:
            raise InputError(
                f"{source}: the probe counted {info.frame_count} frames, the keyframe scan "
                f"{table.frame_count}",
                hint="remux the source (ffmpeg -i in -c copy out.mkv) and resubmit",
            )
        # Scan type and conditioning are decided once, here, exactly as the single pass decides
        # them; the chunks are planned on the conditioned timeline (what the model sees).
        # --crop auto is detected here, once for the whole source; the plan records the rectangle.
        conditioning = plan_conditioning(source, info, spec.deinterlace, spec.scan, spec.prefilter)
        for note in hdr_warnings(info, spec.encoder.codec):  # once per job, as upscale says it
            log.warning("%s", note)
        planned = conditioning.output_info(info)
        chunks = plan_chunks(
            planned,
            conditioning.output_keyframes(table.keyframes),
            target_frames=spec.chunk_frames,
            target_seconds=spec.chunk_seconds,
            max_chunks=spec.max_array_size,
            frame_pts=conditioning.output_pts(info, table.pts),
            multiple=conditioning.cut_multiple,
        )
        # The plan is a function of the source and spec; a different one means the source changed,
        # so the old chunk records (and outputs) no longer apply.
        store.set_plan(
            planned.frame_count,
            planned.time_base,
            chunks,
            replace_plan=True,
            conditioning=conditioning.to_text(),
        )
        store.set_state(JobState.UPSCALING)
    except BaseException as exc:
        _fail_job(store, f"extract: {_reason(exc)}")
        raise
    log.info("job %s: %d frames in %d chunks", job.job_id, planned.frame_count, len(chunks))
    return True


def _conditioning(job: JobDir) -> Any:
    """The job's :class:`~vsrflow.media.condition.Conditioning`, as extract recorded it in the plan."""
    from vsrflow.media.condition import Conditioning

    plan = ManifestStore(job).load().plan
    return Conditioning.from_text(plan.conditioning) if plan is not None else Conditioning()


# ---- upscale-chunk --------------------------------------------------------------------------


#: Produces one chunk's output file (atomically, at the given path) and returns its stats (JSON-able).
#: Arguments: the job, the chunk (:class:`vsrflow.workflow.job.plan.Chunk`), the output path. The
#: model endpoint client is one (wired in by the CLI: workflow never imports serving).
ChunkRunner = Callable[[JobDir, Any, Path], dict[str, Any]]


def upscale_chunk(
    job: JobDir,
    index: int,
    settings: Settings,
    cache: UpscalerCache | None = None,
    runner: ChunkRunner | None = None,
) -> bool:
    """Upscale chunk ``index``; returns False when it was already done and verified (resume).

    ``runner`` produces the chunk output instead of the in-process :func:`run_chunk` (the manifest,
    checksum and failure records stay here either way). On any error the chunk is marked failed
    with the reason and the error is re-raised.
    """
    store = ManifestStore(job)
    manifest = store.load()
    output = job.chunk_output_path(index)
    if manifest.plan is None or not 0 <= index < manifest.chunk_count:
        raise InputError(
            f"job {job.job_id}: no chunk {index} (the plan has {manifest.chunk_count})",
            hint="run extract first, and use an index from the plan",
        )
    if manifest.state in (JobState.ENCODING, JobState.DONE):
        log.info("job %s: %s; chunk %d has nothing to do", job.job_id, manifest.state, index)
        return False
    if manifest.state is not JobState.UPSCALING:
        raise VsrError(
            f"job {job.job_id} is {manifest.status_text}; chunks run while upscaling",
            hint="run extract first" if manifest.state is not JobState.FAILED else "resubmit it to resume",
        )
    record = store.record(index)
    if record.state is ChunkState.DONE:
        if store.verify_chunk(index, output):
            log.info("job %s: chunk %d already done (checksum verified); skipped", job.job_id, index)
            return False
        log.warning("job %s: chunk %d output missing or changed; redoing it", job.job_id, index)
        store.reset_chunk(index)
    chunk = manifest.plan.chunks[index]
    store.start_chunk(index)
    guard: GuardReport | None
    try:
        if runner is None:
            guard = _run_chunk(job, chunk, output, settings, cache or UpscalerCache(settings)).guard
        else:
            stats = runner(job, chunk, output)
            guard = GuardReport.from_json(stats["guard"]) if stats.get("guard") is not None else None
        store.finish_chunk(index, checksum=sha256_file(output), guard=guard)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            output.unlink(missing_ok=True)
        try:
            store.fail_chunk(index, _reason(exc))
        except Exception:
            log.debug("could not record the chunk failure", exc_info=True)
        raise
    log.info("job %s: chunk %d done (%d frames)", job.job_id, index, chunk.frames)
    return True


def run_chunk(job: JobDir, chunk: Any, output: Path, settings: Settings, cache: UpscalerCache) -> ChunkResult:
    """The in-process chunk runner: decode, upscale and encode ``chunk`` into ``output`` (atomic).

    Returns the frames actually written (the writer's count, not the plan's) and the sanity
    guard's counts for the chunk. Public so a model endpoint produces exactly the in-process
    output; no manifest updates here.
    """
    return _run_chunk(job, chunk, output, settings, cache)


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's run: frames written and the guard's report (frames named by source index)."""

    frames: int
    guard: GuardReport


def quality_of(spec: JobSpec) -> QualityOptions:
    """The quality options a job's spec records (the same ones ``vsrflow upscale`` takes)."""
    return QualityOptions(
        on_artifact=spec.on_artifact, fallback=spec.fallback_model, colour_fix=spec.colour_fix
    )


def _run_chunk(
    job: JobDir, chunk: Any, output: Path, settings: Settings, cache: UpscalerCache
) -> ChunkResult:
    import numpy as np

    from vsrflow.engine.pipeline import plan_output
    from vsrflow.engine.progress import ProgressDisplay
    from vsrflow.media.keyframes import scan_frames
    from vsrflow.media.writer import EncoderOptions, FrameWriter, pad_to
    from vsrflow.workflow.job.chunk_io import chunk_encoder_extra, decode_chunk, decode_conditioned_chunk

    spec = job.spec
    source, source_info = _probe_source(job)
    conditioning = _conditioning(job)
    info = conditioning.output_info(source_info)  # the video the model sees (the plan's timeline)
    upscaler = cache.get(spec.model, spec.scale, quality_of(spec))
    enc = spec.encoder
    options = EncoderOptions(
        codec=enc.codec,
        crf=enc.crf,
        preset=enc.preset,
        pix_fmt=enc.pix_fmt,
        extra=chunk_encoder_extra(enc.codec),
    )
    resize_to, enc_w, enc_h = plan_output(upscaler, info, options.resolved_pix_fmt(info))
    out_h, out_w = upscaler.output_size(info.height, info.width)
    pad = (enc_w, enc_h) if resize_to is None and (enc_w, enc_h) != (out_w, out_h) else None
    writer = FrameWriter(output, width=enc_w, height=enc_h, source=info, options=options)
    images: list[Any] = []
    pts: list[int] = []
    last_pts: list[int] = []
    # In a Slurm array task's log: a line every VSRFLOW_PROGRESS_INTERVAL s (frames, fps, ETA) of
    # this chunk. The local executor shows the whole job's progress instead (JobProgress).
    display = ProgressDisplay(
        f"job {job.job_id} chunk {chunk.index}",
        interval=settings.progress_interval,
        enabled=settings.in_slurm_job and not settings.quiet,
    )
    done = [0]

    def flush() -> None:
        out = upscaler.upscale_frames(np.stack(images), output_size=resize_to)
        for image, stamp in zip(out, pts, strict=True):
            writer.write(pad_to(image, *pad) if pad else image, stamp)  # type: ignore[arg-type]
        done[0] += len(images)
        display(done[0], chunk.end - chunk.start)
        last_pts[:] = pts[-1:]
        images.clear()
        pts.clear()

    try:
        writer.open()
        # A temporal model starts each chunk fresh, then warms up on earlier frames; the guard
        # numbers the chunk's frames from its first frame (on the conditioned timeline).
        upscaler.reset(first_frame=chunk.start)
        if conditioning.active:
            frames = decode_conditioned_chunk(
                source,
                source_info,
                conditioning,
                chunk,
                scan_frames(source, spec.video_stream).pts,
                warmup=upscaler.warmup_frames,
            )
        else:
            frames = decode_chunk(source, info, chunk, warmup=upscaler.warmup_frames)
        for frame in frames:
            if frame.index < chunk.start:
                upscaler.warm_up(frame.image[None])  # state only: this frame belongs to the previous chunk
                continue
            images.append(frame.image)
            pts.append(frame.pts)
            if len(images) >= upscaler.batch:
                flush()
        if images:
            flush()
        if not last_pts:
            raise VsrError(f"chunk {chunk.index}: no frames decoded")
        report = upscaler.check_artifacts()  # --on-artifact fail: the chunk fails naming its frames
        # The last frame lasts until the next chunk's first frame (the source end for the last chunk).
        writer.close(last_duration=chunk.end_pts - last_pts[0])
        display.close()
    except BaseException:
        writer.abort()
        raise
    if writer.frames_written != chunk.frames:
        output.unlink(missing_ok=True)
        raise VsrError(f"chunk {chunk.index}: wrote {writer.frames_written} frames, planned {chunk.frames}")
    return ChunkResult(frames=int(writer.frames_written), guard=report)


# ---- encode ---------------------------------------------------------------------------------


def encode(job: JobDir, settings: Settings) -> bool:
    """Concatenate the chunks and assemble the destination; False (no-op) when the job is done.

    Raises:
        VsrError: chunks not done (names them; the job state is left as it is), or the job
            failed; concatenation/mux/validation errors (the job is then marked failed).
    """
    from vsrflow.media.assemble import assemble_streamed, check_streams
    from vsrflow.media.probe import probe
    from vsrflow.media.writer import pts_offset
    from vsrflow.workflow.job.chunk_io import stream_chunks

    store = ManifestStore(job)
    manifest = store.load()
    if manifest.state is JobState.DONE:
        log.info("job %s: already done; nothing to encode", job.job_id)
        return False
    if manifest.state not in (JobState.UPSCALING, JobState.ENCODING) or manifest.plan is None:
        raise VsrError(
            f"job {job.job_id} is {manifest.status_text}; encode needs every chunk upscaled",
            hint="run extract and the chunks first" if manifest.state is not JobState.FAILED else "resubmit",
        )
    missing = [
        r.index
        for r in manifest.records
        if r.state is not ChunkState.DONE or not store.verify_chunk(r.index, job.chunk_output_path(r.index))
    ]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise VsrError(
            f"job {job.job_id}: {len(missing)} of {manifest.chunk_count} chunks are not done "
            f"(or their output is missing/changed): {shown}",
            hint="rerun those chunks (`vsrflow job upscale-chunk JOB_DIR --index I`)",
        )
    store.set_state(JobState.ENCODING)
    try:
        spec = job.spec
        _, source_info = _probe_source(job)
        conditioning = _conditioning(job)
        info = conditioning.output_info(source_info)
        destination = local_path(spec.destination, "destination")
        plan = manifest.plan
        pieces = [(c, job.chunk_output_path(c.index)) for c in plan.chunks]
        written: list[int] = []

        def feed(pipe: Any) -> None:
            written.append(stream_chunks(pieces, pipe, plan.time_base, pts_offset(info)))
            if written[0] != info.frame_count:
                raise VsrError(
                    f"job {job.job_id}: concatenated {written[0]} frames, the source has {info.frame_count}"
                )

        # The chunks are streamed straight into the final mux (no concatenated copy on scratch):
        # codec and colour tags of the joined stream are those of chunk 0 (remux_chunks checks the rest).
        assemble_streamed(
            feed,
            probe(pieces[0][1]),
            info,
            destination,
            expected_frames=info.frame_count,
            ffmpeg=settings.ffmpeg,
            # Submission announced and proved the plan (trial mux); here it is only re-made.
            streams=check_streams(info, destination, video_stream=spec.video_stream, warn=False, trial=False),
        )
        _write_provenance(destination, spec, manifest.guard, info.frame_count, source_info, conditioning)
        store.set_state(JobState.DONE)
    except BaseException as exc:
        _fail_job(store, f"encode: {_reason(exc)}")
        raise
    log.info("job %s: wrote %s", job.job_id, destination)
    return True


def _write_provenance(
    destination: Path,
    spec: JobSpec,
    guard: GuardReport | None,
    frames: int,
    source: VideoInfo,
    conditioning: Any,
) -> None:
    """The same provenance sidecar ``vsrflow upscale`` writes, from the spec and the chunks' guard counts.

    A job records no preset (it stores the model the preset resolved to at submission).
    """
    from vsrflow.media.sidecar import Provenance, write_sidecar

    is_path = Path(spec.model).is_absolute()  # a weight file outside the registry has no id
    write_sidecar(
        destination,
        Provenance(
            model=spec.model,
            model_id=None if is_path else spec.model,
            preset=None,
            scale=float(spec.scale),
            colour_fix=spec.colour_fix,
            on_artifact=spec.on_artifact,
            guard=(guard or GuardReport(policy=spec.on_artifact)).to_json(),
            input=spec.source,
            frames=frames,
            damage=None if source.damage is None else source.damage.to_json(),
            conditioning=conditioning.to_json(),
        ),
    )


# ---- finalize -------------------------------------------------------------------------------


def finalize(job: JobDir, *, cause: str | None = None) -> str:
    """Record the failure of an unfinished job, or clean the scratch of a finished one.

    ``cause`` is what the executor knows of why the chain stopped (on Slurm: the first job that
    ended TIMEOUT, DEADLINE, NODE_FAIL, OUT_OF_MEMORY..., see
    :func:`vsrflow.workflow.job.slurm.chain_cause`); it is added to the failure reason.
    Returns the job's status text afterwards.
    """
    store = ManifestStore(job)
    if not store.exists():
        store.create()
    manifest = store.load()
    if manifest.state is JobState.DONE:
        for record in manifest.records:
            job.chunk_output_path(record.index).unlink(missing_ok=True)
        for tmp in job.chunks_dir.glob(".*.partial*"):
            tmp.unlink(missing_ok=True)
        for copy in job.source_dir.glob("retimed.*"):  # a re-timed source copy (extract)
            copy.unlink(missing_ok=True)
        return store.load().status_text
    # Finalize runs after every chunk task has ended (Slurm afterany; the local pool has joined), so
    # a chunk still "running" lost its process (kill -9, OOM killer, node failure, time limit)
    # before it could record anything: say so on the chunk, where `vsrflow status` shows it.
    for record in manifest.records:
        if record.state is ChunkState.RUNNING:
            store.fail_chunk(
                record.index,
                "task ended without recording a result (killed, out of memory, node failure or "
                f"time limit); see {job.logs_dir}",
            )
    manifest = store.load()
    if manifest.state is not JobState.FAILED:
        failed = [r for r in manifest.records if r.state is ChunkState.FAILED]
        if failed:
            first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            reason = f"chunk {first.index}: {first.error}{more}"
        elif manifest.plan is not None and manifest.done_count < manifest.chunk_count:
            pending = [r.index for r in manifest.records if r.state is not ChunkState.DONE]
            reason = f"stopped while {manifest.state}: chunks not done: {', '.join(map(str, pending[:20]))}"
        else:
            reason = f"stopped while {manifest.state}"
        if cause:
            reason = f"{reason}; {cause}; see {job.logs_dir}"
        store.set_state(JobState.FAILED, reason=reason)
    return store.load().status_text
