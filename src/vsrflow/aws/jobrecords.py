"""The job records of the event path in S3: ``jobs/<job_id>/request.json`` and ``status.json``.

``request.json`` is written once by the trigger: what to upscale (bucket, key, version, ETag,
size), how (preset, scale) and where the result goes (``output_key``). ``status.json`` is what a
media-ops user watches; states move ``queued -> extracting -> upscaling (k/N) -> encoding ->
done`` or to ``failed`` with a one-line reason (:class:`vsrflow.workflow.job.state.JobState`;
the status's ``text`` is :func:`~vsrflow.workflow.job.state.status_text`). A terminal status
(done/failed) is not overwritten by a non-terminal one unless the writer says so (a deliberate
resubmission), so a late writer (an array task finishing after the job failed) cannot hide the
outcome.

Both are JSON objects with ``schema_version`` 1; readers refuse unknown versions and missing
fields with an :class:`~vsrflow.errors.InputError` naming the object. Times are ISO-8601 UTC.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from vsrflow.aws.errors import is_not_found, is_precondition_failed, translate
from vsrflow.errors import InputError, TransientError, VsrError
from vsrflow.workflow.job.identity import check_job_id
from vsrflow.workflow.job.state import (
    REASON_JOB_STATES,
    TERMINAL_JOB_STATES,
    JobState,
    parse_job_state,
    status_text,
)

SCHEMA_VERSION = 1


def job_prefix(job_id: str) -> str:
    return f"jobs/{check_job_id(job_id)}/"


def request_key(job_id: str) -> str:
    return job_prefix(job_id) + "request.json"


def status_key(job_id: str) -> str:
    return job_prefix(job_id) + "status.json"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def scale_text(scale: float) -> str:
    """``2.0 -> '2'``, ``1.5 -> '1.5'`` (the ``_x<scale>`` of output names)."""
    return str(int(scale)) if float(scale).is_integer() else f"{scale:g}"


@dataclass(frozen=True)
class JobRequest:
    """``request.json``: one upload to upscale (written by the trigger, read by the head node).

    Attributes:
        job_id: 16 hex digits (:func:`compute_job_id`).
        bucket, key: the uploaded object (key decoded, exactly as stored).
        version_id: its version (None in an unversioned bucket); etag: its ETag without quotes.
        size: bytes. preset, scale: what to run. output_key: where the result goes (same bucket).
        created: when the trigger accepted it; event_time: the S3 event's time.
    """

    job_id: str
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int
    preset: str
    scale: float
    output_key: str
    created: str = field(default_factory=utc_now)
    event_time: str | None = None

    @property
    def source_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def output_uri(self) -> str:
        return f"s3://{self.bucket}/{self.output_key}"

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: object, where: str) -> JobRequest:
        obj = _fields(data, where, cls)
        try:
            request = cls(**obj)
            check_job_id(request.job_id)
            if not isinstance(request.size, int) or request.size < 0:
                raise ValueError(f"size {request.size!r}")
            if not isinstance(request.scale, int | float) or not 1 <= request.scale <= 8:
                raise ValueError(f"scale {request.scale!r}")
            for name in ("bucket", "key", "preset", "output_key"):
                if not isinstance(getattr(request, name), str) or not getattr(request, name):
                    raise ValueError(f"{name} is empty")
        except (TypeError, ValueError, InputError) as err:
            raise InputError(
                f"{where}: invalid request: {err}", hint="the trigger writes it; recreate the job"
            ) from None
        return replace(request, scale=float(request.scale))


@dataclass(frozen=True)
class JobStatus:
    """``status.json``: where a job is.

    Attributes:
        job_id: the job. state: a :class:`JobState` (its spelling is accepted and converted; any
            other value is a ValueError). reason: one line, set only when failed.
        done_chunks, total_chunks: upscaling progress (None before the chunk plan exists).
        source: ``s3://`` URI of the upload. output: ``s3://`` URI of the result (set when done).
        updated: when this status was written. detail: extra facts (SSM command id, head node, ...).
    """

    job_id: str
    state: JobState
    reason: str | None = None
    done_chunks: int | None = None
    total_chunks: int | None = None
    source: str | None = None
    output: str | None = None
    updated: str = field(default_factory=utc_now)
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_job_id(self.job_id)
        # JSON hands over the spelling; the dataclass keeps the member.
        object.__setattr__(self, "state", parse_job_state(self.state))
        if (self.state in REASON_JOB_STATES) != bool(self.reason):
            raise ValueError("reason is required for failed and superseded, and only for them")

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_JOB_STATES

    @property
    def text(self) -> str:
        """One line: ``queued``, ``upscaling 3/10``, ``failed: <reason>``, ``done: s3://...``."""
        return status_text(
            self.state,
            reason=self.reason,
            done_chunks=self.done_chunks,
            total_chunks=self.total_chunks,
            output=self.output,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            **asdict(self),
            "state": self.state.value,
            "text": self.text,
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> JobStatus:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "text"}
        obj = _fields(data, where, cls)
        try:
            return cls(**obj)
        except (TypeError, ValueError, InputError) as err:
            raise InputError(
                f"{where}: invalid status: {err}", hint="rewrite it or resubmit the job"
            ) from None


def _fields(data: object, where: str, cls: type) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object", hint="recreate the job")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise InputError(
            f"{where}: schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}",
            hint="use the vsrflow version that wrote it",
        )
    names = {f.name for f in fields(cls)}
    obj = {k: v for k, v in data.items() if k != "schema_version"}
    unknown = sorted(set(obj) - names)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}", hint="recreate the job")
    return obj


