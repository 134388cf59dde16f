"""The job list of the page, from the same records the CLI reads, and the local job runner.

* :class:`LocalJobs` (``--local``): the job directories under the jobs root (``spec.json`` and the
  manifest, :class:`~vsrflow.workflow.job.manifest.ManifestStore`, exactly what ``vsrflow status
  DIR`` prints) and a :class:`LocalRunner` that runs them one after another with the local
  executor (:func:`vsrflow.workflow.job.local.run_local`, what ``vsrflow submit`` runs).
* :class:`S3Jobs` (``--aws`` and ``--local-stack``): ``jobs/<id>/status.json`` in the bucket
  (:func:`vsrflow.aws.jobrecords.list_statuses`, what ``vsrflow status ID`` reads); the job
  itself is started by the bucket's upload event, as for any other upload.

A job view is a JSON object: ``id``, ``name``, ``state`` (a :class:`JobState` value), ``text``
(the one-line status), ``reason``, ``done_chunks``/``total_chunks``, ``fps`` (frames per second
of the finished chunks), ``eta_s`` (seconds left, from that rate), ``model``, ``scale``,
``updated`` (unix seconds) and ``has_result``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError, VsrError
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import ChunkState, ManifestStore
from vsrflow.workflow.job.state import JobState, status_text

log = logging.getLogger(__name__)

#: Jobs listed at most (newest first).
LIST_LIMIT = 50
#: Name of the probe result stored beside a local upload.
PROBE_FILE = "probe.json"


class LocalRunner:
    """One worker thread running queued jobs in order with the local executor.

    One at a time: a chunked job already uses every core it is given. Errors that happen before
    the manifest can record them are kept in :attr:`errors` (job id -> one line).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.errors: dict[str, str] = {}
        #: Jobs queued or running (not submitted twice).
        self.active: set[str] = set()
        self._queue: queue.Queue[JobDir | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="vsrflow-ui-runner", daemon=True)
        self._thread.start()

    def submit(self, job: JobDir) -> None:
        self.errors.pop(job.job_id, None)
        self.active.add(job.job_id)
        self._queue.put(job)

    def stop(self) -> None:
        self._queue.put(None)

    def _work(self) -> None:
        from vsrflow.workflow.job.local import run_local

        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                status = run_local(job, self.settings)
                log.info("job %s: %s", job.job_id, status)
            except VsrError as exc:
                self.errors[job.job_id] = str(exc)
                log.warning("job %s failed: %s", job.job_id, exc)
            except Exception as exc:  # an internal bug: shown on the page, logged with its traceback
                self.errors[job.job_id] = f"internal error: {type(exc).__name__}: {exc}"
                log.exception("job %s failed", job.job_id)
            finally:
                self.active.discard(job.job_id)


