"""The trigger's idempotency records: one DynamoDB item per job, owned by this module alone.

Modelled on the idempotency utility of AWS Lambda Powertools: a typed :class:`ClaimRecord` with
explicit states (:class:`ClaimStatus`) and a persistence class (:class:`IdempotencyStore`) that
reads and writes the items with conditional requests. Nothing outside this module sees a raw
item, an attribute name or a state spelling.

The lifecycle of a job's record::

    (none) --claim--> IN_PROGRESS --complete(owner, command id)--> COMPLETED
    IN_PROGRESS --release(owner)--> (none)         the invocation failed after claiming
    IN_PROGRESS --claim_until passes--> EXPIRED    the invocation died; the next claim wins it
    EXPIRED --claim--> IN_PROGRESS                 (a new owner)
    COMPLETED --release_command(command id)--> (none)   that head-node command failed

EXPIRED is never stored: it is an IN_PROGRESS record read after its ``claim_until``. Every item
also carries ``expires_at`` (the table's TTL attribute), after which DynamoDB deletes it.

The item layout (key ``job_id``; the template's table in ``infra/cfn/vsrflow.yaml``): ``state``
(``claimed`` | ``submitted``), ``owner`` (the claiming invocation's token), ``claim_until`` (only
while claimed), ``expires_at``, ``bucket``, ``key`` and, once submitted, ``command_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vsrflow.aws.errors import is_conditional_check_failed, translate
from vsrflow.workflow.job.identity import check_job_id


class ClaimStatus(StrEnum):
    """Where a job's idempotency record is; the values of the stored ones are their spelling."""

    #: An invocation owns the job and is starting it (stored as ``claimed``).
    IN_PROGRESS = "claimed"
    #: The head-node command was sent (stored as ``submitted``); later events are duplicates.
    COMPLETED = "submitted"
    #: An IN_PROGRESS record past its ``claim_until``: its owner died; never stored.
    EXPIRED = "expired"


#: The states an item may hold in the table.
STORED_STATUSES = frozenset({ClaimStatus.IN_PROGRESS, ClaimStatus.COMPLETED})


@dataclass(frozen=True)
class ClaimRecord:
    """One job's idempotency record.

    Attributes:
        job_id: the job (16 hex digits). status: IN_PROGRESS or COMPLETED as stored (see
            :meth:`status_at` for EXPIRED). owner: the token of the invocation that claimed it.
        claim_until: epoch seconds after which an IN_PROGRESS claim is EXPIRED (None once
            COMPLETED). expires_at: epoch seconds of the TTL deletion.
        bucket, key: the upload (for people reading the table). command_id: the SSM command
            that submitted the job (always set once COMPLETED).
    """

    job_id: str
    status: ClaimStatus
    owner: str
    expires_at: int
    claim_until: int | None = None
    bucket: str | None = None
    key: str | None = None
    command_id: str | None = None

    def __post_init__(self) -> None:
        check_job_id(self.job_id)
        if self.status not in STORED_STATUSES:
            raise ValueError(f"a record is stored {' or '.join(sorted(STORED_STATUSES))}, not {self.status}")
        if (self.status is ClaimStatus.IN_PROGRESS) != (self.claim_until is not None):
            raise ValueError("claim_until is set exactly while the claim is in progress")
        if self.status is ClaimStatus.COMPLETED and self.command_id is None:
            raise ValueError("a submitted job names its command_id")

    @classmethod
    def in_progress(
        cls,
        job_id: str,
        owner: str,
        *,
        now: int,
        claim_seconds: int,
        ttl_seconds: int,
        bucket: str | None = None,
        key: str | None = None,
    ) -> ClaimRecord:
        """A fresh claim of ``job_id`` by ``owner`` at ``now``: in progress for ``claim_seconds``."""
        return cls(
            job_id=job_id,
            status=ClaimStatus.IN_PROGRESS,
            owner=owner,
            claim_until=now + claim_seconds,
            expires_at=now + ttl_seconds,
            bucket=bucket,
            key=key,
        )

    def status_at(self, now: int) -> ClaimStatus:
        """The status at epoch second ``now``: EXPIRED for a claim whose ``claim_until`` passed."""
        if self.status is ClaimStatus.IN_PROGRESS and self.claim_until is not None and self.claim_until < now:
            return ClaimStatus.EXPIRED
        return self.status

    def completed(self, command_id: str) -> ClaimRecord:
        """This claim once its owner sent ``command_id``; ValueError unless it is in progress."""
        if self.status is not ClaimStatus.IN_PROGRESS:
            raise ValueError(f"job {self.job_id}: only a claim in progress completes, not {self.status}")
        return ClaimRecord(
            job_id=self.job_id,
            status=ClaimStatus.COMPLETED,
            owner=self.owner,
            expires_at=self.expires_at,
            bucket=self.bucket,
            key=self.key,
            command_id=command_id,
        )

    # ---- the DynamoDB item ----------------------------------------------------------------------

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "job_id": {"S": self.job_id},
            "state": {"S": self.status.value},
            "owner": {"S": self.owner},
            "expires_at": {"N": str(self.expires_at)},
        }
        optional = {"bucket": self.bucket, "key": self.key, "command_id": self.command_id}
        item.update({name: {"S": value} for name, value in optional.items() if value is not None})
        if self.claim_until is not None:
            item["claim_until"] = {"N": str(self.claim_until)}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ClaimRecord:
        """The record of a stored item; ValueError naming the problem for a malformed one."""

        def text(name: str) -> str | None:
            value = item.get(name, {}).get("S")
            return str(value) if value is not None else None

        def number(name: str) -> int | None:
            value = item.get(name, {}).get("N")
            return int(value) if value is not None else None

        job_id = text("job_id")
        if job_id is None:
            raise ValueError("idempotency item without job_id")
        state = text("state")
        if state not in {s.value for s in STORED_STATUSES}:
            raise ValueError(f"idempotency item {job_id}: unknown state {state!r}")
        status = ClaimStatus(state)
        return cls(
            job_id=job_id,
            status=status,
            owner=text("owner") or "",
            expires_at=number("expires_at") or 0,
            claim_until=number("claim_until") if status is ClaimStatus.IN_PROGRESS else None,
            bucket=text("bucket"),
            key=text("key"),
            command_id=text("command_id"),
        )