# ---- S3 storage ---------------------------------------------------------------------------------


def _put_json(
    s3: Any, bucket: str, key: str, data: dict[str, Any], *, expect_etag: str | bool | None = False
) -> bool:
    """Write ``data``; returns False when the precondition did not hold (nothing written).

    ``expect_etag``: False writes unconditionally; a string writes only over the object with that
    ETag (S3 ``If-Match``); None writes only when the object does not exist (``If-None-Match: *``).
    """
    body = (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    extra: dict[str, str] = {}
    if isinstance(expect_etag, str):
        extra["IfMatch"] = expect_etag
    elif expect_etag is None:
        extra["IfNoneMatch"] = "*"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", **extra)
    except Exception as exc:
        if extra and is_precondition_failed(exc):
            return False
        raise _storage_error(exc, f"write s3://{bucket}/{key}") from exc
    return True


def _get_json(s3: Any, bucket: str, key: str) -> Any | None:
    """The parsed object, or None when it does not exist."""
    return _get_json_etag(s3, bucket, key)[0]


def _get_json_etag(s3: Any, bucket: str, key: str) -> tuple[Any | None, str | None]:
    """(parsed object, its ETag), or (None, None) when it does not exist."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
        body = response["Body"].read()
    except Exception as exc:
        if is_not_found(exc):
            return None, None
        raise _storage_error(exc, f"read s3://{bucket}/{key}") from exc
    try:
        return json.loads(body), response.get("ETag")
    except ValueError as err:
        raise InputError(f"s3://{bucket}/{key}: not valid JSON: {err}", hint="rewrite or remove it") from None


def _storage_error(exc: BaseException, action: str) -> VsrError:
    return translate(exc, action, hint="check the bucket name and the IAM permissions")


def write_request(s3: Any, request: JobRequest) -> None:
    _put_json(s3, request.bucket, request_key(request.job_id), request.to_json())


def read_request(s3: Any, bucket: str, job_id: str) -> JobRequest:
    """The request of ``job_id``; InputError when it does not exist or is invalid."""
    key = request_key(job_id)
    data = _get_json(s3, bucket, key)
    if data is None:
        raise InputError(f"s3://{bucket}/{key} not found", hint="check the job id and the bucket")
    return JobRequest.from_json(data, f"s3://{bucket}/{key}")


def read_status(s3: Any, bucket: str, job_id: str) -> JobStatus | None:
    key = status_key(job_id)
    data = _get_json(s3, bucket, key)
    return None if data is None else JobStatus.from_json(data, f"s3://{bucket}/{key}")


#: Attempts of a conditional status write before giving up on a busy status (racing writers).
STATUS_WRITE_ATTEMPTS = 5


def write_status(
    s3: Any,
    bucket: str,
    status: JobStatus,
    *,
    replace_terminal: bool = False,
    only_over: Callable[[JobStatus], bool] | None = None,
) -> bool:
    """Write ``status``; returns False (nothing written) when the current status must be kept.

    The current status is kept when it is terminal (unless ``replace_terminal``: a resubmitted
    failed job going back to queued, a failed delivery of a done job) or when ``only_over`` says
    so for it. The write is conditional on the status read (S3 ``If-Match`` on its ETag, or
    ``If-None-Match`` when there was none), so a writer that raced in between is never
    overwritten blindly: the decision is made again on what it wrote.

    Raises:
        TransientError: the status kept changing under us for ``STATUS_WRITE_ATTEMPTS`` tries.
    """
    key = status_key(status.job_id)
    for _ in range(STATUS_WRITE_ATTEMPTS):
        try:
            data, etag = _get_json_etag(s3, bucket, key)
            current = None if data is None else JobStatus.from_json(data, f"s3://{bucket}/{key}")
        except InputError:
            # An unreadable status is replaced (conditionally on the unreadable object itself).
            current, etag = None, s3.head_object(Bucket=bucket, Key=key).get("ETag")
        if current is not None:
            if current.terminal and not replace_terminal:
                return False
            if only_over is not None and not only_over(current):
                return False
        if _put_json(s3, bucket, key, status.to_json(), expect_etag=etag):
            return True
    raise TransientError(
        f"s3://{bucket}/{key}: the status changed under every one of {STATUS_WRITE_ATTEMPTS} writes",
        hint="retry later",
    )


def list_status_objects(s3: Any, bucket: str) -> list[tuple[str, str]]:
    """``(job_id, last_modified)`` of every ``jobs/<id>/status.json``, newest first (one LIST per 1000)."""
    entries: list[tuple[str, str]] = []
    try:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix="jobs/"):
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                if key.endswith("/status.json") and key.count("/") == 2:
                    entries.append((key.split("/")[1], str(obj["LastModified"])))
    except Exception as exc:
        raise _storage_error(exc, f"list s3://{bucket}/jobs/") from exc
    return sorted(entries, key=lambda e: e[1], reverse=True)


def list_statuses(s3: Any, bucket: str, *, limit: int = 50) -> list[JobStatus]:
    """The ``status.json`` of the ``limit`` most recently updated jobs, newest first.

    An unreadable status (another schema version, a hand-edited object) is skipped, not fatal:
    the list is for people watching many jobs.
    """
    out: list[JobStatus] = []
    for job_id, _ in list_status_objects(s3, bucket)[:limit]:
        try:
            status = read_status(s3, bucket, job_id)
        except InputError:
            continue
        if status is not None:
            out.append(status)
    return out