def read_probe(source: Path) -> dict[str, Any] | None:
    """The probe summary stored beside an upload (None for a job from elsewhere)."""
    try:
        data: dict[str, Any] = json.loads((source.parent / PROBE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


class LocalJobs:
    """Jobs under ``root`` (see the module docstring)."""

    mode = "local"

    def __init__(self, root: Path, runner: LocalRunner | None) -> None:
        self.root = root
        self.runner = runner

    def job(self, job_id: str) -> JobDir:
        return JobDir.open(self.root, job_id)

    def views(self) -> list[dict[str, Any]]:
        dirs = [p for p in self.root.iterdir() if (p / "spec.json").is_file()] if self.root.is_dir() else []
        dirs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        out = []
        for path in dirs[:LIST_LIMIT]:
            try:
                out.append(self.view(path.name))
            except (InputError, ValueError) as err:  # a foreign or damaged directory: listed, not fatal
                out.append({"id": path.name, "name": path.name, "state": "failed", "text": str(err)})
        return out

    def view(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id)
        spec = job.spec
        store = ManifestStore(job)
        state, reason, done, total, fps, eta = JobState.QUEUED, None, None, None, None, None
        updated = job.spec_path.stat().st_mtime
        if store.exists():
            manifest = store.load()
            state, reason = manifest.state, manifest.reason
            updated = max(updated, job.manifest_path.stat().st_mtime)
            if manifest.plan is not None:
                done, total = manifest.done_count, manifest.chunk_count
                fps, eta = manifest.throughput()
        error = self.runner.errors.get(job_id) if self.runner else None
        if error and state not in (JobState.FAILED, JobState.DONE):
            state, reason = JobState.FAILED, error
        result = Path(spec.destination)
        has_result = state is JobState.DONE and result.is_file()
        text = status_text(
            state,
            reason=reason,
            done_chunks=done,
            total_chunks=total,
            output=result.name if has_result else None,
        )
        return {
            "id": job_id,
            "name": Path(spec.source).name,
            "state": state.value,
            "text": text,
            "reason": reason,
            "done_chunks": done,
            "total_chunks": total,
            "fps": fps,
            "eta_s": eta,
            "model": spec.model,
            "scale": spec.scale,
            "updated": updated,
            "has_result": has_result,
            "result_name": result.name,
        }

    def source_location(self, job_id: str) -> str:
        return self.job(job_id).spec.source

    def interrupted(self, uploads_dir: Path) -> list[JobDir]:
        """Jobs of this page's uploads that were queued or running when the server stopped."""
        from vsrflow.workflow.job.state import ACTIVE_JOB_STATES

        out = []
        root = uploads_dir.resolve()
        for path in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            try:
                job = JobDir.open(self.root, path.name)
                if not Path(job.spec.source).is_relative_to(root):
                    continue  # a CLI job: its own process runs it
                store = ManifestStore(job)
                state = store.load().state if store.exists() else JobState.QUEUED
            except (InputError, VsrError, ValueError):
                continue
            if state in ACTIVE_JOB_STATES:
                out.append(job)
        return out

    def result_location(self, job_id: str) -> str | None:
        path = Path(self.job(job_id).spec.destination)
        return str(path) if path.is_file() else None

    def measured_mflops(self, model: str) -> float | None:
        """Throughput (MFLOP/s) finished jobs of ``model`` achieved here (None: none finished)."""
        from vsrflow.bench.flops import MFLOP_PER_PX

        cost = MFLOP_PER_PX.get(model)
        if cost is None or not self.root.is_dir():
            return None
        work = seconds = 0.0
        for path in self.root.iterdir():
            try:
                job = JobDir.open(self.root, path.name)
                if job.spec.model != model:
                    continue
                probe = read_probe(Path(job.spec.source))
                manifest = ManifestStore(job).load() if ManifestStore(job).exists() else None
            except (InputError, VsrError, ValueError):
                continue
            if probe is None or manifest is None:
                continue
            for record in manifest.records:
                if record.state is ChunkState.DONE and record.seconds and record.fps:
                    work += cost * probe["width"] * probe["height"] * record.fps * record.seconds
                    seconds += record.seconds
        return work / seconds if seconds > 0 else None


class S3Jobs:
    """Jobs of the event path in ``bucket`` (see the module docstring)."""

    mode = "aws"

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        # job id -> (LastModified, status): a refresh costs one LIST plus a GET per changed job.
        self._seen: dict[str, tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def _status(self, job_id: str) -> Any:
        from vsrflow.aws.jobrecords import read_status

        status = read_status(self.s3, self.bucket, job_id)
        if status is None:
            raise InputError(
                f"job {job_id}: no status in s3://{self.bucket}/jobs/{job_id}/", hint="check the id"
            )
        return status

    def views(self) -> list[dict[str, Any]]:
        from vsrflow.aws.jobrecords import list_status_objects, read_status

        listed = list_status_objects(self.s3, self.bucket)[:LIST_LIMIT]
        out = []
        with self._lock:
            for job_id, modified in listed:
                known = self._seen.get(job_id)
                if known is None or known[0] != modified:
                    try:
                        status = read_status(self.s3, self.bucket, job_id)
                    except InputError:
                        continue  # unreadable status: not listed (`vsrflow status ID` says why)
                    if status is None:
                        continue
                    known = (modified, status)
                    self._seen[job_id] = known
                out.append(self._to_view(known[1]))
        return out

    def view(self, job_id: str) -> dict[str, Any]:
        return self._to_view(self._status(job_id))

    def _to_view(self, status: Any) -> dict[str, Any]:
        source = status.source or ""
        try:
            updated = time.mktime(time.strptime(status.updated, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        except ValueError:
            updated = 0.0
        return {
            "id": status.job_id,
            "name": source.rpartition("/")[2] or status.job_id,
            "state": status.state.value,
            "text": status.text,
            "reason": status.reason,
            "done_chunks": status.done_chunks,
            "total_chunks": status.total_chunks,
            "fps": status.detail.get("fps"),
            "eta_s": status.detail.get("eta_s"),
            "model": status.detail.get("model"),
            "scale": status.detail.get("scale"),
            "updated": updated,
            "has_result": status.state is JobState.DONE and bool(status.output),
            "result_name": (status.output or "").rpartition("/")[2],
        }

    def _key(self, uri: str | None, what: str) -> str:
        prefix = f"s3://{self.bucket}/"
        if not uri or not uri.startswith(prefix):
            raise InputError(f"the job's {what} {uri!r} is not in s3://{self.bucket}/", hint="check the job")
        return uri[len(prefix) :]

    def source_location(self, job_id: str) -> str:
        from vsrflow.aws.presign import presigned_get

        return presigned_get(self.s3, self.bucket, self._key(self._status(job_id).source, "source"))

    def result_location(self, job_id: str, *, download: bool = False) -> str | None:
        from vsrflow.aws.presign import presigned_get

        status = self._status(job_id)
        if status.state is not JobState.DONE or not status.output:
            return None
        key = self._key(status.output, "output")
        return presigned_get(self.s3, self.bucket, key, filename=key.rpartition("/")[2] if download else None)
