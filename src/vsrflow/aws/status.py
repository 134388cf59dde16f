"""Publishing a job's status: ``status.json`` in S3 plus one SNS notice per terminal state.

Writers: the trigger (queued, or failed for a rejected upload), ``vsrflow submit --job-id``
(queued/failed on the head node), the CLI wrapper of every ``vsrflow job <stage>`` (the manifest
mirrored after each stage, done after delivery) and whoever sees the SSM command fail
(:func:`mark_command_failed`). Done and failed also go to the SNS topic (when one is configured)
as a JSON message ``{"job_id", "state", "reason", "source", "output", "text"}`` with the message
attributes ``job_id`` and ``state``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from vsrflow.aws.clients import AwsClients
from vsrflow.aws.errors import translate
from vsrflow.aws.jobrecords import JobStatus, read_status, write_status
from vsrflow.config import AwsSettings
from vsrflow.errors import InputError
from vsrflow.workflow.job.manifest import Manifest
from vsrflow.workflow.job.state import JobState

log = logging.getLogger(__name__)

#: Lines of a failed command's stderr kept in the failure reason.
STDERR_TAIL_LINES = 8
#: Longest reason kept (status.json is for people; the full text is in the logs).
MAX_REASON_CHARS = 2000


def one_line_reason(text: str) -> str:
    reason = " | ".join(ln.strip() for ln in str(text).strip().splitlines() if ln.strip()) or "failed"
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


def status_from_manifest(manifest: Manifest, *, source: str | None, output: str | None = None) -> JobStatus:
    """The status.json view of a workflow manifest (state, reason, chunk progress, and while
    upscaling ``detail.fps`` / ``detail.eta_s`` from :meth:`Manifest.throughput`).

    ``done`` is never derived from the manifest: a job is done for its user only once the output
    is uploaded, so a manifest in state done maps to ``encoding`` until :func:`publish` says done.
    """
    state = manifest.state
    if state is JobState.DONE:
        state = JobState.ENCODING
    planned = manifest.plan is not None
    fps, eta = manifest.throughput()
    return JobStatus(
        job_id=manifest.job_id,
        state=state,
        reason=manifest.reason if state is JobState.FAILED else None,
        done_chunks=manifest.done_count if planned else None,
        total_chunks=manifest.chunk_count if planned else None,
        source=source,
        output=output,
        # Progress for people (the page's jobs list): upscaling frames per second and time left.
        detail={"fps": fps, "eta_s": eta} if fps is not None and state is JobState.UPSCALING else {},
    )


def notify(clients: AwsClients, topic_arn: str | None, status: JobStatus) -> None:
    """Publish a terminal ``status`` to ``topic_arn`` (no-op without a topic)."""
    if not topic_arn:
        return
    message = {
        "job_id": status.job_id,
        "state": status.state.value,
        "reason": status.reason,
        "source": status.source,
        "output": status.output,
        "text": status.text,
    }
    subject = f"vsrflow job {status.job_id} {status.state.value}"
    try:
        clients.sns.publish(
            TopicArn=topic_arn,
            Subject=subject,
            Message=json.dumps(message, ensure_ascii=False),
            MessageAttributes={
                "job_id": {"DataType": "String", "StringValue": status.job_id},
                "state": {"DataType": "String", "StringValue": status.state.value},
            },
        )
    except Exception as exc:
        raise translate(exc, f"publish job {status.job_id} to {topic_arn}", hint="check the topic") from exc


def publish(
    clients: AwsClients,
    aws: AwsSettings,
    bucket: str,
    status: JobStatus,
    *,
    replace_terminal: bool = False,
    only_over: Callable[[JobStatus], bool] | None = None,
) -> bool:
    """Write ``status`` to ``jobs/<id>/status.json`` and, when it is terminal, notify SNS.

    Returns False when nothing was written because the job already has a terminal status, or
    ``only_over`` refused the current one (then nothing is published either: each terminal state
    is announced once). The write is conditional on the status it decided on (see write_status).
    """
    written = write_status(clients.s3, bucket, status, replace_terminal=replace_terminal, only_over=only_over)
    extra = {"job_id": status.job_id, "state": status.state.value}
    if not written:
        log.info(
            "job %s: status %s not written (already terminal)", status.job_id, status.state.value, extra=extra
        )
        return False
    log.info("job %s: status %s", status.job_id, status.text, extra=extra)
    if status.terminal:
        notify(clients, aws.topic_arn, status)
    return True


def mark_failed(
    clients: AwsClients,
    aws: AwsSettings,
    bucket: str,
    job_id: str,
    reason: str,
    *,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Status failed with ``reason`` (+ SNS). Keeps an existing terminal status (its reason came first).

    Returns whether this call wrote the failure.
    """
    try:
        current = read_status(clients.s3, bucket, job_id)
    except InputError:
        current = None
    status = JobStatus(
        job_id=job_id,
        state=JobState.FAILED,
        reason=one_line_reason(reason),
        done_chunks=current.done_chunks if current else None,
        total_chunks=current.total_chunks if current else None,
        source=current.source if current else None,
        detail={**(current.detail if current else {}), **(detail or {})},
    )
    return publish(clients, aws, bucket, status)


def mark_command_failed(
    aws: AwsSettings,
    job_id: str,
    *,
    exit_code: int | None,
    stderr: str,
    command_id: str | None = None,
    bucket: str | None = None,
    clients: AwsClients | None = None,
) -> bool:
    """The head-node command of ``job_id`` failed: status failed with the tail of its stderr (+ SNS).

    For whoever watches the SSM command: the trigger's handler of EventBridge's status-change
    event (:mod:`vsrflow.aws.ssm_events`, on AWS and in the local stack), or an operator's
    script. When the job already has a terminal status (``vsrflow submit --job-id`` recorded its
    own, more precise failure), that one is kept. Returns whether this call wrote the failure.
    """
    bucket = bucket or aws.bucket
    if not bucket:
        raise InputError("no bucket to record the failure in", hint="set VSRFLOW_AWS_BUCKET")
    tail = [ln for ln in stderr.strip().splitlines() if ln.strip()][-STDERR_TAIL_LINES:]
    code = "unknown" if exit_code is None else str(exit_code)
    reason = f"head node command failed (exit {code})"
    if tail:
        reason += ": " + " | ".join(ln.strip() for ln in tail)
    detail = {"command_id": command_id} if command_id else None
    return mark_failed(clients or AwsClients(aws), aws, bucket, job_id, reason, detail=detail)
