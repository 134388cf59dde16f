"""The delivered object's metadata always fits S3's 2 KB limit, whatever the source key."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from vsrflow.aws.headnode import MAX_METADATA_BYTES, upload_metadata
from vsrflow.workflow.job.spec import DeliverySpec, JobSpec

JOB = "0123456789abcdef"


def _spec(source_key: str) -> JobSpec:
    return JobSpec(
        source="/jobs/a/source/input.mp4",
        destination="/jobs/a/output/output.mp4",
        model="realesr-animevideov3",
        scale=2,
        delivery=DeliverySpec("media", "outputs/anime/x_x2.mp4", "media", source_key, "v" * 32),
    )


def _size(meta: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in meta.items())


def test_short_keys_are_kept_whole() -> None:
    meta = upload_metadata(JOB, _spec("uploads/anime/my clip.mp4"))
    assert unquote(meta["source-key"]) == "uploads/anime/my clip.mp4"
    assert "source-key-truncated" not in meta and meta["job-id"] == JOB


@pytest.mark.parametrize("char", ["é", "日", "%", "a"])
def test_the_longest_keys_fit_and_say_they_were_cut(char: str) -> None:
    width = len(char.encode())
    key = "uploads/anime/" + char * ((1024 - 18) // width) + ".mp4"
    assert len(key.encode()) <= 1024  # a legal S3 key; URL-encoded it can be 3x that
    meta = upload_metadata(JOB, _spec(key))
    assert _size(meta) <= MAX_METADATA_BYTES, _size(meta)
    assert all(v.isascii() for v in meta.values())
    value = meta["source-key"]
    if char == "a":  # fits: whole
        assert unquote(value) == key and "source-key-truncated" not in meta
    else:
        assert meta["source-key-truncated"] == "true"
        assert key.startswith(unquote(value))  # a prefix of the key, never a broken escape
        assert "%" not in value[-2:]
