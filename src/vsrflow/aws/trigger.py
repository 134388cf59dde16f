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

Idempotency (DynamoDB, key ``job_id``): the first invocation CLAIMS the job with a conditional
put (``attribute_not_exists(job_id)``, or an expired claim); it writes the request and status,
sends the command and marks the item ``submitted``. If anything after the claim fails, the claim
is released (deleted) before the error is raised, so the retry starts over; if the invocation dies
without releasing, the claim expires after ``claim_seconds`` (>= the Lambda timeout). Items expire
through the table's TTL attribute ``expires_at``.

The command holds only the validated 16-hex job id and the configured executable (a plain path):
nothing of the key, which may contain spaces, quotes, ``;``, ``$(...)`` or backticks.

Logs are one JSON object per line with ``job_id``, ``bucket``, ``key`` and ``outcome`` fields.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from vsrflow.aws.clients import AwsClients
from vsrflow.aws.errors import (
    error_code,
    is_conditional_check_failed,
    is_instance_not_registered,
    is_not_found,
    translate,
)
from vsrflow.aws.events import S3ObjectEvent, parse_event, parse_record
from vsrflow.aws.jobrecords import (
    JobRequest,
    JobStatus,
    check_job_id,
    read_status,
    scale_text,
    write_request,
)
from vsrflow.aws.ssm_events import handle_command_event, is_command_event
from vsrflow.aws.status import publish
from vsrflow.config import AwsSettings, Settings
from vsrflow.errors import InputError, TransientError, VsrError
from vsrflow.formats import output_suffix_for, suffix_of
from vsrflow.workflow.job.identity import compute_job_id, preset_choice, s3_identity
from vsrflow.workflow.job.state import JobState

log = logging.getLogger(__name__)

#: Containers the final mux can write; other accepted suffixes are delivered as .mkv.
RUN_SHELL_SCRIPT = "AWS-RunShellScript"
HEAD_NODE_TAGS = {"parallelcluster:node-type": "HeadNode"}
CLUSTER_TAG = "parallelcluster:cluster-name"
#: Seconds SSM waits for the head node to pick the command up (the submit itself takes seconds).
SSM_DELIVERY_TIMEOUT = 600
#: Seconds the head-node command may run (staging the source from S3 is part of it).
SSM_EXECUTION_TIMEOUT = 3600


def jlog(level: int, message: str, **fields: Any) -> None:
    """One structured log line: ``{"message": ..., **fields}`` as JSON."""
    log.log(level, json.dumps({"message": message, **fields}, default=str, ensure_ascii=False))


@dataclass(frozen=True)
class Accepted:
    """A record that passed the key checks: what the job will be."""

    event: S3ObjectEvent
    folder: str
    preset: str
    scale: float
    output_key: str


