"""status.json writes are conditional on what they decided on: a racing writer is never overwritten
blindly (S3 If-Match / If-None-Match, against moto's S3, which enforces both)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from vsrflow.aws.jobrecords import JobStatus, read_status, write_status

BUCKET = "media-bucket"
JOB = "0123456789abcdef"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


class RacingS3:
    """An S3 client on which another writer puts ``racer`` right after our first status read."""

    def __init__(self, s3: Any, racer: JobStatus) -> None:
        self.s3, self.racer, self.raced = s3, racer, False

    def get_object(self, **kwargs: Any) -> Any:
        try:
            return self.s3.get_object(**kwargs)  # our read (possibly: no such key)...
        finally:
            if not self.raced:  # ...then the other writer gets in before our write
                self.raced = True
                write_status(self.s3, BUCKET, self.racer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)


def test_first_write_and_terminal_states_are_kept(s3: Any) -> None:
    assert write_status(s3, BUCKET, JobStatus(job_id=JOB, state="queued"))
    assert write_status(s3, BUCKET, JobStatus(job_id=JOB, state="failed", reason="extract: bad"))
    assert not write_status(s3, BUCKET, JobStatus(job_id=JOB, state="encoding"))
    assert read_status(s3, BUCKET, JOB).state == "failed"  # type: ignore[union-attr]
    assert write_status(s3, BUCKET, JobStatus(job_id=JOB, state="queued"), replace_terminal=True)


def test_a_racing_terminal_write_is_not_overwritten(s3: Any) -> None:
    write_status(s3, BUCKET, JobStatus(job_id=JOB, state="queued"))
    racing = RacingS3(s3, JobStatus(job_id=JOB, state="failed", reason="head node: boom"))
    # We read "queued" (fine to replace); the head node then fails the job; our write must notice.
    assert not write_status(racing, BUCKET, JobStatus(job_id=JOB, state="extracting"))
    status = read_status(s3, BUCKET, JOB)
    assert status is not None and status.state == "failed" and status.reason == "head node: boom"


def test_only_over_decides_on_what_the_racer_wrote(s3: Any) -> None:
    write_status(s3, BUCKET, JobStatus(job_id=JOB, state="queued"))
    racing = RacingS3(s3, JobStatus(job_id=JOB, state="extracting"))
    noted = JobStatus(job_id=JOB, state="queued", detail={"command_id": "c-1"})
    assert not write_status(racing, BUCKET, noted, only_over=lambda cur: cur.state == "queued")
    assert read_status(s3, BUCKET, JOB).state == "extracting"  # type: ignore[union-attr]


def test_creation_race_is_caught_too(s3: Any) -> None:
    racing = RacingS3(s3, JobStatus(job_id=JOB, state="failed", reason="first"))
    # No status yet when we read (If-None-Match: *), but the racer creates a terminal one.
    assert not write_status(racing, BUCKET, JobStatus(job_id=JOB, state="queued"))
    assert read_status(s3, BUCKET, JOB).reason == "first"  # type: ignore[union-attr]
