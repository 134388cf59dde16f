"""The head-node side against moto in server mode: trigger -> `vsrflow submit --job-id` -> S3.

The real CLI runs in a child process (as SSM would run it) and reaches the same moto server through
``AWS_ENDPOINT_URL``; the stages run with the local executor (the Slurm chain runs the same
``vsrflow job <stage>`` commands, each wrapped the same way).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import boto3
import pytest

from tests.conftest import run_cli
from tests.mediagen import make_video
from vsrflow.aws.clients import AwsClients
from vsrflow.aws.jobrecords import JobStatus
from vsrflow.aws.status import publish
from vsrflow.aws.trigger import handle_event
from vsrflow.config import Settings
from vsrflow.workflow.job.layout import JobDir

REGION = "us-east-1"
BUCKET = "vsrflow-media-it"
TABLE = "vsrflow-jobs-it"
CLUSTER = "vsr-it"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class World:
    """A moto server with the stack's data stores, a head node and an SNS -> SQS subscriber."""

    def __init__(self, endpoint: str, jobs_root: Path, base_env: dict[str, str]) -> None:
        session = boto3.session.Session(region_name=REGION)
        self.s3 = session.client("s3", endpoint_url=endpoint)
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        session.client("dynamodb", endpoint_url=endpoint).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sns = session.client("sns", endpoint_url=endpoint)
        topic = sns.create_topic(Name="vsrflow-it")["TopicArn"]
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.queue = self.sqs.create_queue(QueueName="notices-it")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=arn["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        tags = [
            {"Key": "parallelcluster:cluster-name", "Value": CLUSTER},
            {"Key": "parallelcluster:node-type", "Value": "HeadNode"},
        ]
        session.client("ec2", endpoint_url=endpoint).run_instances(
            ImageId="ami-12c6146b",
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        self.env = {
            **base_env,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "VSRFLOW_AWS_BUCKET": BUCKET,
            "VSRFLOW_AWS_TABLE": TABLE,
            "VSRFLOW_AWS_TOPIC_ARN": topic,
            "VSRFLOW_AWS_CLUSTER_NAME": CLUSTER,
            "VSRFLOW_AWS_REGION": REGION,
            "VSRFLOW_AWS_ENDPOINT_URL": endpoint,
            "VSRFLOW_AWS_EXECUTOR": "local",
            "VSRFLOW_AWS_JOBS_ROOT": str(jobs_root),
            "VSRFLOW_AWS_CHUNK_SECONDS": "0.2",
            # Tiny outputs still go through the multipart path (one part).
            "VSRFLOW_AWS_MULTIPART_BYTES": "1024",
        }
        self.settings = Settings.from_env(self.env)
        self.clients = AwsClients(self.settings.aws)

    def trigger(self, key: str, body: bytes) -> dict[str, Any]:
        put = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        record = {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "eventTime": "2026-11-21T10:00:00.000Z",
            "s3": {
                "bucket": {"name": BUCKET},
                "object": {
                    "key": quote_plus(key, safe="/"),
                    "size": len(body),
                    "eTag": put["ETag"].strip('"'),
                    "versionId": put["VersionId"],
                },
            },
        }
        (summary,) = handle_event({"Records": [record]}, self.settings, self.clients)["records"]
        assert summary["outcome"] == "submitted", summary
        return dict(summary)

    def status(self, job_id: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job_id}/status.json")["Body"].read()
        return dict(json.loads(body))

    def history(self, job_id: str) -> list[str]:
        """Every state status.json went through, oldest first (the bucket is versioned)."""
        key = f"jobs/{job_id}/status.json"
        versions = self.s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
        states = []
        for v in reversed(versions):  # S3 lists versions newest first (LastModified is per second)
            body = self.s3.get_object(Bucket=BUCKET, Key=key, VersionId=v["VersionId"])["Body"].read()
            states.append(json.loads(body)["text"].split(":")[0])
        return states

    def notices(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])

    def outputs(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="outputs/").get("Contents", [])
        return [o["Key"] for o in listing]