class AlreadyClaimed(Exception):
    """:meth:`IdempotencyStore.claim` lost: the job has a live record (``existing``; None when it
    was deleted between the refused write and the read)."""

    def __init__(self, job_id: str, existing: ClaimRecord | None) -> None:
        super().__init__(f"job {job_id} already has an idempotency record")
        self.job_id = job_id
        self.existing = existing


class IdempotencyStore:
    """The idempotency records in DynamoDB table ``table`` (any client with the DynamoDB API).

    Failures other than a lost condition raise :class:`~vsrflow.errors.TransientError` (retry)
    or :class:`~vsrflow.errors.VsrError` naming the table (:func:`vsrflow.aws.errors.translate`).
    """

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def _key(self, job_id: str) -> dict[str, Any]:
        return {"job_id": {"S": job_id}}

    def get(self, job_id: str) -> ClaimRecord | None:
        """The record of ``job_id`` (a consistent read), None when there is none."""
        try:
            response = self.dynamodb.get_item(
                TableName=self.table, Key=self._key(job_id), ConsistentRead=True
            )
        except Exception as exc:
            raise translate(
                exc,
                f"read job {job_id} in {self.table}",
                hint="check the IAM policy",
                transient_hint="retried",
            ) from exc
        item = response.get("Item")
        return ClaimRecord.from_item(dict(item)) if item else None

    def claim(self, record: ClaimRecord, *, now: int) -> None:
        """Store the in-progress ``record`` unless the job has a record that is not EXPIRED at ``now``.

        Raises:
            AlreadyClaimed: another record holds the job (carries it, read consistently).
        """
        if record.status is not ClaimStatus.IN_PROGRESS:
            raise ValueError(f"job {record.job_id}: a claim starts in progress, not {record.status}")
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=record.to_item(),
                ConditionExpression="attribute_not_exists(job_id) OR (#s = :claimed AND claim_until < :now)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":claimed": {"S": ClaimStatus.IN_PROGRESS.value},
                    ":now": {"N": str(now)},
                },
            )
        except Exception as exc:
            if not is_conditional_check_failed(exc):
                raise translate(
                    exc, f"claim job {record.job_id} in {self.table}", transient_hint="retried"
                ) from exc
            raise AlreadyClaimed(record.job_id, self.get(record.job_id)) from None

    def complete(self, record: ClaimRecord, command_id: str) -> ClaimRecord:
        """Mark ``record`` COMPLETED with ``command_id``, only while its owner still holds it.

        Returns the completed record; a lost condition (another owner took the job over after the
        claim expired) is a :class:`~vsrflow.errors.VsrError`.
        """
        done = record.completed(command_id)
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=self._key(record.job_id),
                UpdateExpression="SET #s = :submitted, command_id = :cid REMOVE claim_until",
                ConditionExpression="#o = :token",
                ExpressionAttributeNames={"#s": "state", "#o": "owner"},
                ExpressionAttributeValues={
                    ":submitted": {"S": ClaimStatus.COMPLETED.value},
                    ":cid": {"S": command_id},
                    ":token": {"S": record.owner},
                },
            )
        except Exception as exc:
            raise translate(exc, f"mark job {record.job_id} submitted in {self.table}") from exc
        return done

    def release(self, record: ClaimRecord) -> bool:
        """Delete ``record`` while it is still this owner's claim in progress.

        Returns False when it is not (nothing deleted); other failures raise.
        """
        try:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key=self._key(record.job_id),
                ConditionExpression="#o = :token AND #s = :claimed",
                ExpressionAttributeNames={"#o": "owner", "#s": "state"},
                ExpressionAttributeValues={
                    ":token": {"S": record.owner},
                    ":claimed": {"S": ClaimStatus.IN_PROGRESS.value},
                },
            )
        except Exception as exc:
            if is_conditional_check_failed(exc):
                return False
            raise translate(exc, f"release job {record.job_id} in {self.table}") from exc
        return True

    def release_command(self, job_id: str, command_id: str) -> bool:
        """Delete the record of ``job_id`` when it is the one submitted by ``command_id``.

        Returns False when another record holds the job (a newer claim or command): it is kept.
        """
        try:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key=self._key(job_id),
                ConditionExpression="command_id = :cid",
                ExpressionAttributeValues={":cid": {"S": command_id}},
            )
        except Exception as exc:
            if is_conditional_check_failed(exc):
                return False
            raise translate(exc, f"release job {job_id} in {self.table}") from exc
        return True
