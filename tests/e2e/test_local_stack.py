"""End to end on the local stack: S3 upload -> event -> Lambda handler -> SSM -> head node -> Slurm -> S3.

One local stack for the module (``vsrflow local up``: a detached daemon with moto in server mode,
the stack deployed from ``infra/cfn/vsrflow.yaml``, the Lambda runner and the SSM agent shim, and
the local Slurm emulator with real daemons). Every job runs the real chain: the SSM command
``vsrflow submit --job-id``, then sbatch extract -> upscale array -> encode (uploads the output)
-> finalize.

Clips: 64x48 (the burst: 32x24), 12 frames, one audio track, model realesr-animevideov3 (preset
anime, x2). Head-node commands get ``OMP_NUM_THREADS=1``: several jobs share two cores, and
OpenMP threads spin-waiting for each other doubled the burst's time on such a box.
Measured on a loaded 2-core box: up 4 s, one upload to done 9-11 s, 20 uploads at once 60-70 s.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import REPO, run_cli
from tests.mediagen import decode_rgb, make_video
from vsrflow.localstack.stack import find_job
from vsrflow.localstack.state import INVOCATIONS_FILE, LOG_FILE, StackState

# Slow (real Slurm + moto server + Lambda runner: the whole event path): `make test-fast` leaves these out.
# 900 s: twenty jobs through Slurm take minutes on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TEMPLATE = REPO / "infra" / "cfn" / "vsrflow.yaml"
FRAMES = 12
SIZE = (64, 48)
# Generous: a poll deadline costs nothing when the job is quick, and CI machines are loaded.
JOB_TIMEOUT = 300.0
COMMAND_RE = re.compile(r"vsrflow submit --job-id [0-9a-f]{16}")


@dataclass
class Stack:
    """A running local stack seen from outside: clients on its endpoint, its records."""

    state_dir: Path
    state: StackState
    notice_queue: str = ""
    notices: list[dict[str, Any]] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.state.region
        ).client(service, endpoint_url=self.state.endpoint, config=Config(s3={"addressing_style": "path"}))

    @property
    def bucket(self) -> str:
        return self.state.outputs["BucketName"]

    def log_tail(self, lines: int = 40) -> str:
        text = (self.state_dir / LOG_FILE).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def invocations(self) -> list[dict[str, Any]]:
        path = self.state_dir / INVOCATIONS_FILE
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    def outcomes(self, key: str) -> list[str]:
        """Outcomes the handler reported for ``key`` (decoded), in call order."""
        out = []
        for entry in self.invocations():
            for record in (entry.get("result") or {}).get("records", []):
                if record.get("key") == key:
                    out.append(record["outcome"])
        return out

    def subscribe(self) -> None:
        """An SQS queue subscribed to the stack's topic: every SNS notice lands there."""
        sqs, sns = self.client("sqs"), self.client("sns")
        self.notice_queue = sqs.create_queue(QueueName=f"notices-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.notice_queue, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(TopicArn=self.state.outputs["TopicArn"], Protocol="sqs", Endpoint=arn["QueueArn"])

    def drain_notices(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        while True:
            got = sqs.receive_message(QueueUrl=self.notice_queue, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return self.notices
            for m in got:
                self.notices.append(json.loads(json.loads(m["Body"])["Message"]))
                sqs.delete_message(QueueUrl=self.notice_queue, ReceiptHandle=m["ReceiptHandle"])

    def status(self, job_id: str) -> dict[str, Any] | None:
        s3 = self.client("s3")
        try:
            body = s3.get_object(Bucket=self.bucket, Key=f"jobs/{job_id}/status.json")["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        data: dict[str, Any] = json.loads(body)
        return data

    def wait_jobs(
        self, keys: list[str], timeout: float = JOB_TIMEOUT
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        """key -> (job id, terminal status), waiting for every key's job to finish."""
        deadline = time.monotonic() + timeout
        jobs: dict[str, str] = {}
        done: dict[str, tuple[str, dict[str, Any]]] = {}
        while len(done) < len(keys):
            for key in keys:
                if key in done:
                    continue
                job = jobs.get(key) or find_job(self.state_dir, key)
                if job is None:
                    continue
                jobs[key] = job
                status = self.status(job)
                if status and status["state"] in ("done", "failed"):
                    done[key] = (job, status)
            if time.monotonic() > deadline:
                left = {
                    k: jobs.get(k) and (self.status(jobs[k]) or {}).get("state")
                    for k in keys
                    if k not in done
                }
                raise AssertionError(f"jobs not finished after {timeout}s: {left}\n{self.log_tail()}")
            time.sleep(0.5)
        return done

    def commands(self) -> list[dict[str, Any]]:
        ssm = self.client("ssm")
        return [c for page in ssm.get_paginator("list_commands").paginate() for c in page["Commands"]]

    def commands_of(self, job_id: str) -> list[dict[str, Any]]:
        return [c for c in self.commands() if c.get("Comment") == f"vsrflow job {job_id}"]

    def executed(self) -> list[dict[str, Any]]:
        """The agent's own record of every command it ran."""
        return [json.loads(p.read_text()) for p in sorted((self.state_dir / "agent").glob("*.json"))]


def _stack(
    tmp_path_factory: pytest.TempPathFactory, env: dict[str, str], name: str, *args: str
) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp(name)
    base = ["local", "--state-dir", str(state_dir)]
    t0 = time.monotonic()
    proc = run_cli([*base, "up", "--template", str(TEMPLATE), *args], env, timeout=240)
    try:
        log = (state_dir / LOG_FILE).read_text(errors="replace") if (state_dir / LOG_FILE).exists() else ""
        assert proc.returncode == 0, f"local up failed:\n{proc.stdout}\n{proc.stderr}\n{log[-4000:]}"
        assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in proc.stdout, proc.stdout
        state = StackState.load(state_dir)
        assert state is not None and state.status == "ready", state
        print(f"\n{name}: local up in {time.monotonic() - t0:.1f}s")
        stack = Stack(state_dir, state)
        stack.subscribe()
        yield stack
    finally:
        down = run_cli([*base, "down"], env, timeout=120)
        assert down.returncode == 0, f"local down failed:\n{down.stdout}\n{down.stderr}"
        after = run_cli([*base, "status"], env, timeout=60)
        assert after.returncode == 1 and "down" in after.stdout, after.stdout


@pytest.fixture(scope="module")
def env(model_env: dict[str, str]) -> dict[str, str]:
    return dict(model_env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[Stack]:
    args = ("--retry-delay", "1", "--head-env", "OMP_NUM_THREADS=1")
    yield from _stack(tmp_path_factory, env, "local-stack", *args)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", size=SIZE, frames=FRAMES, audio_tracks=1)


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """For the burst: a quarter of the pixels (the upscale is most of a job's CPU after start-up)."""
    return make_video(
        tmp_path_factory.mktemp("small") / "small.mp4", size=(32, 24), frames=FRAMES, audio_tracks=1
    )


def test_clip_with_audio_comes_out_upscaled(
    stack: Stack, clip: Path, env: dict[str, str], tmp_path: Path
) -> None:
    t0 = time.monotonic()
    # The documented path: `vsrflow local upload` (the aws CLI works the same way, see README).
    upload = ["upload", str(clip), "--preset", "anime", "--wait"]
    proc = run_cli(["local", "--state-dir", str(stack.state_dir), *upload], env, timeout=JOB_TIMEOUT + 30)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{stack.log_tail()}"
    print(f"\nupload -> done through Slurm: {time.monotonic() - t0:.1f}s")
    key = "uploads/anime/clip.mp4"
    ((job_id, status),) = stack.wait_jobs([key]).values()
    assert status["state"] == "done", status
    # --wait shows the job's state changes as they happen, the last one being done.
    changes = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"job {job_id}: ")]
    assert len(changes) >= 2 and changes[-1].startswith(f"job {job_id}: done"), proc.stderr
    out_key = "outputs/anime/clip_x2.mp4"
    assert f"s3://{stack.bucket}/{out_key}" in proc.stdout, proc.stdout

    s3 = stack.client("s3")
    head = s3.head_object(Bucket=stack.bucket, Key=out_key)
    assert head["Metadata"].get("job-id") == job_id, head["Metadata"]
    out = tmp_path / "clip_x2.mp4"
    s3.download_file(stack.bucket, out_key, str(out))
    pts, images, kinds = decode_rgb(out)
    assert kinds == ["video", "audio"]
    assert len(pts) == FRAMES and images[0].shape == (SIZE[1] * 2, SIZE[0] * 2, 3)

    # The head node really ran it through Slurm, and moto's SSM record says so.
    (command,) = stack.commands_of(job_id)
    assert command["Parameters"]["commands"] == [f"vsrflow submit --job-id {job_id}"]
    assert command["Status"] == "Success", command
    inv = stack.client("ssm").get_command_invocation(
        CommandId=command["CommandId"], InstanceId=stack.state.head_node
    )
    assert inv["Status"] == "Success" and inv["ResponseCode"] == 0, inv
    assert "submitted to Slurm" in inv["StandardOutputContent"], inv["StandardOutputContent"]
    job_dir = Path(stack.state.head_env["VSRFLOW_AWS_JOBS_ROOT"]) / job_id
    slurm_ids = json.loads((job_dir / "logs" / "slurm.json").read_text())
    assert all(slurm_ids.get(k) for k in ("extract", "array", "encode", "finalize")), slurm_ids

    notices = [n for n in stack.drain_notices() if n["job_id"] == job_id]
    assert [n["state"] for n in notices] == ["done"], notices
    assert notices[0]["output"] and out_key in notices[0]["output"], notices

    # What `vsrflow local status` prints is enough for `vsrflow status JOB_ID`.
    status_proc = run_cli(["status", job_id], {**env, **stack.state.client_env()}, timeout=60)
    assert status_proc.returncode == 0 and "done" in status_proc.stdout, (
        status_proc.stdout + status_proc.stderr
    )


def test_same_event_twice_gives_one_job(stack: Stack) -> None:
    key = "uploads/anime/clip.mp4"
    job_id = find_job(stack.state_dir, key)
    assert job_id, "runs after test_clip_with_audio_comes_out_upscaled"
    (first,) = [e for e in stack.invocations() if key in [_decoded(k) for k in e.get("keys", [])]]
    before = stack.outcomes(key)
    jobs_root = Path(stack.state.head_env["VSRFLOW_AWS_JOBS_ROOT"])
    jobs_before = sorted(p.name for p in jobs_root.iterdir())
    assert job_id in jobs_before
    sqs = stack.client("sqs")
    body = json.dumps(first["event"])
    for _ in range(2):  # the same S3 event, delivered twice more (at-least-once delivery)
        sqs.send_message(QueueUrl=stack.state.ingress_queue_url, MessageBody=body)
    deadline = time.monotonic() + 120
    while len(stack.outcomes(key)) < len(before) + 2:
        assert time.monotonic() < deadline, stack.log_tail()
        time.sleep(0.3)
    assert stack.outcomes(key) == [*before, "duplicate", "duplicate"]
    assert len(stack.commands_of(job_id)) == 1
    assert (stack.status(job_id) or {}).get("state") == "done"
    assert sorted(p.name for p in jobs_root.iterdir()) == jobs_before
    time.sleep(1)
    assert [n["state"] for n in stack.drain_notices() if n["job_id"] == job_id] == ["done"]


def test_corrupt_upload_fails_with_reason_and_no_output(
    stack: Stack, env: dict[str, str], tmp_path: Path
) -> None:
    key = "uploads/anime/broken.mp4"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video\xff" * 256)
    # The README's other path: the aws CLI with the exports `vsrflow local up` prints.
    aws = Path(sys.executable).parent / "aws"
    argv = [
        str(aws),
        "s3",
        "cp",
        str(broken),
        f"s3://{stack.bucket}/{key}",
        "--endpoint-url",
        stack.state.endpoint,
    ]
    cp = subprocess.run(
        argv, env={**env, **stack.state.client_env()}, capture_output=True, text=True, timeout=60, check=False
    )
    assert cp.returncode == 0, cp.stderr
    ((job_id, status),) = stack.wait_jobs([key]).values()
    assert status["state"] == "failed", status
    assert "not a recognisable media file" in status["reason"], status
    listed = stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix="outputs/anime/broken")
    assert listed.get("KeyCount", 0) == 0, listed
    notices = [n for n in stack.drain_notices() if n["job_id"] == job_id]
    assert [n["state"] for n in notices] == ["failed"] and notices[0]["reason"], notices
    print(f"\ncorrupt upload: {status['reason']}")


@dataclass(frozen=True)
class Burst:
    keys: list[str]
    hostile: list[str]
    marker: Path
    jobs: dict[str, tuple[str, dict[str, Any]]]
    outputs_before: set[str]


def _expected_output(key: str) -> str:
    relative = key.removeprefix("uploads/anime/")
    return "outputs/anime/" + relative.removesuffix(".mp4") + "_x2.mp4"


def _decoded(key: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(key)


@pytest.fixture(scope="module")
def burst(stack: Stack, small_clip: Path) -> Burst:
    """20 uploads at once, 7 of them with keys a shell would love to interpret."""
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    hostile = [
        "uploads/anime/with space and ünïcødé 日本.mp4",
        "uploads/anime/a+b=c&d.mp4",
        'uploads/anime/it\'s "quoted".mp4',
        f"uploads/anime/x; touch {marker}-semi; .mp4",
        f"uploads/anime/$(touch {marker}-subst).mp4",
        f"uploads/anime/`touch {marker}-tick`.mp4",
        f"uploads/anime/x'; touch {marker}-quote; echo '.mp4",
    ]
    keys = hostile + [f"uploads/anime/burst/clip-{i:02d}.mp4" for i in range(20 - len(hostile))]
    data = small_clip.read_bytes()
    s3 = stack.client("s3")
    before = {
        o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket, Prefix="outputs/").get("Contents", [])
    }
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=stack.bucket, Key=k, Body=data), keys))
    jobs = stack.wait_jobs(keys, timeout=600)
    print(f"\n{len(keys)} uploads at once -> all finished in {time.monotonic() - t0:.1f}s")
    return Burst(keys, hostile, marker, jobs, before)