@pytest.fixture(scope="module")
def world(model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with pytest.MonkeyPatch.context() as mp:  # this process's clients (the trigger) too
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                mp.setenv(name, "testing")
            mp.delenv("AWS_PROFILE", raising=False)
            yield World(f"http://127.0.0.1:{port}", tmp_path_factory.mktemp("jobs"), model_env)
    finally:
        server.stop()


def _probe(path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return dict(json.loads(proc.stdout))


@pytest.mark.slow
def test_upload_is_upscaled_delivered_and_announced(world: World, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", size=(64, 48), frames=12, audio_tracks=1)
    key = "uploads/anime/my clip $(touch x) `id`.mp4"
    summary = world.trigger(key, clip.read_bytes())
    job_id = summary["job_id"]
    assert world.status(job_id)["state"] == "queued"

    proc = run_cli(["submit", "--job-id", job_id], world.env, timeout=600)
    assert proc.returncode == 0, proc.stderr

    out_key = "outputs/anime/my clip $(touch x) `id`_x2.mp4"
    assert world.outputs() == [out_key]
    status = world.status(job_id)
    assert status["state"] == "done", status
    assert status["output"] == f"s3://{BUCKET}/{out_key}"
    assert status["text"].startswith("done") and status["done_chunks"] == status["total_chunks"] >= 1
    # queued (trigger, then head node) -> extracting -> upscaling k/N per chunk -> encoding -> done
    steps = [
        state
        for i, state in enumerate(world.history(job_id))
        if i == 0 or state != world.history(job_id)[i - 1]
    ]
    n = status["total_chunks"]
    assert steps[:2] == ["queued", "extracting"] and steps[-2:] == ["encoding", "done"], steps
    assert steps[2:-2] == [f"upscaling {k}/{n}" for k in range(n + 1)], steps
    head = world.s3.head_object(Bucket=BUCKET, Key=out_key)
    assert head["ETag"].strip('"').endswith("-1")  # a (one-part) multipart upload
    meta = head["Metadata"]
    assert meta["job-id"] == job_id and meta["scale"] == "2" and meta["model"] == "realesr-animevideov3"
    assert meta["source-key"] == quote(key, safe="/") and meta["source-version"]
    got = tmp_path / "out.mp4"
    world.s3.download_file(BUCKET, out_key, str(got))
    streams = _probe(got)["streams"]
    video = [s for s in streams if s["codec_type"] == "video"]
    assert (video[0]["width"], video[0]["height"]) == (128, 96)
    assert [s["codec_type"] for s in streams].count("audio") == 1
    notices = world.notices()
    assert [(n["job_id"], n["state"], n["output"]) for n in notices] == [
        (job_id, "done", f"s3://{BUCKET}/{out_key}")
    ]
    # The same command again (SSM retried it) does nothing; `vsrflow status` reads S3.
    again = run_cli(["submit", "--job-id", job_id], world.env, timeout=120)
    assert again.returncode == 0 and "already submitted" in again.stdout, again.stderr
    shown = run_cli(["status", job_id], world.env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert f"{job_id}: done: s3://{BUCKET}/{out_key}" in shown.stdout
    assert world.notices() == []

    # A delivery that failed after a finished encode (output kept, no delivery record, status
    # failed): the same command delivers it again instead of saying "nothing to do".
    job = JobDir(Path(world.env["VSRFLOW_AWS_JOBS_ROOT"]), job_id)
    shutil.copyfile(got, job.read_spec().destination)
    (job.path / "delivery.json").unlink()
    world.s3.delete_object(Bucket=BUCKET, Key=out_key)
    failed = JobStatus(job_id=job_id, state="failed", reason=f"delivery to s3://{BUCKET}/{out_key}: boom")
    assert publish(world.clients, world.settings.aws, BUCKET, failed, replace_terminal=True)
    assert world.status(job_id)["state"] == "failed" and world.outputs() == []
    resumed = run_cli(["submit", "--job-id", job_id], world.env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "delivery resumed" in resumed.stdout, resumed.stdout
    assert world.outputs() == [out_key] and world.status(job_id)["state"] == "done"
    assert (job.path / "delivery.json").is_file()
    assert [n["state"] for n in world.notices()] == ["failed", "done"]


def test_corrupt_upload_fails_with_a_reason_and_no_output(world: World) -> None:
    before = world.outputs()
    summary = world.trigger("uploads/anime/corrupt.mp4", b"this is not a video" * 100)
    job_id = summary["job_id"]
    proc = run_cli(["submit", "--job-id", job_id], world.env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    status = world.status(job_id)
    assert status["state"] == "failed" and status["reason"].startswith("extract:"), status
    # The reason names what the user uploaded, not the staged copy's head-node path.
    assert "s3://" in status["reason"] and "corrupt.mp4" in status["reason"], status
    assert "/source/input" not in status["reason"], status
    assert world.outputs() == before
    (notice,) = world.notices()
    assert (notice["job_id"], notice["state"]) == (job_id, "failed")
    shown = run_cli(["status", job_id], world.env, timeout=120)
    assert shown.returncode == 0 and "failed: extract:" in shown.stdout


def test_an_upload_deleted_before_extract_stops_the_job(world: World, tmp_path: Path) -> None:
    """A delete marker after the event: the job fails saying so; the old version is not upscaled."""
    before = world.outputs()
    clip = make_video(tmp_path / "clip.mp4", size=(32, 24), frames=4)
    summary = world.trigger("uploads/anime/taken-back.mp4", clip.read_bytes())
    job_id = summary["job_id"]
    world.s3.delete_object(Bucket=BUCKET, Key="uploads/anime/taken-back.mp4")  # versioned: a marker
    proc = run_cli(["submit", "--job-id", job_id], world.env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    status = world.status(job_id)
    assert status["state"] == "failed" and "the upload was deleted" in status["reason"], status
    assert "delete marker" in status["reason"], status
    assert world.outputs() == before
    (notice,) = world.notices()
    assert (notice["job_id"], notice["state"]) == (job_id, "failed")


def test_newest_version_wins_the_output(world: World, tmp_path: Path) -> None:
    """v1 then v2 of one key: whichever job finishes last, the output is v2's; v1 ends superseded."""
    key = "uploads/anime/versions.mp4"
    v1 = world.trigger(key, make_video(tmp_path / "v1.mp4", size=(32, 24), frames=6).read_bytes())
    v2 = world.trigger(key, make_video(tmp_path / "v2.mp4", size=(32, 24), frames=3).read_bytes())
    assert v1["job_id"] != v2["job_id"]
    # The newer upload's job finishes first; the older one (e.g. a longer video) after it.
    for job_id in (v2["job_id"], v1["job_id"]):
        proc = run_cli(["submit", "--job-id", job_id], world.env, timeout=300)
        assert proc.returncode == 0, proc.stderr
    out_key = "outputs/anime/versions_x2.mp4"
    head = world.s3.head_object(Bucket=BUCKET, Key=out_key)
    current = world.s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    assert head["Metadata"]["job-id"] == v2["job_id"]
    assert head["Metadata"]["source-version"] == current
    assert world.status(v2["job_id"])["state"] == "done"
    old = world.status(v1["job_id"])
    assert old["state"] == "superseded" and current in old["reason"], old
    notices = {(n["job_id"], n["state"]) for n in world.notices()}
    assert {(v2["job_id"], "done"), (v1["job_id"], "superseded")} <= notices
    # Submitting the superseded job again changes nothing.
    again = run_cli(["submit", "--job-id", v1["job_id"]], world.env, timeout=120)
    assert again.returncode == 0 and world.status(v1["job_id"])["state"] == "superseded"
    assert world.s3.head_object(Bucket=BUCKET, Key=out_key)["Metadata"]["job-id"] == v2["job_id"]


def test_bad_job_ids_never_reach_s3(world: World) -> None:
    proc = run_cli(["submit", "--job-id", "../$(id)"], world.env, timeout=120)
    assert proc.returncode == 2 and "invalid job id" in proc.stderr
    missing = run_cli(["submit", "--job-id", "0123456789abcdef"], world.env, timeout=120)
    assert missing.returncode == 2 and "request.json not found" in missing.stderr


def _objects(world: World, bucket: str = BUCKET) -> dict[str, str]:
    """Every object of ``bucket`` with its ETag (what a job could have touched)."""
    listing = world.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listing}


@pytest.mark.slow
@pytest.mark.parametrize(
    "tamper",
    [
        # Read a video from a bucket the cluster was never configured for.
        {"bucket": "vsrflow-other-it"},
        # Read an object outside the upload prefixes.
        {"key": "private/secret.mp4"},
        # Overwrite another user's output.
        {"output_key": "outputs/anime/victim_x2.mp4"},
        # Write outside the output prefix (a normalising client reads outputs/../x as x).
        {"output_key": "outputs/../index.html"},
    ],
    ids=["other-bucket", "key-outside-uploads", "another-users-output", "dot-dot-output"],
)
def test_a_tampered_request_fails_the_job_and_touches_nothing(
    world: World, tmp_path: Path, tamper: dict[str, str]
) -> None:
    """A node rewrote jobs/<id>/request.json: the head node fails the job and runs nothing."""
    clip = make_video(tmp_path / "clip.mp4", size=(32, 24), frames=4).read_bytes()
    if not _objects(world).get("outputs/anime/victim_x2.mp4"):
        world.s3.put_object(Bucket=BUCKET, Key="outputs/anime/victim_x2.mp4", Body=b"the victim's output")
        world.s3.put_object(Bucket=BUCKET, Key="private/secret.mp4", Body=clip)
        world.s3.create_bucket(Bucket="vsrflow-other-it")
        world.s3.put_object(Bucket="vsrflow-other-it", Key="uploads/anime/tampered.mp4", Body=clip)
    summary = world.trigger("uploads/anime/tampered.mp4", clip)
    job_id = summary["job_id"]
    world.notices()  # drop earlier tests' notices
    key = f"jobs/{job_id}/request.json"
    request = json.loads(world.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    world.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({**request, **tamper}).encode())
    before = {b: _objects(world, b) for b in (BUCKET, "vsrflow-other-it")}

    proc = run_cli(["submit", "--job-id", job_id], world.env, timeout=120)

    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    field = next(iter(tamper))
    status = world.status(job_id)
    assert status["state"] == "failed", status
    assert status["reason"].startswith(f"submit: s3://{BUCKET}/{key}: refused"), status
    assert field in status["reason"] or "would not start a job" in status["reason"], status
    (notice,) = world.notices()
    assert (notice["job_id"], notice["state"]) == (job_id, "failed")
    # Nothing ran: no job directory, nothing written anywhere but the job's own status.
    assert not (Path(world.env["VSRFLOW_AWS_JOBS_ROOT"]) / job_id).exists()
    after = {b: _objects(world, b) for b in (BUCKET, "vsrflow-other-it")}
    status_key = f"jobs/{job_id}/status.json"
    assert {k: v for k, v in after[BUCKET].items() if k != status_key} == {
        k: v for k, v in before[BUCKET].items() if k != status_key
    }
    assert after["vsrflow-other-it"] == before["vsrflow-other-it"]
    victim = world.s3.get_object(Bucket=BUCKET, Key="outputs/anime/victim_x2.mp4")["Body"].read()
    assert victim == b"the victim's output"


@pytest.mark.slow
def test_status_finds_the_job_of_an_upload_by_its_key(world: World, tmp_path: Path) -> None:
    """`vsrflow status s3://bucket/key`: the job the trigger gave the upload's current version."""
    clip = make_video(tmp_path / "clip.mp4", size=(64, 48), frames=12)
    key = "uploads/anime/status by key.mp4"
    job_id = world.trigger(key, clip.read_bytes())["job_id"]
    proc = run_cli(["status", f"s3://{BUCKET}/{key}"], world.env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{job_id}: queued"), proc.stdout
    # A newer version of the same key is another job: status follows the current one.
    newer = world.trigger(key, clip.read_bytes() + b"\0")["job_id"]
    assert newer != job_id
    proc = run_cli(["status", f"s3://{BUCKET}/{key}"], world.env)
    assert proc.stdout.startswith(f"{newer}: "), proc.stdout
    # A key no upload prefix takes: exit 2 naming where uploads go.
    world.s3.put_object(Bucket=BUCKET, Key="elsewhere/x.mp4", Body=b"x")
    proc = run_cli(["status", f"s3://{BUCKET}/elsewhere/x.mp4"], world.env)
    assert proc.returncode == 2 and "no job starts from this key" in proc.stderr, proc.stderr
    assert f"s3://{BUCKET}/uploads/<preset>/" in proc.stderr
