"""vsrflow.aws.idempotency: claim records, their states and transitions, and their DynamoDB persistence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from vsrflow.aws.idempotency import AlreadyClaimed, ClaimRecord, ClaimStatus, IdempotencyStore
from vsrflow.errors import InputError, TransientError, VsrError

JOB = "0123456789abcdef"
REGION = "us-east-1"
NOW = 1_700_000_000


def claim(owner: str = "a", *, now: int = NOW, job_id: str = JOB) -> ClaimRecord:
    return ClaimRecord.in_progress(
        job_id, owner, now=now, claim_seconds=60, ttl_seconds=3600, bucket="b", key="uploads/anime/x y.mp4"
    )


# ---- the record -------------------------------------------------------------------------------


def test_a_fresh_claim_is_in_progress_until_its_claim_expires() -> None:
    record = claim()
    assert record.status is ClaimStatus.IN_PROGRESS
    assert record.claim_until == NOW + 60 and record.expires_at == NOW + 3600
    assert record.status_at(NOW + 60) is ClaimStatus.IN_PROGRESS
    assert record.status_at(NOW + 61) is ClaimStatus.EXPIRED


def test_completing_keeps_the_owner_and_ends_the_claim() -> None:
    done = claim().completed("cmd-1")
    assert done.status is ClaimStatus.COMPLETED and done.command_id == "cmd-1"
    assert done.owner == "a" and done.claim_until is None and done.expires_at == NOW + 3600
    # A submitted job never expires into a new claim.
    assert done.status_at(NOW + 10_000) is ClaimStatus.COMPLETED
    with pytest.raises(ValueError, match="only a claim in progress completes"):
        done.completed("cmd-2")


def test_records_refuse_inconsistent_states() -> None:
    with pytest.raises(ValueError, match="not expired"):
        ClaimRecord(JOB, ClaimStatus.EXPIRED, "a", NOW, claim_until=NOW)
    with pytest.raises(ValueError, match="claim_until"):
        ClaimRecord(JOB, ClaimStatus.IN_PROGRESS, "a", NOW)
    with pytest.raises(ValueError, match="command_id"):
        ClaimRecord(JOB, ClaimStatus.COMPLETED, "a", NOW)
    with pytest.raises(InputError, match="invalid job id"):
        ClaimRecord("not-a-job", ClaimStatus.IN_PROGRESS, "a", NOW, claim_until=NOW)


def test_items_round_trip_in_the_table_layout() -> None:
    record = claim()
    item = record.to_item()
    assert item["state"] == {"S": "claimed"} and item["claim_until"] == {"N": str(NOW + 60)}
    assert item["expires_at"] == {"N": str(NOW + 3600)} and "command_id" not in item
    assert ClaimRecord.from_item(item) == record
    done = record.completed("cmd-1")
    done_item = done.to_item()
    assert done_item["state"] == {"S": "submitted"} and "claim_until" not in done_item
    assert ClaimRecord.from_item(done_item) == done
    with pytest.raises(ValueError, match="unknown state 'expired'"):
        ClaimRecord.from_item(item | {"state": {"S": "expired"}})
    with pytest.raises(ValueError, match="without job_id"):
        ClaimRecord.from_item({"state": {"S": "claimed"}})


# ---- the store against moto -------------------------------------------------------------------


@pytest.fixture
def store() -> Iterator[IdempotencyStore]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            mp.setenv(name, "testing")
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            ddb = boto3.client("dynamodb", region_name=REGION)
            ddb.create_table(
                TableName="jobs",
                KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            yield IdempotencyStore(ddb, "jobs")


def test_claim_complete_and_duplicates(store: IdempotencyStore) -> None:
    first = claim("a")
    store.claim(first, now=NOW)
    assert store.get(JOB) == first
    with pytest.raises(AlreadyClaimed) as held:
        store.claim(claim("b"), now=NOW + 1)
    assert held.value.existing == first
    done = store.complete(first, "cmd-1")
    assert store.get(JOB) == done and done.status is ClaimStatus.COMPLETED
    # Long after: a submitted job is still a duplicate (until the TTL removes it).
    with pytest.raises(AlreadyClaimed) as again:
        store.claim(claim("c", now=NOW + 10_000), now=NOW + 10_000)
    assert again.value.existing == done


def test_an_expired_claim_goes_to_the_next_owner(store: IdempotencyStore) -> None:
    dead = claim("a")
    store.claim(dead, now=NOW)
    later = NOW + 61
    stored = store.get(JOB)
    assert stored is not None and stored.status_at(later) is ClaimStatus.EXPIRED
    successor = claim("b", now=later)
    store.claim(successor, now=later)
    assert store.get(JOB) == successor
    # The dead owner can neither release nor complete the successor's claim.
    assert not store.release(dead)
    with pytest.raises(VsrError, match="mark job"):
        store.complete(dead, "cmd-old")
    assert store.get(JOB) == successor


def test_release_deletes_only_the_owners_claim_in_progress(store: IdempotencyStore) -> None:
    mine = claim("a")
    store.claim(mine, now=NOW)
    assert not store.release(claim("b"))
    assert store.release(mine)
    assert store.get(JOB) is None
    store.claim(mine, now=NOW)
    store.complete(mine, "cmd-1")
    assert not store.release(mine)  # submitted: only its command's failure releases it
    assert store.get(JOB) is not None


def test_release_command_deletes_only_that_commands_record(store: IdempotencyStore) -> None:
    record = claim("a")
    store.claim(record, now=NOW)
    assert not store.release_command(JOB, "cmd-1")  # still in progress: no command yet
    store.complete(record, "cmd-1")
    assert not store.release_command(JOB, "cmd-other")
    assert store.release_command(JOB, "cmd-1")
    assert store.get(JOB) is None


class _Throttled:
    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, name)

        return call


def test_aws_failures_are_translated_naming_the_table() -> None:
    store = IdempotencyStore(_Throttled(), "jobs")
    with pytest.raises(
        TransientError, match="cannot claim job 0123456789abcdef in jobs: ThrottlingException"
    ):
        store.claim(claim(), now=NOW)
    with pytest.raises(TransientError, match="cannot read job 0123456789abcdef in jobs"):
        store.get(JOB)
    with pytest.raises(TransientError, match="release job"):
        store.release(claim())
    with pytest.raises(ValueError, match="starts in progress"):
        store.claim(claim().completed("c"), now=NOW)
