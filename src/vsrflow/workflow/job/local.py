"""Executors: who runs the stages of a chunked job. Only the local one lives here.

:func:`run_local` runs extract, every upscale-chunk and encode on this machine, then finalize
(which cleans the chunk outputs of a finished job, like the cluster's ``afterany`` finalize). A
failed job is resumed (its done chunks are kept and verified, only the rest is rerun). With
``workers > 1`` chunks run in that many child processes (each loads the model once); with the
default 1 they run in this process with one loaded model. On any failure finalize records the
reason in the manifest and the error is re-raised.

:class:`StageHooks` are what an event-path job adds around every stage (status mirroring and the
final delivery: :class:`vsrflow.aws.headnode.S3Delivery`); :func:`run_stage` is the one place
that calls them, for the local executor here and for a single Slurm stage (``vsrflow job``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol, TypeVar

from vsrflow.config import Settings
from vsrflow.engine.cache import UpscalerCache
from vsrflow.engine.progress import ProgressDisplay
from vsrflow.errors import InputError
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import ChunkState, JobState, ManifestStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class StageHooks(Protocol):
    """Called around each stage (``extract``, ``upscale-chunk`` per chunk, ``encode``, ``finalize``)."""

    def before_stage(self, stage: str) -> None: ...

    def after_stage(self, stage: str, error: BaseException | None = None) -> None:
        """After ``stage``: ``error`` is what it raised (None on success). May raise (a failed
        delivery is an error of the job); called with ``error`` set, its own errors are logged."""
        ...


def run_stage(name: str, call: Callable[[], T], hooks: StageHooks | None) -> T:
    """``call()`` between ``hooks.before_stage(name)`` and ``hooks.after_stage(name, error)``.

    The stage's own error is the one re-raised: a hook failing while reporting it is only logged.
    """
    if hooks is None:
        return call()
    hooks.before_stage(name)
    try:
        result = call()
    except BaseException as exc:
        try:
            hooks.after_stage(name, exc)
        except Exception:  # the stage's error is the one to report
            log.warning("%s: reporting the failure failed", name, exc_info=True)
        raise
    hooks.after_stage(name)
    return result


class JobProgress:
    """:class:`StageHooks` that show a local job as it runs: a log line per stage as it starts and
    ends, and the upscale progress in frames (a bar on a terminal, else a line with fps and ETA
    every ``interval`` seconds; see :class:`vsrflow.engine.progress.ProgressDisplay`), updated
    as each chunk finishes. ``inner`` hooks (the S3 delivery of an event-path job) run first and
    keep their contract (their errors propagate)."""

    def __init__(
        self, job: JobDir, *, interval: float, enabled: bool = True, inner: StageHooks | None = None
    ) -> None:
        self.job, self.inner = job, inner
        self.display = ProgressDisplay(f"job {job.job_id}", interval=interval, enabled=enabled)
        self._upscaling = False

    def before_stage(self, stage: str) -> None:
        if self.inner is not None:
            self.inner.before_stage(stage)
        if stage != "upscale-chunk":
            log.info("job %s: %s started", self.job.job_id, stage)
        elif not self._upscaling:
            self._upscaling = True
            log.info("job %s: upscale started", self.job.job_id)

    def after_stage(self, stage: str, error: BaseException | None = None) -> None:
        if self.inner is not None:
            self.inner.after_stage(stage, error)
        if error is not None:
            log.info("job %s: %s failed", self.job.job_id, stage)
            return
        manifest = ManifestStore(self.job).load()
        if stage == "extract" and manifest.plan is not None:
            log.info(
                "job %s: extract done: %d frames in %d chunks",
                self.job.job_id, manifest.plan.frame_count, manifest.chunk_count,
            )  # fmt: skip
        if stage in ("extract", "upscale-chunk") and manifest.plan is not None:
            done = {r.index for r in manifest.records if r.state is ChunkState.DONE}
            frames = sum(c.frames for i, c in enumerate(manifest.plan.chunks) if i in done)
            self.display(frames, manifest.plan.frame_count)
        elif stage != "upscale-chunk":
            if stage == "encode":
                self.display.close()
            log.info("job %s: %s done", self.job.job_id, stage)


def _chunk_worker(job_path: str, index: int, settings: Settings) -> bool:
    job = JobDir.at(Path(job_path))
    return stages.upscale_chunk(job, index, settings)


def run_local(
    job: JobDir,
    settings: Settings,
    *,
    workers: int = 1,
    hooks: StageHooks | None = None,
    runner: stages.ChunkRunner | None = None,
) -> str:
    """Run the whole job here; returns the final status text. Raises the first stage error.

    ``hooks`` wrap every stage (see :func:`run_stage`); ``runner`` produces each chunk instead of
    the in-process engine (a model endpoint client; only with ``workers == 1``).
    """
    if workers < 1:
        raise InputError(f"workers {workers} must be >= 1")
    if runner is not None and workers != 1:
        raise InputError("a chunk runner (model endpoint) takes workers=1", hint="drop --workers")
    store = ManifestStore(job)
    if store.exists() and store.load().state is JobState.FAILED:
        log.info("job %s failed before (%s); resuming", job.job_id, store.load().reason)
        store.resume()
    try:
        run_stage("extract", lambda: stages.extract(job), hooks)
        manifest = store.load()
        indices = list(range(manifest.chunk_count)) if manifest.state is JobState.UPSCALING else []
        if workers == 1 or len(indices) <= 1:
            cache = UpscalerCache(settings)
            for index in indices:
                chunk = partial(stages.upscale_chunk, job, index, settings, cache, runner=runner)
                run_stage("upscale-chunk", chunk, hooks)
        else:
            _chunks_in_pool(job, settings, indices, workers, hooks)
        run_stage("encode", lambda: stages.encode(job, settings), hooks)
    except BaseException:
        try:
            run_stage("finalize", lambda: stages.finalize(job), hooks)
        except Exception:
            log.debug("finalize failed", exc_info=True)
        raise
    return run_stage("finalize", lambda: stages.finalize(job), hooks)


def _chunks_in_pool(
    job: JobDir, settings: Settings, indices: list[int], workers: int, hooks: StageHooks | None
) -> None:
    """Every chunk in ``workers`` child processes; the hooks run here, once per finished chunk."""
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_chunk_worker, str(job.path), i, settings) for i in indices]
        errors = []
        for future in futures:
            try:
                run_stage("upscale-chunk", future.result, hooks)
            except Exception as exc:  # every chunk runs; the first error is raised
                errors.append(exc)
        if errors:
            raise errors[0]