def test_twenty_uploads_at_once_give_twenty_outputs(stack: Stack, burst: Burst) -> None:
    states = {k: s["state"] for k, (_, s) in burst.jobs.items()}
    assert set(states.values()) == {"done"}, {k: s for k, s in states.items() if s != "done"}
    job_ids = [job for job, _ in burst.jobs.values()]
    assert len(set(job_ids)) == 20
    listed = stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix="outputs/")
    new = {o["Key"] for o in listed.get("Contents", [])} - burst.outputs_before
    assert sorted(new) == sorted(_expected_output(k) for k in burst.keys)
    for key in burst.keys:
        assert stack.outcomes(key).count("submitted") == 1, (key, stack.outcomes(key))
    # one command per job, one done notice per job: nothing lost, nothing twice
    commands = stack.commands()
    by_job = {job: sum(c.get("Comment") == f"vsrflow job {job}" for c in commands) for job in job_ids}
    assert set(by_job.values()) == {1}, by_job
    notices = [n for n in stack.drain_notices() if n["job_id"] in set(job_ids)]
    assert sorted(n["job_id"] for n in notices) == sorted(job_ids), notices
    assert {n["state"] for n in notices} == {"done"}


def test_hostile_keys_work_and_execute_nothing(stack: Stack, burst: Burst) -> None:
    for key in burst.hostile:
        job_id, status = burst.jobs[key]
        assert status["state"] == "done", (key, status)
        head = stack.client("s3").head_object(Bucket=stack.bucket, Key=_expected_output(key))
        assert head["Metadata"]["job-id"] == job_id
    pwned = sorted(burst.marker.parent.glob(burst.marker.name + "*"))
    assert pwned == [], f"a key was executed: {pwned}"
    # Every command the trigger sent, and everything the head node executed for these jobs.
    sent = {c["Comment"]: c["Parameters"]["commands"] for c in stack.commands()}
    for job_id, _ in burst.jobs.values():
        assert sent[f"vsrflow job {job_id}"] == [f"vsrflow submit --job-id {job_id}"]
    jobs_root = Path(stack.state.head_env["VSRFLOW_AWS_JOBS_ROOT"])
    assert all(re.fullmatch(r"[0-9a-f]{16}", p.name) for p in jobs_root.iterdir())  # no key in a path
    executed = [r["commands"] for r in stack.executed() if "--no-such-option" not in r["commands"][0]]
    assert len(executed) >= 20 and all(len(c) == 1 and COMMAND_RE.fullmatch(c[0]) for c in executed), executed


