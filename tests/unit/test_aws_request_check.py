"""The head node's re-check of ``request.json``: the trigger's own derivation, run again.

No AWS: :func:`derive_request` and :func:`verify_request` are pure functions of the settings and
the upload identity a request names.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from vsrflow.aws.events import S3ObjectEvent
from vsrflow.aws.jobrecords import JobRequest
from vsrflow.aws.uploads import Rejected, classify, derive_request, verify_request
from vsrflow.config import AwsSettings
from vsrflow.errors import InputError

AWS = AwsSettings(bucket="media", max_object_bytes=10_000)
WHERE = "s3://media/jobs/x/request.json"


def upload(key: str = "uploads/anime/clip.mp4", *, bucket: str = "media", size: int = 2048) -> S3ObjectEvent:
    return S3ObjectEvent(
        "ObjectCreated:Put", bucket, key, size, "0123abcd", "v1", None, "2026-12-01T00:00:00Z"
    )


def good() -> JobRequest:
    return derive_request(AWS, upload())


def test_the_derivation_is_what_the_trigger_writes() -> None:
    request = good()
    assert (request.bucket, request.key, request.version_id, request.etag, request.size) == (
        "media",
        "uploads/anime/clip.mp4",
        "v1",
        "0123abcd",
        2048,
    )
    assert (request.preset, request.scale, request.output_key) == ("anime", 2.0, "outputs/anime/clip_x2.mp4")
    assert verify_request(AWS, request, WHERE) is request
    # What the trigger stored survives the JSON round trip and still verifies.
    again = JobRequest.from_json(request.to_json(), WHERE)
    assert verify_request(AWS, again, WHERE) == again


@pytest.mark.parametrize(
    ("change", "says"),
    [
        # Another bucket (the head node would download from it and record it as the source).
        ({"bucket": "someone-elses-bucket"}, "is not the configured bucket media"),
        # A key outside the upload prefixes (the head node would read e.g. another job's records).
        ({"key": "jobs/0123456789abcdef/secret.mp4"}, "outside the upload prefixes"),
        ({"key": "outputs/anime/clip_x2.mp4"}, "outside the upload prefixes"),
        # The output of another user's upload: overwritten by this job.
        ({"output_key": "outputs/anime/their_x2.mp4"}, "output_key is 'outputs/anime/their_x2.mp4'"),
        ({"output_key": "outputs/../index.html"}, "output_key is 'outputs/../index.html'"),
        ({"output_key": "uploads/anime/clip.mp4"}, "derives 'outputs/anime/clip_x2.mp4'"),
        # A preset or scale the folder does not map to (more GPU time, another model).
        ({"preset": "live-action"}, "preset is 'live-action' but"),
        ({"scale": 4.0}, "scale is 4.0 but"),
        # The same job id for another key or version: the job id follows from them.
        ({"key": "uploads/anime/other.mp4", "output_key": "outputs/anime/other_x2.mp4"}, "job_id is"),
        ({"version_id": "v0"}, "job_id is"),
        # Bigger than the limit the trigger enforces.
        ({"size": 10_001}, "larger than the limit of 10000 bytes"),
        ({"size": 0}, "the object is empty"),
        ({"key": "uploads/nosuchpreset/clip.mp4"}, "unknown preset folder 'nosuchpreset'"),
    ],
)
def test_a_tampered_request_is_refused_naming_what_differs(change: dict[str, object], says: str) -> None:
    tampered = replace(good(), **change)  # type: ignore[arg-type]
    with pytest.raises(InputError) as info:
        verify_request(AWS, tampered, WHERE)
    text = str(info.value)
    assert text.startswith(f"{WHERE}: refused"), text
    assert says in text, text
    assert "only the S3 trigger writes job requests" in text


def test_dot_segments_are_refused_at_the_trigger_too() -> None:
    # S3 keeps 'a/../x' literally; a normalising client would put the output elsewhere.
    for key in ("uploads/anime/../../x.mp4", "uploads/anime/./x.mp4", "uploads/anime/a/../x.mp4"):
        with pytest.raises(Rejected, match=r"'\.' or '\.\.' path segment"):
            classify(AWS, upload(key))
    # A dot inside a name is an ordinary name.
    assert classify(AWS, upload("uploads/anime/..x../a.b.mp4")).output_key == "outputs/anime/..x../a.b_x2.mp4"


def test_the_head_nodes_settings_decide() -> None:
    """A request derived under other settings (another output prefix) is refused on this node."""
    other = AwsSettings(bucket="media", output_prefix="public/")
    request = derive_request(other, upload())
    assert request.output_key == "public/anime/clip_x2.mp4"
    with pytest.raises(InputError, match=r"output_key is 'public/anime/clip_x2\.mp4'"):
        verify_request(AWS, request, WHERE)
