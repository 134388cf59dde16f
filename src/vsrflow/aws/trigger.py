"""The S3 trigger: each uploaded video becomes exactly one job on the cluster's head node.

:func:`handle_event` processes EVERY record of an S3 event (also inside an SQS batch; the
``s3:TestEvent`` is ignored) and returns a summary ``{"records": [{"key", "outcome", "job_id",
"reason", "command_id"}, ...]}`` with outcome one of

* ``submitted``: accepted; ``jobs/<id>/request.json`` and a queued ``status.json`` written; the
  head node was sent ``<vsrflow> submit --job-id <id>`` through SSM ``AWS-RunShellScript``;
* ``duplicate``: a redelivered event of a job already started (the idempotency record exists);
* ``rejected``: bad input (unknown preset folder, unsupported suffix, too large, empty, deleted
  before we looked, malformed record); a ``failed`` status with the reason is written when the
  key is inside the upload prefixes and a job id can be formed;
* ``ignored``: not ours (outside the upload prefixes, another bucket, a removal event, a folder
  marker, an upload superseded by a newer one).

Never retried: bad input. Retried: everything else. Transient problems (throttling after
botocore's adaptive retries, no running head node yet, the head node not registered with SSM,
another invocation holding the job's claim) raise :class:`~vsrflow.errors.TransientError` after
every record was processed, so Lambda's asynchronous retries run the event again (the records that
went through are then duplicates) and its on-failure destination (the DLQ) catches what never
succeeds.

Idempotency (:mod:`vsrflow.aws.idempotency`): the first invocation CLAIMS the job (a record in
progress, written only when the job has none or an expired one); it writes the request and
status, sends the command and marks the record completed. If anything after the claim fails, the
claim is released before the error is raised, so the retry starts over; if the invocation dies
without releasing, the claim expires after ``claim_seconds`` (>= the Lambda timeout). Records
expire through the table's TTL.

This module orchestrates; the parts are the key rules and the request's derivation
(:mod:`vsrflow.aws.uploads`, which the head node runs again on every request it reads), the claim
(:mod:`vsrflow.aws.idempotency`), the head-node lookup (:mod:`vsrflow.aws.headnode_lookup`) and
the SSM command (:mod:`vsrflow.aws.commands`, which keeps the key out of the shell line).

Logs are one JSON object per line with ``job_id``, ``bucket``, ``key`` and ``outcome`` fields.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import replace
from functools import cached_property
from typing import Any

from vsrflow.aws.clients import AwsClients
from vsrflow.aws.commands import send_submit
from vsrflow.aws.errors import is_not_found, translate
from vsrflow.aws.events import S3ObjectEvent, parse_event, parse_record, sqs_messages
from vsrflow.aws.headnode_lookup import find_head_node
from vsrflow.aws.idempotency import AlreadyClaimed, ClaimRecord, ClaimStatus, IdempotencyStore
from vsrflow.aws.jobrecords import JobRequest, JobStatus, read_status, write_request
from vsrflow.aws.ssm_events import handle_command_event, is_command_event
from vsrflow.aws.status import publish
from vsrflow.aws.uploads import Ignored, Rejected, classify, derive_request, upload_job_id
from vsrflow.config import AwsSettings, Settings
from vsrflow.errors import InputError, TransientError, VsrError
from vsrflow.workflow.job.state import JobState

log = logging.getLogger(__name__)


def jlog(level: int, message: str, **fields: Any) -> None:
    """One structured log line: ``{"message": ..., **fields}`` as JSON."""
    log.log(level, json.dumps({"message": message, **fields}, default=str, ensure_ascii=False))


def _head_object(clients: AwsClients, event: S3ObjectEvent) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Bucket": event.bucket, "Key": event.key}
    if event.version_id:
        kwargs["VersionId"] = event.version_id
    try:
        head: dict[str, Any] = clients.s3.head_object(**kwargs)
    except Exception as exc:
        if is_not_found(exc):
            raise Rejected(
                f"{event.key}: the object no longer exists (deleted before the job started)",
                hint="upload it again",
            ) from None
        raise translate(
            exc,
            f"read {event.uri} (HeadObject)",
            hint="check the trigger's S3 permissions",
            transient_hint="retried",
        ) from exc
    return head


def _as_found(event: S3ObjectEvent, head: dict[str, Any]) -> S3ObjectEvent:
    """``event`` with the object as HeadObject found it (size, ETag, version)."""
    etag = str(head.get("ETag", "")).strip('"') or None
    version = head.get("VersionId") if head.get("VersionId") not in (None, "null") else None
    return replace(
        event, size=int(head.get("ContentLength", 0)), etag=etag, version_id=version or event.version_id
    )


def current_upload_job_id(aws: AwsSettings, clients: AwsClients, uri: str) -> str:
    """The job id the trigger gives the current version of the upload ``s3://bucket/key``.

    One HeadObject and the trigger's own derivation (:func:`~vsrflow.aws.uploads.derive_request`),
    so ``vsrflow status s3://...`` finds the job an upload started without its id.

    Raises:
        InputError: not an ``s3://bucket/key`` URI, a key the trigger does not take (outside the
            upload prefixes, not a video), the object gone, or one the trigger refuses.
    """
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise InputError(
            f"{uri}: not an s3://bucket/key URI", hint="e.g. s3://my-bucket/uploads/anime/clip.mp4"
        )
    event = S3ObjectEvent("ObjectCreated:Put", bucket, key, None, None, None, None, "")
    found = event
    try:
        found = _as_found(event, _head_object(clients, event))
        return derive_request(aws, found).job_id
    except Ignored as why:
        raise InputError(
            f"{uri}: no job starts from this key ({why})",
            hint=f"uploads start jobs under s3://{bucket}/{aws.upload_prefixes[0]}<preset>/",
        ) from None
    except Rejected as err:
        # Refused by the trigger: its status (under the id the trigger gave it) says why.
        if err.job_id is None and found is not event and err.folder is not None:
            err.job_id = upload_job_id(found, err.folder, None)
        if err.job_id is not None:
            return err.job_id
        raise


class Trigger:
    """Processes S3 records with one set of clients (see the module docstring)."""

    def __init__(self, settings: Settings, clients: AwsClients) -> None:
        self.aws = settings.aws
        self.clients = clients
        if not self.aws.table:
            raise InputError("no idempotency table configured", hint="set VSRFLOW_AWS_TABLE")
        self.table: str = self.aws.table

    @cached_property
    def store(self) -> IdempotencyStore:
        """The idempotency records; created on first use (ignored records need no DynamoDB client)."""
        return IdempotencyStore(self.clients.dynamodb, self.table)

    # ---- one record -------------------------------------------------------------------------

    def handle_record(self, raw: dict[str, Any]) -> dict[str, Any]:
        summary: dict[str, Any] = {"key": None, "outcome": None, "job_id": None, "reason": None}
        try:
            event = parse_record(raw)
            summary["key"] = event.key
            summary["bucket"] = event.bucket
            request = self._accept(event)
            summary["job_id"] = request.job_id
            summary.update(self._submit(request))
        except Ignored as why:
            summary.update(outcome="ignored", reason=str(why))
        except InputError as err:
            summary.update(outcome="rejected", reason=str(err))
            job_id = getattr(err, "job_id", None) or summary["job_id"]
            summary["job_id"] = job_id
            if job_id:
                self._write_rejection(job_id, summary, str(err))
        level = logging.WARNING if summary["outcome"] == "rejected" else logging.INFO
        jlog(level, f"record {summary['outcome']}", **summary)
        return summary

    def _accept(self, event: S3ObjectEvent) -> JobRequest:
        """The request of ``event``'s upload (:func:`~vsrflow.aws.uploads.derive_request`, the
        derivation the head node checks again), after the key checks and one HeadObject."""
        try:
            accepted = classify(self.aws, event)  # before any AWS call: what is not ours costs nothing
        except Rejected as err:
            # Inside the upload prefixes: the uploader deserves a status. Identity from the event;
            # the preset folder is the one classify parsed (not the key's parent folder).
            err.job_id = upload_job_id(event, err.folder, None)
            raise
        try:
            head = _head_object(self.clients, event)
        except Rejected as err:
            err.job_id = upload_job_id(event, accepted.preset, accepted.scale)
            raise
        found = _as_found(event, head)
        if event.version_id is None and event.etag and found.etag and found.etag != event.etag:
            raise Ignored("superseded: the object was replaced after this event (its own event follows)")
        return derive_request(self.aws, found)

    def _write_rejection(self, job_id: str, summary: dict[str, Any], reason: str) -> None:
        bucket = summary.get("bucket")
        if not bucket:
            return
        status = JobStatus(
            job_id=job_id,
            state=JobState.FAILED,
            reason=reason,
            source=f"s3://{bucket}/{summary['key']}",
        )
        publish(self.clients, self.aws, bucket, status)

    # ---- idempotent submission ----------------------------------------------------------------

    def _submit(self, request: JobRequest) -> dict[str, Any]:
        job_id = request.job_id
        claim = self._claim(request)
        if claim is None:
            return {"outcome": "duplicate", "reason": "the job was already started (redelivered event)"}
        try:
            write_request(self.clients.s3, request)
            queued = JobStatus(job_id=job_id, state=JobState.QUEUED, source=request.source_uri)
            # A job whose head-node command failed had its claim released (vsrflow.aws.ssm_events):
            # this start replaces that failed status. A done status is never replaced.
            previous = read_status(self.clients.s3, request.bucket, job_id)
            retry = previous is not None and previous.state is JobState.FAILED
            publish(self.clients, self.aws, request.bucket, queued, replace_terminal=retry)
            instance = self.find_head_node()
            command_id = self.send(instance, job_id)
            self._mark_submitted(claim, command_id)
        except BaseException:
            self._release(claim)
            raise
        self._note_command(request.bucket, queued, instance, command_id)
        return {"outcome": "submitted", "command_id": command_id, "head_node": instance}

    def _note_command(self, bucket: str, queued: JobStatus, instance: str, command_id: str) -> None:
        """Add the head node and command id to a status that is still queued (best effort).

        The head node may already be running the job (or have failed it): a status that moved on
        is left alone, and the write is conditional on the queued status it read (S3 If-Match),
        so a head-node write racing in between is never overwritten.
        """
        try:
            detail = {"head_node": instance, "command_id": command_id}
            publish(
                self.clients,
                self.aws,
                bucket,
                replace(queued, detail=detail),
                only_over=lambda current: current.state is JobState.QUEUED,
            )
        except VsrError as exc:
            jlog(
                logging.WARNING,
                "could not note the command in the status",
                job_id=queued.job_id,
                error=str(exc),
            )

    def _claim(self, request: JobRequest) -> ClaimRecord | None:
        """This invocation's claim of the job; None for a duplicate; TransientError while another
        invocation's claim is in progress."""
        now = int(time.time())
        job_id = request.job_id
        claim = ClaimRecord.in_progress(
            job_id,
            secrets.token_hex(8),
            now=now,
            claim_seconds=self.aws.claim_seconds,
            ttl_seconds=self.aws.idempotency_ttl_seconds,
            bucket=request.bucket,
            key=request.key,
        )
        try:
            self.store.claim(claim, now=now)
        except AlreadyClaimed as held:
            # Read after the refused write: an expired claim there lost a race to a new owner.
            if held.existing is not None and held.existing.status is ClaimStatus.IN_PROGRESS:
                raise TransientError(
                    f"job {job_id} is being started by another invocation", hint="retried after its claim"
                ) from None
            return None
        return claim

    def _mark_submitted(self, claim: ClaimRecord, command_id: str) -> None:
        try:
            self.store.complete(claim, command_id)
        except VsrError as exc:
            # The command is out; a retry would send it again, which the head node tolerates
            # (submit --job-id is idempotent). Never release here: log and carry on.
            jlog(logging.ERROR, "could not mark the job submitted", job_id=claim.job_id, error=str(exc))

    def _release(self, claim: ClaimRecord) -> None:
        try:
            released = self.store.release(claim)
            error = None if released else "the claim is no longer this invocation's"
        except VsrError as exc:
            error = str(exc)
        if error is not None:  # the claim then expires after claim_seconds
            jlog(logging.WARNING, "could not release the claim", job_id=claim.job_id, error=error)

    # ---- head node ------------------------------------------------------------------------------

    def find_head_node(self) -> str:
        """Instance id of the cluster's running head node; TransientError when there is none."""
        return find_head_node(self.clients, self.aws)

    def send(self, instance_id: str, job_id: str) -> str:
        """Send ``vsrflow submit --job-id`` to ``instance_id``; the SSM command id."""
        return send_submit(self.clients, self.aws, instance_id, job_id)


