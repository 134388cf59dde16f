"""The head-node side of the event path: stage an upload as a job, mirror its status, deliver it.

``vsrflow submit --job-id ID`` (the command the trigger sends) calls :func:`prepare_job`: read
``jobs/<ID>/request.json``, check it is exactly what the trigger derives from the upload it names
(:func:`vsrflow.aws.uploads.verify_request`: configured bucket, upload prefixes, preset, scale,
output key, job id; a request that is not fails the job and nothing is created or downloaded),
create ``<jobs root>/<ID>`` with a :class:`JobSpec` whose source is the
upload downloaded to ``<job>/source/input<ext>`` and whose destination is ``<job>/output/
output<ext>`` (local names: nothing of the key reaches a path or a shell), plus a
:class:`DeliverySpec` naming ``outputs/<preset>/<stem>_x<scale>.<ext>``. The CLI then runs the
chain (Slurm or local).

Every ``vsrflow job <stage>`` of such a job ends with :meth:`S3Delivery.after_stage` (wired by
the CLI): the manifest is mirrored to ``status.json``; when the manifest is done (after encode, or
finalize retrying a failed delivery) the output is uploaded (multipart above the configured
threshold; metadata ``job-id``, ``source-bucket``, ``source-key`` (URL-encoded: S3 metadata is
ASCII), ``source-version``, ``model``, ``scale``) and the status becomes done, with one SNS notice.
A failed manifest becomes a failed status (+ SNS). ``<job>/delivery.json`` records a finished
delivery so it happens once.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vsrflow.aws.clients import AwsClients
from vsrflow.aws.errors import error_code, is_not_found, is_transient, translate
from vsrflow.aws.jobrecords import JobRequest, JobStatus, check_job_id, read_request, read_status, request_key
from vsrflow.aws.status import mark_failed, publish, status_from_manifest
from vsrflow.aws.uploads import verify_request
from vsrflow.config import Settings
from vsrflow.errors import InputError, VsrError
from vsrflow.formats import output_suffix_for, suffix_of
from vsrflow.workflow.job.layout import JobDir, read_json, write_json_atomic
from vsrflow.workflow.job.manifest import JobState, ManifestStore
from vsrflow.workflow.job.spec import DeliverySpec, JobSpec

log = logging.getLogger(__name__)

DELIVERY_RECORD = "delivery.json"
#: Part size of multipart uploads and downloads (S3 allows 5 MiB .. 5 GiB, at most 10000 parts).
PART_BYTES = 64 * 1024 * 1024

#: (preset, scale) -> model id; the CLI passes the registry's resolver (this layer stays torch-free).
ModelResolver = Callable[[str, float], str]


def jobs_root(settings: Settings) -> Path:
    """Root of the job directories on shared storage (``VSRFLOW_AWS_JOBS_ROOT`` or <cache>/jobs)."""
    return (settings.aws.jobs_root or settings.cache_dir / "jobs").expanduser().resolve()


def require_bucket(settings: Settings) -> str:
    if not settings.aws.bucket:
        raise InputError("no bucket configured", hint="set VSRFLOW_AWS_BUCKET on the head node")
    return settings.aws.bucket


@dataclass(frozen=True)
class PreparedJob:
    """A staged event-path job: ``fresh`` is False when it was already submitted (nothing to run).

    ``deliver`` is True when the chain finished (manifest done) but the output never reached S3
    (no delivery record): the caller delivers it directly instead of running anything.
    """

    job: JobDir
    request: JobRequest
    spec: JobSpec
    fresh: bool
    deliver: bool = False


def _done_undelivered(job: JobDir) -> bool:
    """True when the manifest of ``job`` is done but its delivery record is missing."""
    store = ManifestStore(job)
    return (
        store.exists() and store.load().state is JobState.DONE and not (job.path / DELIVERY_RECORD).is_file()
    )


def _already_submitted(job: JobDir) -> bool:
    """True when the chain of ``job`` was started before and has not failed (a repeated command)."""
    store = ManifestStore(job)
    if store.exists():
        return store.load().state is not JobState.FAILED
    return (job.logs_dir / "slurm.json").exists()


def prepare_job(
    job_id: str, settings: Settings, clients: AwsClients, *, resolve_model: ModelResolver
) -> PreparedJob:
    """Read the request of ``job_id``, create its job directory and download the source.

    Idempotent: a job directory that exists keeps its spec; a job already submitted (and not
    failed) is returned with ``fresh=False``; a done job whose delivery failed (no delivery
    record) with ``fresh=False, deliver=True``; a failed one is resumed (its manifest goes back to
    queued, done chunks are kept). Raises InputError (bad request, missing upload) or
    TransientError/VsrError (S3 or storage trouble).
    """
    check_job_id(job_id)
    bucket = require_bucket(settings)
    request = read_request(clients.s3, bucket, job_id)
    if request.job_id != job_id:
        raise InputError(f"request of job {job_id} names job {request.job_id}", hint="recreate the job")
    # Before anything is created, read or run: cluster nodes can reach jobs/, so the request is
    # derived again from the upload it names, with this node's settings (the trigger's rules).
    verify_request(settings.aws, request, f"s3://{bucket}/{request_key(job_id)}")
    root = jobs_root(settings)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(
            f"{root}: cannot create the jobs root: {err.strerror}", hint="set VSRFLOW_AWS_JOBS_ROOT"
        ) from err
    job = JobDir(root, job_id)
    if job.spec_path.is_file():
        spec = job.spec
        if _done_undelivered(job):  # a failed delivery: resumable without rerunning the chain
            return PreparedJob(job, request, spec, fresh=False, deliver=True)
        if _already_submitted(job):
            return PreparedJob(job, request, spec, fresh=False)
    else:
        in_ext = suffix_of(request.key) if suffix_of(request.key) in settings.aws.suffixes else ".bin"
        out_ext = output_suffix_for(request.output_key)
        spec = JobSpec(
            source=str(job.source_dir / f"input{in_ext}"),
            destination=str(job.path / "output" / f"output{out_ext}"),
            model=resolve_model(request.preset, request.scale),
            scale=request.scale,
            chunk_seconds=settings.aws.chunk_seconds,
            delivery=DeliverySpec(
                bucket=bucket,
                key=request.output_key,
                source_bucket=request.bucket,
                source_key=request.key,
                source_version=request.version_id,
            ),
        )
        job = JobDir.create(root, spec, job_id)
    store = ManifestStore(job)
    if store.exists() and store.load().state is JobState.FAILED:
        log.info("job %s failed before; resuming", job_id, extra={"job_id": job_id})
        store.resume()
    Path(spec.destination).parent.mkdir(parents=True, exist_ok=True)
    check_upload_current(clients, request)
    download_source(clients, request, Path(spec.source))
    return PreparedJob(job, request, spec, fresh=True)


def check_upload_current(clients: AwsClients, request: JobRequest) -> None:
    """InputError when the upload was deleted since the event (a delete marker, or no object).

    Reading by version id alone would still find the old bytes of a deleted key, and upscale a
    video the user took back; the key's current state is what counts.
    """
    try:
        clients.s3.head_object(Bucket=request.bucket, Key=request.key)
    except Exception as exc:
        if not is_not_found(exc):
            raise translate(
                exc,
                f"check {request.source_uri}",
                hint="check the head node's S3 access",
                transient_hint="resubmit later",
            ) from exc
        headers = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPHeaders", {})
        marker = str(headers.get("x-amz-delete-marker", "")).lower() == "true"
        raise InputError(
            f"the upload was deleted ({request.source_uri}"
            + (" has a delete marker)" if marker else " no longer exists)"),
            hint="upload it again to upscale it",
        ) from None


def download_source(clients: AwsClients, request: JobRequest, path: Path) -> None:
    """Download the upload (its exact version) to ``path`` atomically; skipped when already there."""
    from boto3.s3.transfer import TransferConfig

    if path.is_file() and path.stat().st_size == request.size:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    extra = {"VersionId": request.version_id} if request.version_id else None
    config = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=4)
    try:
        clients.s3.download_file(request.bucket, request.key, str(tmp), ExtraArgs=extra, Config=config)
        size = tmp.stat().st_size
        if size != request.size:
            raise InputError(
                f"{request.source_uri}: downloaded {size} bytes, the upload had {request.size}",
                hint="the object changed; upload it again",
            )
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, VsrError):
            raise
        if is_not_found(exc):
            raise InputError(
                f"{request.source_uri}: the upload no longer exists", hint="upload it again"
            ) from exc
        if isinstance(exc, OSError) and not is_transient(exc):
            raise VsrError(
                f"{path}: cannot write the source: {exc}", hint="check the shared storage"
            ) from exc
        raise translate(
            exc,
            f"download {request.source_uri}",
            hint="check the head node's S3 access",
            transient_hint="resubmit later",
        ) from exc


#: S3's limit on user-defined metadata: keys plus values, in bytes (as sent, ``x-amz-meta-`` excluded).
MAX_METADATA_BYTES = 2048


def upload_metadata(job_id: str, spec: JobSpec) -> dict[str, str]:
    """Object metadata of a delivered output (ASCII values: the source key is URL-encoded).

    Always within :data:`MAX_METADATA_BYTES`: a URL-encoded key can be 3x its 1024 bytes, so a
    source key that does not fit is cut (at a whole escape) and ``source-key-truncated: true``
    says so; the full key is in the job's request record, found by ``job-id``.
    """
    delivery = spec.delivery
    assert delivery is not None
    meta = {
        "job-id": job_id,
        "source-bucket": delivery.source_bucket,
        "source-version": delivery.source_version or "",
        "model": spec.model,
        "scale": f"{spec.scale:g}",
    }
    key = quote(delivery.source_key, safe="/")
    flag = ("source-key-truncated", "true")
    used = sum(len(k) + len(v) for k, v in meta.items()) + len("source-key")
    if used + len(key) > MAX_METADATA_BYTES:
        room = MAX_METADATA_BYTES - used - len(flag[0]) - len(flag[1])
        # The longest prefix of the key, in characters, whose encoding fits: never half a
        # character or half an escape (so it still decodes to a prefix of the real key).
        lo, hi = 0, len(delivery.source_key)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(quote(delivery.source_key[:mid], safe="/")) <= room:
                lo = mid
            else:
                hi = mid - 1
        key = quote(delivery.source_key[:lo], safe="/")
        meta[flag[0]] = flag[1]
    meta["source-key"] = key
    return meta


class S3Delivery:
    """Status mirroring and delivery of one event-path job (see the module docstring)."""

    def __init__(
        self, job: JobDir, spec: JobSpec, settings: Settings, clients: AwsClients | None = None
    ) -> None:
        if spec.delivery is None:
            raise ValueError("the job has no S3 delivery target")
        self.job = job
        self.spec = spec
        self.delivery: DeliverySpec = spec.delivery
        self.settings = settings
        self.clients = clients or AwsClients(settings.aws)

    @property
    def source_uri(self) -> str:
        return f"s3://{self.delivery.source_bucket}/{self.delivery.source_key}"

    @property
    def output_uri(self) -> str:
        return f"s3://{self.delivery.bucket}/{self.delivery.key}"

    @property
    def record_path(self) -> Path:
        return self.job.path / DELIVERY_RECORD

    def delivered(self) -> bool:
        return self.record_path.is_file()

    def publish(self, status: JobStatus, *, replace_terminal: bool = False) -> bool:
        return publish(
            self.clients, self.settings.aws, self.delivery.bucket, status, replace_terminal=replace_terminal
        )

    def queued(self, **detail: Any) -> None:
        """Status queued (a new or resumed job), replacing an earlier failure."""
        status = JobStatus(
            job_id=self.job.job_id, state=JobState.QUEUED, source=self.source_uri, detail=detail
        )
        self.publish(status, replace_terminal=True)

    def public_text(self, text: str) -> str:
        """``text`` with the staged copy's head-node path replaced by the S3 URI the user uploaded to."""
        return text.replace(self.spec.source, self.source_uri) if self.spec.source else text

    def fail(self, reason: str) -> None:
        reason = self.public_text(reason)
        mark_failed(self.clients, self.settings.aws, self.delivery.bucket, self.job.job_id, reason)

    def before_stage(self, stage: str) -> None:
        """Publish ``extracting`` before extract and ``encoding`` before encode (best effort).

        Only when the job is where that stage starts (a rerun of a finished stage changes nothing).
        """
        starts = {
            "extract": (JobState.EXTRACTING, (JobState.QUEUED, JobState.EXTRACTING)),
            "encode": (JobState.ENCODING, (JobState.UPSCALING, JobState.ENCODING)),
        }
        if stage not in starts:
            return
        state, from_states = starts[stage]
        try:
            store = ManifestStore(self.job)
            manifest = store.load() if store.exists() else None
            current = manifest.state if manifest else JobState.QUEUED
            if current not in from_states:
                return
            planned = manifest is not None and manifest.plan is not None
            self.publish(
                JobStatus(
                    job_id=self.job.job_id,
                    state=state,
                    done_chunks=manifest.done_count if manifest and planned else None,
                    total_chunks=manifest.chunk_count if manifest and planned else None,
                    source=self.source_uri,
                )
            )
        except VsrError as exc:  # informational: the stage itself decides the outcome
            log.warning(
                "job %s: cannot publish %s: %s",
                self.job.job_id,
                state,
                exc,
                extra={"job_id": self.job.job_id},
            )

    def after_stage(self, stage: str, error: BaseException | None = None) -> None:
        """Mirror the manifest after ``stage``; deliver when it is done. Raises only for delivery."""
        store = ManifestStore(self.job)
        try:
            manifest = store.load() if store.exists() else None
        except VsrError as exc:
            manifest = None
            error = error or exc
        if manifest is None:
            if error is not None:
                self.fail(f"{stage}: {error}")
            return
        if manifest.state is JobState.DONE:
            if not self.delivered():
                self.deliver()
            return
        try:
            status = status_from_manifest(manifest, source=self.source_uri)
            if status.reason:
                status = replace(status, reason=self.public_text(status.reason))
            self.publish(status)
        except VsrError as exc:  # informational: the next stage mirrors again
            log.warning(
                "job %s: cannot mirror the status: %s",
                self.job.job_id,
                exc,
                extra={"job_id": self.job.job_id},
            )

    def newer_version(self) -> str | None:
        """The source key's current version id when it is not this job's (None: still newest).

        Only a versioned upload can be superseded; a key deleted since counts as not superseded
        (nothing newer exists, the finished work is kept).
        """
        if not self.delivery.source_version:
            return None
        try:
            head = self.clients.s3.head_object(
                Bucket=self.delivery.source_bucket, Key=self.delivery.source_key
            )
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise translate(exc, f"check the current version of {self.source_uri}") from exc
        current = head.get("VersionId")
        return str(current) if current and current != self.delivery.source_version else None

    def supersede(self, newer: str) -> None:
        """End the job ``superseded`` (+ SNS), record it, free the output: no upload."""
        reason = f"a newer version of {self.source_uri} was uploaded ({newer}); its job delivers"
        status = JobStatus(
            job_id=self.job.job_id, state=JobState.SUPERSEDED, reason=reason, source=self.source_uri
        )
        self.publish(status, replace_terminal=True)
        write_json_atomic(self.record_path, {"superseded_by": newer})
        Path(self.spec.destination).unlink(missing_ok=True)
        log.info("job %s: %s", self.job.job_id, reason, extra={"job_id": self.job.job_id})

    def deliver(self) -> str:
        """Upload the output, publish done (+ SNS), record the delivery; returns the output URI.

        Newest version wins: when the source key has a newer version than this job's, nothing is
        uploaded and the job ends ``superseded`` (:meth:`supersede`; returns ``""``), so a slow job
        of an old version never overwrites the output of the current one. On failure the status
        becomes failed with the reason (+ SNS) and the error is raised; a later finalize (or rerun
        of encode) retries, since the delivery record is not written.
        """
        from boto3.s3.transfer import TransferConfig

        newer = self.newer_version()
        if newer is not None:
            self.supersede(newer)
            return ""
        local = Path(self.spec.destination)
        threshold = self.settings.aws.multipart_threshold
        config = TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=max(threshold, 8 * 1024 * 1024),
            max_concurrency=4,
        )
        content_type = mimetypes.guess_type(self.delivery.key)[0] or "application/octet-stream"
        extra = {"Metadata": upload_metadata(self.job.job_id, self.spec), "ContentType": content_type}
        try:
            if not local.is_file():
                raise VsrError(f"{local}: the encoded output is missing", hint="rerun the encode stage")
            self.clients.s3.upload_file(
                str(local), self.delivery.bucket, self.delivery.key, ExtraArgs=extra, Config=config
            )
            head = self.clients.s3.head_object(Bucket=self.delivery.bucket, Key=self.delivery.key)
        except Exception as exc:
            reason = f"delivery to {self.output_uri}: {error_code(exc) or exc}"
            self.fail(reason)
            if isinstance(exc, VsrError):
                raise
            raise VsrError(reason, hint="check the bucket permissions; finalize retries the upload") from exc
        manifest = ManifestStore(self.job).load()
        done = JobStatus(
            job_id=self.job.job_id,
            state=JobState.DONE,
            done_chunks=manifest.done_count,
            total_chunks=manifest.chunk_count,
            source=self.source_uri,
            output=self.output_uri,
            detail={"etag": str(head.get("ETag", "")).strip('"'), "bytes": head.get("ContentLength")},
        )
        self.publish(done, replace_terminal=True)
        write_json_atomic(
            self.record_path,
            {"output": self.output_uri, "etag": done.detail["etag"], "bytes": done.detail["bytes"]},
        )
        local.unlink(missing_ok=True)  # delivered: free the shared storage
        log.info("job %s: delivered %s", self.job.job_id, self.output_uri, extra={"job_id": self.job.job_id})
        return self.output_uri


def delivery_for(job: JobDir, settings: Settings) -> S3Delivery | None:
    """The delivery of ``job`` when its spec carries an S3 target, else None."""
    spec = job.spec
    return S3Delivery(job, spec, settings) if spec.delivery is not None else None


def read_delivery_record(job: JobDir) -> dict[str, Any] | None:
    path = job.path / DELIVERY_RECORD
    return read_json(path, "delivery record") if path.is_file() else None


def remote_status(settings: Settings, job_id: str, clients: AwsClients | None = None) -> JobStatus | None:
    """``status.json`` of ``job_id`` from the configured bucket (None when there is none)."""
    bucket = require_bucket(settings)
    return read_status((clients or AwsClients(settings.aws)).s3, bucket, check_job_id(job_id))