class Rejected(InputError):
    """Bad input in one record; ``job_id`` is set when a status can be written for it.

    ``folder`` is the preset folder :func:`classify` parsed (``uploads/<folder>/...``), None when
    the key has none.
    """

    def __init__(
        self, message: str, *, job_id: str | None = None, hint: str | None = None, folder: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.job_id = job_id
        self.folder = folder


class Ignored(Exception):
    """A record that is not ours; the message says why."""


def submit_command(aws: AwsSettings, job_id: str) -> str:
    """The one shell line sent to the head node: ``<vsrflow> submit --job-id <16 hex>``."""
    check_job_id(job_id)
    command = aws.vsrflow_command
    if not command or not all(c.isalnum() or c in "_./-" for c in command):
        raise VsrError(
            f"head node command {command!r} is not a plain path", hint="fix VSRFLOW_AWS_HEAD_NODE_COMMAND"
        )
    return f"{command} submit --job-id {job_id}"


def output_key(aws: AwsSettings, folder: str, relative: str, scale: float) -> str:
    """``outputs/<folder>/<dirs>/<stem>_x<scale><ext>`` for ``uploads/<folder>/<relative>``."""
    dirs, _, name = relative.rpartition("/")
    ext = output_suffix_for(name)
    stem = name[: len(name) - len(suffix_of(name))]
    prefix = f"{aws.output_prefix}{folder}/" + (dirs + "/" if dirs else "")
    return f"{prefix}{stem}_x{scale_text(scale)}{ext}"


def classify(aws: AwsSettings, event: S3ObjectEvent) -> Accepted:
    """Key checks without any AWS call: Accepted, or raise Ignored / Rejected (job_id unset)."""
    if not event.created:
        raise Ignored(f"{event.event_name} event (only created objects start jobs)")
    if aws.bucket and event.bucket != aws.bucket:
        raise Ignored(f"bucket {event.bucket} is not the configured bucket {aws.bucket}")
    prefix = next((p for p in aws.upload_prefixes if event.key.startswith(p)), None)
    if prefix is None:
        raise Ignored(f"key is outside the upload prefixes ({', '.join(aws.upload_prefixes)})")
    rest = event.key[len(prefix) :]
    if rest.endswith("/"):
        raise Ignored("folder marker")
    folder, sep, relative = rest.partition("/")
    known = ", ".join(f"{prefix}{name}/" for name, _, _ in aws.presets)
    if not sep or not folder or not relative:
        raise Rejected(
            f"{event.key}: no preset folder (expected {prefix}<preset>/<name>)", hint=f"upload into {known}"
        )
    mapping = aws.preset_for(folder)
    if mapping is None:
        raise Rejected(
            f"{event.key}: unknown preset folder {folder!r}", hint=f"upload into {known}", folder=folder
        )
    name = relative.rpartition("/")[2]
    suffix = "." + name.rpartition(".")[2].lower() if "." in name else ""
    if suffix not in aws.suffixes:
        raise Rejected(
            f"{event.key}: unsupported file type {suffix or '(no suffix)'!r}",
            hint=f"upload a video ending in {', '.join(aws.suffixes)}",
            folder=folder,
        )
    preset, scale = mapping
    return Accepted(event, folder, preset, scale, output_key(aws, folder, relative, scale))


def upload_job_id(event: S3ObjectEvent, preset: str | None, scale: float | None) -> str:
    """The job id of an upload (:mod:`vsrflow.workflow.job.identity`): its object version, else ETag."""
    version = event.version_id if event.version_id else f"etag:{event.etag or ''}"
    return compute_job_id(
        s3_identity(event.bucket, event.key, version), model=preset_choice(preset or ""), scale=scale
    )


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


class Trigger:
    """Processes S3 records with one set of clients (see the module docstring)."""

    def __init__(self, settings: Settings, clients: AwsClients) -> None:
        self.aws = settings.aws
        self.clients = clients
        if not self.aws.table:
            raise InputError("no idempotency table configured", hint="set VSRFLOW_AWS_TABLE")

    # ---- one record -------------------------------------------------------------------------

    def handle_record(self, raw: dict[str, Any]) -> dict[str, Any]:
        summary: dict[str, Any] = {"key": None, "outcome": None, "job_id": None, "reason": None}
        try:
            event = parse_record(raw)
            summary["key"] = event.key
            summary["bucket"] = event.bucket
            accepted = self._accept(event)
            summary["job_id"] = self._job_id(accepted)
            summary.update(self._submit(accepted, summary["job_id"]))
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

    def _accept(self, event: S3ObjectEvent) -> Accepted:
        try:
            accepted = classify(self.aws, event)
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
        etag = str(head.get("ETag", "")).strip('"') or None
        version = head.get("VersionId") if head.get("VersionId") not in (None, "null") else None
        size = int(head.get("ContentLength", 0))
        if event.version_id is None and event.etag and etag and etag != event.etag:
            raise Ignored("superseded: the object was replaced after this event (its own event follows)")
        accepted = Accepted(
            S3ObjectEvent(
                event.event_name,
                event.bucket,
                event.key,
                size,
                etag,
                version or event.version_id,
                event.sequencer,
                event.event_time,
            ),
            accepted.folder,
            accepted.preset,
            accepted.scale,
            accepted.output_key,
        )
        job_id = self._job_id(accepted)
        if size == 0:
            raise Rejected(f"{event.key}: the object is empty", job_id=job_id, hint="upload the whole video")
        if size > self.aws.max_object_bytes:
            raise Rejected(
                f"{event.key}: {size} bytes is larger than the limit of {self.aws.max_object_bytes} bytes",
                job_id=job_id,
                hint="split the video, or raise VSRFLOW_AWS_MAX_OBJECT_BYTES (MaxObjectBytes)",
            )
        return accepted

    @staticmethod
    def _job_id(accepted: Accepted) -> str:
        return upload_job_id(accepted.event, accepted.preset, accepted.scale)

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

    def _submit(self, accepted: Accepted, job_id: str) -> dict[str, Any]:
        token = secrets.token_hex(8)
        if not self._claim(job_id, token, accepted):
            return {"outcome": "duplicate", "reason": "the job was already started (redelivered event)"}
        try:
            ev = accepted.event
            request = JobRequest(
                job_id=job_id,
                bucket=ev.bucket,
                key=ev.key,
                version_id=ev.version_id,
                etag=ev.etag,
                size=ev.size or 0,
                preset=accepted.preset,
                scale=accepted.scale,
                output_key=accepted.output_key,
                event_time=ev.event_time,
            )
            write_request(self.clients.s3, request)
            queued = JobStatus(job_id=job_id, state=JobState.QUEUED, source=request.source_uri)
            # A job whose head-node command failed had its claim released (vsrflow.aws.ssm_events):
            # this start replaces that failed status. A done status is never replaced.
            previous = read_status(self.clients.s3, ev.bucket, job_id)
            retry = previous is not None and previous.state is JobState.FAILED
            publish(self.clients, self.aws, ev.bucket, queued, replace_terminal=retry)
            instance = self.find_head_node()
            command_id = self.send(instance, job_id)
            self._mark_submitted(job_id, token, command_id)
        except BaseException:
            self._release(job_id, token)
            raise
        self._note_command(ev.bucket, queued, instance, command_id)
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

    def _claim(self, job_id: str, token: str, accepted: Accepted) -> bool:
        """True when this invocation now owns the job; False for a duplicate; Transient when busy."""
        now = int(time.time())
        ddb = self.clients.dynamodb
        item = {
            "job_id": {"S": job_id},
            "state": {"S": "claimed"},
            "owner": {"S": token},
            "claim_until": {"N": str(now + self.aws.claim_seconds)},
            "expires_at": {"N": str(now + self.aws.idempotency_ttl_seconds)},
            "bucket": {"S": accepted.event.bucket},
            "key": {"S": accepted.event.key},
        }
        try:
            ddb.put_item(
                TableName=self.aws.table,
                Item=item,
                ConditionExpression="attribute_not_exists(job_id) OR (#s = :claimed AND claim_until < :now)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":claimed": {"S": "claimed"}, ":now": {"N": str(now)}},
            )
            return True
        except Exception as exc:
            if not is_conditional_check_failed(exc):
                raise _aws_error(exc, f"claim job {job_id} in {self.aws.table}") from exc
        existing = ddb.get_item(TableName=self.aws.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
        state = existing.get("Item", {}).get("state", {}).get("S")
        if state == "claimed":
            raise TransientError(
                f"job {job_id} is being started by another invocation", hint="retried after its claim"
            )
        return False

    def _mark_submitted(self, job_id: str, token: str, command_id: str) -> None:
        try:
            self.clients.dynamodb.update_item(
                TableName=self.aws.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET #s = :submitted, command_id = :cid REMOVE claim_until",
                ConditionExpression="#o = :token",
                ExpressionAttributeNames={"#s": "state", "#o": "owner"},
                ExpressionAttributeValues={
                    ":submitted": {"S": "submitted"},
                    ":cid": {"S": command_id},
                    ":token": {"S": token},
                },
            )
        except Exception as exc:
            # The command is out; a retry would send it again, which the head node tolerates
            # (submit --job-id is idempotent). Never release here: log and carry on.
            jlog(logging.ERROR, "could not mark the job submitted", job_id=job_id, error=str(exc))

    def _release(self, job_id: str, token: str) -> None:
        try:
            self.clients.dynamodb.delete_item(
                TableName=self.aws.table,
                Key={"job_id": {"S": job_id}},
                ConditionExpression="#o = :token AND #s = :claimed",
                ExpressionAttributeNames={"#o": "owner", "#s": "state"},
                ExpressionAttributeValues={":token": {"S": token}, ":claimed": {"S": "claimed"}},
            )
        except Exception as exc:  # the claim then expires after claim_seconds
            jlog(logging.WARNING, "could not release the claim", job_id=job_id, error=str(exc))

    # ---- head node ------------------------------------------------------------------------------

    def find_head_node(self) -> str:
        """Instance id of the cluster's running head node; TransientError when there is none."""
        name = self.aws.cluster_name
        if not name:
            raise VsrError("no cluster name configured", hint="set VSRFLOW_AWS_CLUSTER_NAME (ClusterName)")
        filters = [
            {"Name": f"tag:{CLUSTER_TAG}", "Values": [name]},
            *({"Name": f"tag:{k}", "Values": [v]} for k, v in HEAD_NODE_TAGS.items()),
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
        found: list[tuple[str, str]] = []
        try:
            for page in self.clients.ec2.get_paginator("describe_instances").paginate(Filters=filters):
                for reservation in page.get("Reservations", []):
                    for inst in reservation.get("Instances", []):
                        found.append((str(inst.get("LaunchTime", "")), inst["InstanceId"]))
        except Exception as exc:
            raise _aws_error(exc, f"find the head node of cluster {name}") from exc
        if not found:
            raise TransientError(
                f"no running head node for cluster {name}", hint="retried; check that the cluster is up"
            )
        if len(found) > 1:
            jlog(logging.WARNING, "several running head nodes; using the newest", instances=found)
        return max(found)[1]

    def send(self, instance_id: str, job_id: str) -> str:
        """Send ``vsrflow submit --job-id`` to ``instance_id``; the SSM command id."""
        try:
            response = self.clients.ssm.send_command(
                InstanceIds=[instance_id],
                DocumentName=RUN_SHELL_SCRIPT,
                Parameters={
                    "commands": [submit_command(self.aws, job_id)],
                    "executionTimeout": [str(SSM_EXECUTION_TIMEOUT)],
                },
                Comment=f"vsrflow job {job_id}",
                TimeoutSeconds=SSM_DELIVERY_TIMEOUT,
            )
        except Exception as exc:
            if is_instance_not_registered(exc):
                raise TransientError(
                    f"head node {instance_id} is not registered with SSM yet ({error_code(exc)})",
                    hint="retried; check the SSM agent and the instance profile",
                ) from exc
            raise _aws_error(exc, f"send the command to {instance_id}") from exc
        return str(response["Command"]["CommandId"])


def _aws_error(exc: BaseException, action: str) -> VsrError:
    return translate(exc, action, transient_hint="retried")


def handle_event(
    event: dict[str, Any], settings: Settings, clients: AwsClients | None = None
) -> dict[str, Any]:
    """Process every record of ``event``; returns ``{"records": [summary, ...]}``.

    An EventBridge SSM command status change goes to :mod:`vsrflow.aws.ssm_events` instead.

    A malformed envelope is logged and returned as one rejected record (never retried). After all
    records ran, the first retryable error is raised (TransientError first, then any other).
    """
    clients = clients or AwsClients(settings.aws)
    if is_command_event(event):  # EventBridge: a head-node command ended Failed/TimedOut/...
        return handle_command_event(event, settings, clients)
    try:
        records = parse_event(event)
    except InputError as err:
        jlog(logging.ERROR, "malformed event", outcome="rejected", reason=str(err))
        return {"records": [{"key": None, "outcome": "rejected", "job_id": None, "reason": str(err)}]}
    if not records:
        jlog(logging.INFO, "no records (s3:TestEvent or empty batch)", outcome="ignored")
        return {"records": []}
    trigger = Trigger(settings, clients)
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
    if errors:
        transient = [e for e in errors if isinstance(e, TransientError)]
        raise (transient or errors)[0]
    return {"records": summaries}
