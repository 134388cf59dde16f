"""The S3 trigger against moto (in-process): every record, idempotency, bad input, retries."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from vsrflow.aws.clients import AwsClients
from vsrflow.aws.jobrecords import read_request, read_status
from vsrflow.aws.status import mark_command_failed
from vsrflow.aws.trigger import handle_event
from vsrflow.aws.uploads import verify_request
from vsrflow.config import AwsSettings, Settings
from vsrflow.errors import TransientError
from vsrflow.workflow.job.identity import compute_job_id, preset_choice, s3_identity

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "events"
BUCKET = "vsrflow-media-test"
TABLE = "vsrflow-jobs"
CLUSTER = "vsr-test"
REGION = "us-east-1"


class Stack:
    """One test's corner of a module-wide moto: its own bucket, table, topic, queue and cluster name."""

    count = 0

    def __init__(self, **aws_overrides: Any) -> None:
        Stack.count += 1
        n = Stack.count
        self.bucket, table, self.cluster = f"{BUCKET}-{n}", f"{TABLE}-{n}", f"{CLUSTER}-{n}"
        self.table = table
        self.s3 = boto3.client("s3", region_name=REGION)
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.ddb = ddb
        sns = boto3.client("sns", region_name=REGION)
        self.topic = sns.create_topic(Name=f"vsrflow-events-{n}")["TopicArn"]
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.queue = self.sqs.create_queue(QueueName=f"notices-{n}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])
        sns.subscribe(
            TopicArn=self.topic,
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        aws = AwsSettings(
            bucket=self.bucket, table=table, topic_arn=self.topic, cluster_name=self.cluster, region=REGION
        )
        self.settings = Settings(
            cache_dir=Path("/nonexistent"), aws=AwsSettings(**{**aws.__dict__, **aws_overrides})
        )
        self.clients = AwsClients(self.settings.aws)
        self.sent: list[list[str]] = []
        real_send = self.clients.ssm.send_command

        def send_command(**kwargs: Any) -> Any:
            self.sent.append(list(kwargs["InstanceIds"]))
            return real_send(**kwargs)

        self.clients.ssm.send_command = send_command
        self._baseline = {c["CommandId"] for c in self.ssm.list_commands()["Commands"]}

    def head_node(self, cluster: str | None = None, node_type: str = "HeadNode") -> str:
        cluster = cluster or self.cluster
        tags = [
            {"Key": "parallelcluster:cluster-name", "Value": cluster},
            {"Key": "parallelcluster:node-type", "Value": node_type},
        ]
        out = self.ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        return str(out["Instances"][0]["InstanceId"])

    def upload(self, key: str, body: bytes = b"\x00" * 2048) -> dict[str, Any]:
        out = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return {
            "bucket": self.bucket,
            "key": key,
            "size": len(body),
            "etag": out["ETag"].strip('"'),
            "version": out.get("VersionId"),
        }

    def commands(self) -> list[dict[str, Any]]:
        """Commands sent during this test."""
        return [c for c in self.ssm.list_commands()["Commands"] if c["CommandId"] not in self._baseline]

    def notices(self) -> list[dict[str, Any]]:
        msgs = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in msgs]

    def handle(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        return list(handle_event(event, self.settings, self.clients)["records"])

    def job_objects(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="jobs/").get("Contents", [])
        return [o["Key"] for o in listing]


def record(obj: dict[str, Any], name: str = "ObjectCreated:Put") -> dict[str, Any]:
    """An S3 record in the recorded shape of tests/fixtures/events/s3-put.json for ``obj``."""
    rec = copy.deepcopy(json.loads((EVENTS / "s3-put.json").read_text())["Records"][0])
    rec["eventName"] = name
    rec["s3"]["bucket"]["name"] = obj.get("bucket", BUCKET)
    rec["s3"]["object"] = {"key": quote_plus(obj["key"], safe="/"), "sequencer": "0055AED6DCD90281E5"}
    if "size" in obj:
        rec["s3"]["object"].update(size=obj["size"], eTag=obj["etag"])
    if obj.get("version"):
        rec["s3"]["object"]["versionId"] = obj["version"]
    return rec


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


@pytest.fixture(scope="module")
def _moto() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            mp.setenv(name, "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield


@pytest.fixture
def stack(_moto: None) -> Stack:
    return Stack()


def test_upload_becomes_one_submitted_job(stack: Stack) -> None:
    head = stack.head_node()
    stack.head_node(cluster="other-cluster")  # another cluster's head node: never picked
    stack.head_node(node_type="Compute")
    obj = stack.upload("uploads/anime/clip.mp4")
    (summary,) = stack.handle(event(record(obj)))
    assert summary["outcome"] == "submitted", summary
    job_id = summary["job_id"]
    assert summary["head_node"] == head
    (command,) = stack.commands()
    assert command["DocumentName"] == "AWS-RunShellScript"
    # moto lists every instance under a command sent without Targets; the request named only one.
    assert stack.sent == [[head]]
    assert command["Parameters"]["commands"] == [f"vsrflow submit --job-id {job_id}"]
    request = read_request(stack.s3, stack.bucket, job_id)
    assert (request.key, request.version_id, request.size) == (obj["key"], obj["version"], obj["size"])
    assert (request.preset, request.scale, request.output_key) == ("anime", 2.0, "outputs/anime/clip_x2.mp4")
    # The head node's re-check (same derivation) accepts exactly what the trigger wrote.
    assert verify_request(stack.settings.aws, request, "request.json") == request
    status = read_status(stack.s3, stack.bucket, job_id)
    assert status is not None and status.state == "queued"
    assert status.detail["command_id"] == command["CommandId"]
    item = stack.ddb.get_item(TableName=stack.table, Key={"job_id": {"S": job_id}})["Item"]
    assert item["state"]["S"] == "submitted" and int(item["expires_at"]["N"]) > 0


def test_every_record_and_redelivery_gives_one_job_each(stack: Stack) -> None:
    stack.head_node()
    a = stack.upload("uploads/anime/a.mp4")
    b = stack.upload("uploads/fidelity/b.mkv")
    first = stack.handle(event(record(a), record(b)))
    assert [s["outcome"] for s in first] == ["submitted", "submitted"]
    again = stack.handle(event(record(a), record(b)))
    assert [s["outcome"] for s in again] == ["duplicate", "duplicate"]
    assert [s["job_id"] for s in again] == [s["job_id"] for s in first]
    assert len(stack.commands()) == 2
    # A new version of the same key is a new job.
    a2 = stack.upload("uploads/anime/a.mp4", b"\x01" * 100)
    (third,) = stack.handle(event(record(a2)))
    assert third["outcome"] == "submitted" and third["job_id"] != first[0]["job_id"]


HOSTILE_KEYS = (
    "uploads/anime/with space.mp4",
    "uploads/anime/ünïcødé 東京.mp4",
    "uploads/anime/a+b.mp4",
    'uploads/anime/quote\'s "double".mp4',
    "uploads/anime/semi;colon; rm -rf x.mp4",
    "uploads/anime/$(touch pwned).mp4",
    "uploads/anime/`id`.mp4",
)


def test_hostile_keys_never_reach_the_command(stack: Stack) -> None:
    stack.head_node()
    objs = [stack.upload(key) for key in HOSTILE_KEYS]
    summaries = stack.handle(event(*(record(o) for o in objs)))
    assert [s["outcome"] for s in summaries] == ["submitted"] * len(HOSTILE_KEYS), summaries
    sent = {c["Parameters"]["commands"][0] for c in stack.commands()}
    assert sent == {f"vsrflow submit --job-id {s['job_id']}" for s in summaries}
    for key, summary in zip(HOSTILE_KEYS, summaries, strict=True):
        assert read_request(stack.s3, stack.bucket, summary["job_id"]).key == key


def test_bad_uploads_fail_with_a_status_and_no_command(stack: Stack) -> None:
    stack.head_node()
    stack.settings = Settings(
        cache_dir=Path("/x"), aws=AwsSettings(**{**stack.settings.aws.__dict__, "max_object_bytes": 1000})
    )
    big = stack.upload("uploads/anime/big.mp4", b"\x00" * 1001)
    text = stack.upload("uploads/anime/notes.txt")
    unknown = stack.upload("uploads/cartoons/x.mp4")
    flat = stack.upload("uploads/x.mp4")
    empty = stack.upload("uploads/anime/empty.mp4", b"")
    gone = stack.upload("uploads/anime/gone.mp4")
    stack.s3.delete_object(Bucket=stack.bucket, Key=gone["key"], VersionId=gone["version"])
    summaries = stack.handle(event(*(record(o) for o in (big, text, unknown, flat, empty, gone))))
    reasons = {s["key"]: s["reason"] for s in summaries}
    assert all(s["outcome"] == "rejected" for s in summaries), summaries
    assert "larger than the limit of 1000 bytes" in reasons[big["key"]]
    assert "unsupported file type '.txt'" in reasons[text["key"]]
    assert "unknown preset folder 'cartoons'" in reasons[unknown["key"]]
    assert "no preset folder" in reasons[flat["key"]]
    assert "empty" in reasons[empty["key"]]
    assert "no longer exists" in reasons[gone["key"]]
    assert stack.commands() == []
    for s in summaries:
        status = read_status(stack.s3, stack.bucket, s["job_id"])
        assert status is not None and status.state == "failed" and status.reason == s["reason"]
    notices = stack.notices()
    assert {n["state"] for n in notices} == {"failed"} and len(notices) >= 1


def test_not_ours_is_ignored_without_records(stack: Stack) -> None:
    stack.head_node()
    out = stack.upload("outputs/anime/clip_x2.mp4")
    job = stack.upload("jobs/0123456789abcdef/status.json")
    folder = stack.upload("uploads/anime/")
    removed = record({"bucket": stack.bucket, "key": "uploads/anime/old.mp4"}, name="ObjectRemoved:Delete")
    summaries = stack.handle(event(record(out), record(job), record(folder), removed))
    assert [s["outcome"] for s in summaries] == ["ignored"] * 4
    assert "outside the upload prefixes" in summaries[0]["reason"]
    assert "ObjectRemoved:Delete" in summaries[3]["reason"]
    assert stack.commands() == [] and stack.job_objects() == ["jobs/0123456789abcdef/status.json"]


@pytest.mark.parametrize(
    "bad", [["not", "an", "event"], {"Records": "nope"}, {"Records": [{"eventName": "x"}]}]
)
def test_malformed_events_return_without_retry(stack: Stack, bad: Any) -> None:
    summaries = stack.handle(bad)
    assert [s["outcome"] for s in summaries] == ["rejected"]
    assert stack.commands() == [] and stack.job_objects() == []


def test_test_event_does_nothing(stack: Stack) -> None:
    assert stack.handle(json.loads((EVENTS / "s3-test-event.json").read_text())) == []


def test_no_head_node_is_transient_and_the_retry_submits(stack: Stack) -> None:
    obj = stack.upload("uploads/anime/clip.mp4")
    stopped = stack.head_node()
    stack.ec2.stop_instances(InstanceIds=[stopped])
    with pytest.raises(TransientError, match="no running head node"):
        stack.handle(event(record(obj)))
    # The claim was released: once the head node runs, the retried event submits the job.
    head = stack.head_node()
    (summary,) = stack.handle(event(record(obj)))
    assert summary["outcome"] == "submitted" and summary["head_node"] == head


class _FailingSsm:
    def __init__(self, code: str) -> None:
        self.code = code

    def send_command(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": self.code, "Message": "nope"}}, "SendCommand")


@pytest.mark.parametrize("code", ["InvalidInstanceId", "ThrottlingException"])
def test_ssm_not_ready_or_throttled_is_transient(stack: Stack, code: str) -> None:
    stack.head_node()
    obj = stack.upload("uploads/anime/clip.mp4")
    stack.clients._cache["ssm"] = _FailingSsm(code)
    with pytest.raises(TransientError):
        stack.handle(event(record(obj)))
    items = stack.ddb.scan(TableName=stack.table)["Items"]
    assert items == []  # released for the retry


def test_a_held_claim_makes_the_redelivery_retry(stack: Stack) -> None:
    stack.head_node()
    obj = stack.upload("uploads/anime/clip.mp4")
    (summary,) = stack.handle(event(record(obj)))
    stack.ddb.update_item(
        TableName=stack.table,
        Key={"job_id": {"S": summary["job_id"]}},
        UpdateExpression="SET #s = :c, claim_until = :t",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":c": {"S": "claimed"}, ":t": {"N": "99999999999"}},
    )
    with pytest.raises(TransientError, match="another invocation"):
        stack.handle(event(record(obj)))
    assert len(stack.commands()) == 1


def test_one_bad_record_does_not_stop_the_others(stack: Stack) -> None:
    stack.head_node()
    good = stack.upload("uploads/anime/good.mp4")
    bad = stack.upload("uploads/anime/bad.exe")
    summaries = stack.handle(event(record(bad), {"eventName": "ObjectCreated:Put"}, record(good)))
    assert [s["outcome"] for s in summaries] == ["rejected", "rejected", "submitted"]


def _sqs(*bodies: str) -> dict[str, Any]:
    """An SQS batch as Lambda's event source mapping delivers it (message ids m0, m1, ...)."""
    return {
        "Records": [
            {"eventSource": "aws:sqs", "messageId": f"m{i}", "body": body} for i, body in enumerate(bodies)
        ]
    }


def test_sqs_batch_reports_only_the_failed_messages(stack: Stack) -> None:
    """S3 -> SQS -> Lambda: a bad body or a retryable record never takes its siblings down."""
    stack.head_node()
    held = stack.upload("uploads/anime/held.mp4")
    (first,) = stack.handle(event(record(held)))
    stack.ddb.update_item(  # another invocation holds this job's claim: retry later
        TableName=stack.table,
        Key={"job_id": {"S": first["job_id"]}},
        UpdateExpression="SET #s = :c, claim_until = :t",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":c": {"S": "claimed"}, ":t": {"N": "99999999999"}},
    )
    good = stack.upload("uploads/anime/good.mp4")
    batch = _sqs("{not json", json.dumps(event(record(good))), json.dumps(event(record(held))))
    result = handle_event(batch, stack.settings, stack.clients)  # returns: never fails the batch
    assert result["batchItemFailures"] == [{"itemIdentifier": "m2"}]
    outcomes = {s["message_id"]: s["outcome"] for s in result["records"]}
    assert outcomes == {"m0": "rejected", "m1": "submitted", "m2": "error"}, result["records"]
    assert len(stack.commands()) == 2  # the first direct delivery of held + good


def test_command_failure_marks_the_job_failed_once(stack: Stack) -> None:
    stack.head_node()
    obj = stack.upload("uploads/anime/clip.mp4")
    (summary,) = stack.handle(event(record(obj)))
    stderr = "\n".join(f"line {i}" for i in range(20)) + "\nvsrflow: error: no space left\n"
    assert mark_command_failed(
        stack.settings.aws,
        summary["job_id"],
        exit_code=1,
        stderr=stderr,
        command_id="c-1",
        clients=stack.clients,
    )
    status = read_status(stack.s3, stack.bucket, summary["job_id"])
    assert status is not None and status.state == "failed"
    assert status.reason is not None and status.reason.startswith(
        "head node command failed (exit 1): line 13"
    )
    assert status.reason.endswith("vsrflow: error: no space left") and "line 12" not in status.reason
    assert status.source == f"s3://{stack.bucket}/{obj['key']}"
    # A second report keeps the first reason and sends no second notice.
    assert not mark_command_failed(
        stack.settings.aws, summary["job_id"], exit_code=2, stderr="other", clients=stack.clients
    )
    notices = stack.notices()
    assert [(n["job_id"], n["state"]) for n in notices] == [(summary["job_id"], "failed")]


class _ThrottledTable:
    def put_item(self, **_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
        )


def test_throttled_idempotency_table_is_transient(stack: Stack) -> None:
    stack.head_node()
    obj = stack.upload("uploads/anime/clip.mp4")
    stack.clients._cache["dynamodb"] = _ThrottledTable()
    with pytest.raises(TransientError, match="ProvisionedThroughputExceededException"):
        stack.handle(event(record(obj)))
    assert stack.commands() == []


def command_event(command_id: str, instance_id: str, status: str = "Failed") -> dict[str, Any]:
    """An EventBridge SSM invocation status change in the recorded shape of ssm-command-failed.json."""
    ev: dict[str, Any] = json.loads((EVENTS / "ssm-command-failed.json").read_text())
    ev["detail"].update({"command-id": command_id, "instance-id": instance_id, "status": status})
    ev["resources"] = [f"arn:aws:ec2:{REGION}:123456789012:instance/{instance_id}"]
    return ev


def test_ssm_command_failure_event_fails_the_job_and_frees_it_for_a_retry(stack: Stack) -> None:
    head = stack.head_node()
    obj = stack.upload("uploads/anime/clip.mp4")
    (summary,) = stack.handle(event(record(obj)))
    job_id, command_id = summary["job_id"], summary["command_id"]
    # moto runs no command: its invocation reads Success with empty stderr. The real agent's
    # failure output is laid over moto's answer (Comment, ids and the rest are moto's).
    real_get = stack.clients.ssm.get_command_invocation

    def get_command_invocation(**kwargs: Any) -> Any:
        out = dict(real_get(**kwargs))
        out.update(Status="Failed", ResponseCode=2, StandardErrorContent="boom\nvsrflow: error: no Slurm\n")
        return out

    stack.clients.ssm.get_command_invocation = get_command_invocation
    # Not a failure, and not our command: nothing happens.
    (ok,) = stack.handle(command_event(command_id, head, status="Success"))
    assert ok["outcome"] == "ignored"
    (failed,) = stack.handle(command_event(command_id, head))
    assert failed["outcome"] == "command_failed" and failed["job_id"] == job_id, failed
    status = read_status(stack.s3, stack.bucket, job_id)
    assert status is not None and status.state == "failed"
    assert status.reason == "head node command failed (exit 2): boom | vsrflow: error: no Slurm"
    assert status.detail.get("command_id") == command_id
    assert [(n["job_id"], n["state"]) for n in stack.notices()] == [(job_id, "failed")]
    # The idempotency record is released: the redelivered upload event starts the job again.
    item = stack.ddb.get_item(TableName=stack.table, Key={"job_id": {"S": job_id}})
    assert "Item" not in item
    (again,) = stack.handle(event(record(obj)))
    assert again["outcome"] == "submitted" and again["job_id"] == job_id
    status = read_status(stack.s3, stack.bucket, job_id)
    assert status is not None and status.state == "queued"
    # A late duplicate of the old command's failure no longer touches the new submission.
    (stale,) = stack.handle(command_event(command_id, head))
    assert stale["outcome"] == "ignored" and "newer command" in stale["reason"]
    status = read_status(stack.s3, stack.bucket, job_id)
    assert status is not None and status.state == "queued"


def test_ssm_event_of_another_command_is_ignored(stack: Stack) -> None:
    head = stack.head_node()
    other = stack.ssm.send_command(
        InstanceIds=[head], DocumentName="AWS-RunShellScript", Parameters={"commands": ["uptime"]}
    )["Command"]["CommandId"]
    (summary,) = stack.handle(command_event(other, head, status="TimedOut"))
    assert summary["outcome"] == "ignored" and "not a vsrflow command" in summary["reason"]
    assert stack.job_objects() == [] and stack.notices() == []


def test_rejected_job_id_uses_the_preset_folder_not_the_parent_folder(stack: Stack) -> None:
    stack.head_node()
    unknown = stack.upload("uploads/cartoons/season 1/x.mp4")
    text = stack.upload("uploads/anime/extras/notes.txt")
    summaries = stack.handle(event(record(unknown), record(text)))
    assert [s["outcome"] for s in summaries] == ["rejected", "rejected"], summaries
    for obj, folder in ((unknown, "cartoons"), (text, "anime")):
        (summary,) = [s for s in summaries if s["key"] == obj["key"]]
        expected = compute_job_id(
            s3_identity(stack.bucket, obj["key"], obj["version"]), model=preset_choice(folder), scale=None
        )
        assert summary["job_id"] == expected
        status = read_status(stack.s3, stack.bucket, summary["job_id"])
        assert status is not None and status.state == "failed"


def test_suffix_case_does_not_matter(stack: Stack) -> None:
    stack.head_node()
    (summary,) = stack.handle(event(record(stack.upload("uploads/anime/clip.Mp4"))))
    assert summary["outcome"] == "submitted", summary
    request = read_request(stack.s3, stack.bucket, summary["job_id"])
    # Accepted whatever the case; the typed suffix stays in the name, so clip.mp4 cannot collide.
    assert request.output_key == "outputs/anime/clip_x2.Mp4.mp4"


def test_two_uploads_never_share_an_output_key(stack: Stack) -> None:
    stack.head_node()
    keys = [
        "uploads/anime/x.mp4",
        "uploads/anime/x.MP4",
        "uploads/anime/x_x2.MP4.mp4",
        "uploads/anime/d/x.mp4",
    ]
    summaries = stack.handle(event(*(record(stack.upload(k)) for k in keys)))
    assert [s["outcome"] for s in summaries] == ["submitted"] * len(keys), summaries
    outputs = [read_request(stack.s3, stack.bucket, s["job_id"]).output_key for s in summaries]
    assert len(set(outputs)) == len(keys), outputs
    assert outputs[0] == "outputs/anime/x_x2.mp4"


def test_keys_that_would_fail_only_at_delivery_are_refused_up_front(stack: Stack) -> None:
    stack.head_node()
    double = stack.upload("uploads/anime//x.mp4")  # S3 keeps '//': another object than anime/x.mp4
    # 1000 bytes of key is legal for the upload; its output key (outputs/.._x2.mp4) is not.
    long_key = "uploads/anime/" + "é" * 503 + ".mp4"
    assert len(long_key.encode()) == 1024
    long_ = stack.upload(long_key)
    summaries = stack.handle(event(record(double), record(long_)))
    reasons = {s["key"]: s["reason"] for s in summaries}
    assert all(s["outcome"] == "rejected" for s in summaries), summaries
    assert "empty path segment" in reasons[double["key"]]
    assert "S3 allows 1024" in reasons[long_key] and "shorten" in reasons[long_key]
    assert stack.commands() == []