def handle_event(
    event: dict[str, Any], settings: Settings, clients: AwsClients | None = None
) -> dict[str, Any]:
    """Process every record of ``event``; returns ``{"records": [summary, ...]}``.

    An EventBridge SSM command status change goes to :mod:`vsrflow.aws.ssm_events` instead.

    A malformed envelope is logged and returned as one rejected record (never retried). After all
    records ran, the first retryable error is raised (TransientError first, then any other), so
    Lambda's asynchronous retries take over. An SQS batch is answered per message instead, with
    ``batchItemFailures`` (see :func:`_handle_sqs_batch`): it never raises.
    """
    clients = clients or AwsClients(settings.aws)
    if is_command_event(event):  # EventBridge: a head-node command ended Failed/TimedOut/...
        return handle_command_event(event, settings, clients)
    messages = sqs_messages(event)
    if messages is not None:
        return _handle_sqs_batch(messages, Trigger(settings, clients))
    summaries, errors = _handle_envelope(event, Trigger(settings, clients))
    if errors:
        transient = [e for e in errors if isinstance(e, TransientError)]
        raise (transient or errors)[0]
    return {"records": summaries}


def _handle_sqs_batch(messages: list[tuple[str, object]], trigger: Trigger) -> dict[str, Any]:
    """An SQS batch (S3 -> SQS -> Lambda): every message on its own; partial batch response.

    A message whose records hit a retryable error is listed in ``batchItemFailures`` (the event
    source mapping, with ``ReportBatchItemFailures``, makes only those visible again, and its
    redrive policy moves one that keeps failing to the DLQ); the handler returns normally so its
    siblings are deleted as done. A malformed body is rejected (logged; retrying never helps).
    """
    summaries: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    for message_id, body in messages:
        done, errors = _handle_envelope(body, trigger)
        summaries.extend({**s, "message_id": message_id} for s in done)
        if errors:
            failures.append({"itemIdentifier": message_id})
    return {"records": summaries, "batchItemFailures": failures}


def _handle_envelope(event: object, trigger: Trigger) -> tuple[list[dict[str, Any]], list[BaseException]]:
    """Every record of one S3 notification: (summaries, retryable errors); never raises."""
    try:
        records = parse_event(event)
    except InputError as err:
        jlog(logging.ERROR, "malformed event", outcome="rejected", reason=str(err))
        return [{"key": None, "outcome": "rejected", "job_id": None, "reason": str(err)}], []
    if not records:
        jlog(logging.INFO, "no records (s3:TestEvent or empty batch)", outcome="ignored")
        return [], []
    summaries: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    for raw in records:
        try:
            summaries.append(trigger.handle_record(raw))
        except Exception as exc:  # retryable: the other records still run
            key = raw.get("s3", {}).get("object", {}).get("key") if isinstance(raw, dict) else None
            jlog(
                logging.ERROR,
                "record failed; the event will be retried",
                key=key,
                error=str(exc),
                error_type=type(exc).__name__,
                outcome="error",
            )
            summaries.append({"key": key, "outcome": "error", "job_id": None, "reason": str(exc)})
            errors.append(exc)
    return summaries, errors