def test_failed_head_node_command_fails_the_job_with_its_stderr(stack: Stack) -> None:
    """A command that fails before the job can record anything (here: a script the agent refuses,
    since it is not exactly ``vsrflow submit --job-id <hex>``; nothing of it runs)."""
    ssm = stack.client("ssm")
    job_id = uuid.uuid4().hex[:16]
    command = ssm.send_command(
        InstanceIds=[stack.state.head_node],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": [f"vsrflow --no-such-option submit --job-id {job_id}; touch pwned"]},
        Comment=f"vsrflow job {job_id}",
    )["Command"]
    deadline = time.monotonic() + 180
    while True:
        inv = ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=stack.state.head_node)
        if inv["Status"] not in ("Pending", "InProgress"):
            break
        assert time.monotonic() < deadline, inv
        time.sleep(0.3)
    assert inv["Status"] == "Failed" and inv["ResponseCode"] == -1, inv
    assert "runs only 'vsrflow submit --job-id <16 hex>'" in inv["StandardErrorContent"], inv
    deadline = time.monotonic() + 120
    while (status := stack.status(job_id)) is None:
        assert time.monotonic() < deadline, stack.log_tail()
        time.sleep(0.3)
    # Recorded the AWS way: the status-change event went to the function (vsrflow.aws.ssm_events),
    # which read the invocation (ResponseCode -1: the command never ran, so no exit code).
    assert status["state"] == "failed", status
    assert "head node command failed (exit unknown)" in status["reason"], status
    assert "runs only" in status["reason"], status
    notices = [n for n in stack.drain_notices() if n["job_id"] == job_id]
    assert [n["state"] for n in notices] == ["failed"], notices


