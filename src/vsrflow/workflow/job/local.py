"""Executors: who runs the stages of a chunked job. Only the local one lives here.

:func:`run_local` runs extract, every upscale-chunk and encode on this machine, then finalize
(which cleans the chunk outputs of a finished job, like the cluster's ``afterany`` finalize). A
failed job is resumed (its done chunks are kept and verified, only the rest is rerun). With
``workers > 1`` chunks run in that many child processes (each loads the model once); with the
default 1 they run in this process with one loaded model. On any failure finalize records the
reason in the manifest and the error is re-raised.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from vsrflow.config import Settings
from vsrflow.engine.cache import UpscalerCache
from vsrflow.errors import InputError
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import JobState, ManifestStore

log = logging.getLogger(__name__)


def _chunk_worker(job_path: str, index: int, settings: Settings) -> bool:
    job = stages.job_from_path(Path(job_path))
    return stages.upscale_chunk(job, index, settings)


def run_local(job: JobDir, settings: Settings, *, workers: int = 1) -> str:
    """Run the whole job here; returns the final status text. Raises the first stage error."""
    if workers < 1:
        raise InputError(f"workers {workers} must be >= 1")
    store = ManifestStore(job)
    if store.exists() and store.load().state is JobState.FAILED:
        log.info("job %s failed before (%s); resuming", job.job_id, store.load().reason)
        store.resume()
    try:
        stages.extract(job)
        manifest = store.load()
        indices = list(range(manifest.chunk_count)) if manifest.state is JobState.UPSCALING else []
        if workers == 1 or len(indices) <= 1:
            cache = UpscalerCache(settings)
            for index in indices:
                stages.upscale_chunk(job, index, settings, cache)
        else:
            ctx = get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_chunk_worker, str(job.path), i, settings) for i in indices]
                errors = []
                for future in futures:
                    try:
                        future.result()
                    except Exception as exc:  # every chunk runs; the first error is raised
                        errors.append(exc)
                if errors:
                    raise errors[0]
        stages.encode(job, settings)
    except BaseException:
        try:
            stages.finalize(job)
        except Exception:
            log.debug("finalize failed", exc_info=True)
        raise
    return stages.finalize(job)
