"""S3 event parsing: every record, test events, URL-decoded keys, malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vsrflow.aws.commands import submit_command
from vsrflow.aws.events import parse_event, parse_record
from vsrflow.aws.jobrecords import JobRequest, JobStatus
from vsrflow.aws.uploads import output_key
from vsrflow.config import AwsSettings, Settings
from vsrflow.errors import InputError
from vsrflow.workflow.job.identity import compute_job_id, preset_choice, s3_identity
from vsrflow.workflow.job.state import TERMINAL_JOB_STATES, JobState

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_put_event_key_is_decoded() -> None:
    (record,) = parse_event(load("s3-put.json"))
    event = parse_record(record)
    assert event.key == "uploads/anime/my first clip.mp4"
    assert event.bucket == "vsrflow-media-test"
    assert event.created and not event.removed
    assert event.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert event.size == 1024


def test_every_record_of_a_multi_record_event() -> None:
    events = [parse_record(r) for r in parse_event(load("s3-multi.json"))]
    assert [e.key for e in events] == ["uploads/live-action/a+b été.mkv", "uploads/anime/old.mp4"]
    assert events[0].event_name == "ObjectCreated:CompleteMultipartUpload"
    assert events[0].version_id is None
    assert events[1].removed and events[1].size is None


def test_test_event_has_no_records() -> None:
    assert parse_event(load("s3-test-event.json")) == []


def test_sqs_batch_unwraps_bodies_and_skips_the_test_event() -> None:
    (record,) = parse_event(load("sqs-wrapped-s3.json"))
    assert parse_record(record).key == "uploads/fidelity/dir/clip (1).mov"


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "Records",
        {"Records": "x"},
        {"Records": [1]},
        {"foo": 1},
        {"Records": [{"eventSource": "aws:sqs"}]},
    ],
)
def test_malformed_envelopes_are_input_errors(event: object) -> None:
    with pytest.raises(InputError, match="S3 event"):
        parse_event(event)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"eventName": None}, "no eventName"),
        ({"s3": None}, "no s3.bucket"),
        ({"s3": {"bucket": {"name": ""}, "object": {"key": "k"}}}, "no bucket name"),
        ({"s3": {"bucket": {"name": "b"}, "object": {}}}, "no object key"),
        ({"s3": {"bucket": {"name": "b"}, "object": {"key": "k", "size": -1}}}, "not a byte count"),
        ({"s3": {"bucket": {"name": "b"}, "object": {"key": "a%00b"}}}, "not a valid S3 key"),
    ],
)
def test_malformed_records_name_the_problem(patch: dict, message: str) -> None:
    record = load("s3-put.json")["Records"][0] | patch
    with pytest.raises(InputError, match=message):
        parse_record(record)


def test_job_id_is_deterministic_and_sensitive() -> None:
    def job_id(bucket: str, key: str, version: str, preset: str, scale: float) -> str:
        return compute_job_id(s3_identity(bucket, key, version), model=preset_choice(preset), scale=scale)

    a = job_id("b", "uploads/anime/x.mp4", "v1", "anime", 2)
    assert a == job_id("b", "uploads/anime/x.mp4", "v1", "anime", 2.0)
    assert len(a) == 16 and int(a, 16) >= 0
    others = {
        job_id("b2", "uploads/anime/x.mp4", "v1", "anime", 2),
        job_id("b", "uploads/anime/y.mp4", "v1", "anime", 2),
        job_id("b", "uploads/anime/x.mp4", "v2", "anime", 2),
        job_id("b", "uploads/anime/x.mp4", "v1", "fidelity", 2),
        job_id("b", "uploads/anime/x.mp4", "v1", "anime", 4),
        # bucket/key boundaries cannot collide: the identity is a JSON list, not a joined string
        job_id("b/uploads", "anime/x.mp4", "v1", "anime", 2),
    }
    assert a not in others and len(others) == 6


def test_output_key_keeps_folders_and_names_the_scale() -> None:
    aws = AwsSettings()
    assert output_key(aws, "anime", "clip.mp4", 2.0) == "outputs/anime/clip_x2.mp4"
    assert output_key(aws, "anime", "s1/ep 1.final.mov", 1.5) == "outputs/anime/s1/ep 1.final_x1.5.mov"
    # A suffix that is not the output's, as typed, stays in the name: no two uploads share an output.
    assert output_key(aws, "anime", "s1/ep 1.final.MOV", 1.5) == "outputs/anime/s1/ep 1.final_x1.5.MOV.mov"
    assert output_key(aws, "anime", "old.avi", 4.0) == "outputs/anime/old_x4.avi.mkv"
    assert output_key(aws, "anime", "old.mkv", 4.0) == "outputs/anime/old_x4.mkv"


def test_submit_command_holds_only_the_validated_id() -> None:
    aws = AwsSettings()
    assert submit_command(aws, "0123456789abcdef") == "vsrflow submit --job-id 0123456789abcdef"
    for bad in ("0123456789ABCDEF", "0123456789abcde", "$(reboot)abcdef0", "0123456789abcdef; ls"):
        with pytest.raises(InputError):
            submit_command(aws, bad)


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "VSRFLOW_AWS_BUCKET": "media",
            "VSRFLOW_AWS_PRESETS": "cartoons=anime:2,films=live-action:4",
            "VSRFLOW_AWS_SUFFIXES": "mp4,.MKV",
            "VSRFLOW_AWS_UPLOAD_PREFIXES": "in,uploads/",
            "VSRFLOW_AWS_MAX_OBJECT_BYTES": "100",
        }
    )
    aws = settings.aws
    assert aws.bucket == "media" and aws.max_object_bytes == 100
    assert aws.preset_for("cartoons") == ("anime", 2.0) and aws.preset_for("anime") is None
    assert aws.suffixes == (".mp4", ".mkv") and aws.upload_prefixes == ("in/", "uploads/")
    for env in (
        {"VSRFLOW_AWS_PRESETS": "anime"},
        {"VSRFLOW_AWS_PRESETS": "anime=anime:9"},
        {"VSRFLOW_AWS_EXECUTOR": "k8s"},
        {"VSRFLOW_AWS_HEAD_NODE_COMMAND": "vsrflow; reboot"},
        {"VSRFLOW_AWS_MAX_OBJECT_BYTES": "-5"},
    ):
        with pytest.raises(InputError, match="VSRFLOW_AWS_"):
            Settings.from_env(env)


def test_records_round_trip_and_refuse_bad_shapes() -> None:
    request = JobRequest(
        "0123456789abcdef", "b", "uploads/anime/x.mp4", None, "e", 10, "anime", 2.0, "outputs/x"
    )
    assert JobRequest.from_json(json.loads(json.dumps(request.to_json())), "r") == request
    status = JobStatus("0123456789abcdef", JobState.UPSCALING, done_chunks=3, total_chunks=10)
    assert status.text == "upscaling 3/10"
    assert JobStatus.from_json(status.to_json(), "s") == status
    with pytest.raises(InputError, match="schema_version"):
        JobRequest.from_json(request.to_json() | {"schema_version": 2}, "r")
    with pytest.raises(InputError, match="unknown field"):
        JobStatus.from_json(status.to_json() | {"extra": 1}, "s")
    with pytest.raises(ValueError, match="reason"):
        JobStatus("0123456789abcdef", JobState.FAILED)


def test_status_state_is_the_typed_job_state() -> None:
    job = "0123456789abcdef"
    status = JobStatus.from_json(JobStatus(job, JobState.QUEUED).to_json(), "s")
    assert status.state is JobState.QUEUED and not status.terminal
    data = json.loads(json.dumps(JobStatus(job, JobState.DONE, output="s3://b/o").to_json()))
    assert data["state"] == "done" and data["text"] == "done: s3://b/o"
    parsed = JobStatus.from_json(data, "s")
    assert parsed.state is JobState.DONE and parsed.terminal
    assert JobStatus(job, JobState.FAILED, reason="bad").text == "failed: bad"
    assert JobStatus(job, JobState.SUPERSEDED, reason="v2").text == "superseded: v2"
    with pytest.raises(ValueError, match="reason is required"):
        JobStatus(job, JobState.SUPERSEDED)
    reasons = {JobState.FAILED, JobState.SUPERSEDED}
    assert (
        {s for s in JobState if JobStatus(job, s, reason="r" if s in reasons else None).terminal}
        == set(TERMINAL_JOB_STATES)
        == {JobState.DONE, JobState.FAILED, JobState.SUPERSEDED}
    )
    with pytest.raises(InputError, match="unknown job state 'paused'"):
        JobStatus.from_json(data | {"state": "paused"}, "s")


def test_delivery_target_round_trips_and_keeps_job_ids() -> None:
    from vsrflow.workflow.job.spec import DeliverySpec, JobSpec

    plain = JobSpec(
        source="/jobs/a/source/input.mp4",
        destination="/jobs/a/output/output.mp4",
        model="realesr-animevideov3",
    )
    delivery = DeliverySpec("media", "outputs/anime/x_x4.mp4", "media", "uploads/anime/x y.mp4", "v1")
    delivered = JobSpec(**{**plain.__dict__, "delivery": delivery})
    assert "delivery" not in plain.to_json()  # existing spec.json files read back equal
    assert JobSpec.loads(delivered.dumps()) == delivered
    assert JobSpec.loads(plain.dumps()) == plain
    assert delivered.job_id() == plain.job_id()
    with pytest.raises(InputError, match="delivery"):
        JobSpec.from_json(delivered.to_json() | {"delivery": {"bucket": "b"}})