def test_no_head_node_event_is_retried_then_lands_in_dlq(stack: Stack, small_clip: Path) -> None:
    ec2, sqs = stack.client("ec2"), stack.client("sqs")
    key = "uploads/anime/no-head-node.mp4"
    ec2.stop_instances(InstanceIds=[stack.state.head_node])
    try:
        stack.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=small_clip.read_bytes())
        deadline = time.monotonic() + 180
        dead: list[dict[str, Any]] = []
        while not dead:
            assert time.monotonic() < deadline, f"nothing in the DLQ\n{stack.log_tail()}"
            got = sqs.receive_message(QueueUrl=stack.state.dlq_url, WaitTimeSeconds=1).get("Messages", [])
            dead = [json.loads(m["Body"]) for m in got]
    finally:
        ec2.start_instances(InstanceIds=[stack.state.head_node])
    (event,) = dead
    assert [_decoded(r["s3"]["object"]["key"]) for r in event["Records"]] == [key]
    calls = [e for e in stack.invocations() if key in [_decoded(k) for k in e.get("keys", [])]]
    assert [c["attempt"] for c in calls] == list(range(1, stack.state.max_retries + 2)), calls
    assert all(c["outcome"] == "error" and "no running head node" in c["error"] for c in calls), calls
    assert not [c for c in stack.executed() if key in json.dumps(c)]
