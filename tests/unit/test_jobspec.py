"""JobSpec validation and JSON round trip, the job id, and the job directory."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

import vsrflow.files as files_module
from vsrflow.errors import InputError, VsrError
from vsrflow.workflow.job.identity import compute_job_id, file_identity
from vsrflow.workflow.job.layout import JobDir, write_json_atomic
from vsrflow.workflow.job.spec import SCHEMA_VERSION, EncoderSpec, JobSpec

JOB = "0123456789abcdef"  # a valid job id (16 lowercase hex digits)


def spec(**overrides: Any) -> JobSpec:
    base: dict[str, Any] = {"source": "s3://bucket/uploads/anime/a.mp4", "destination": "/fsx/out/a_x4.mp4"}
    base["model"] = "realesr-animevideov3"
    return JobSpec(**{**base, **overrides})


def test_round_trip_is_exact() -> None:
    original = spec(
        scale=2,
        encoder=EncoderSpec(codec="libx265", crf=22, preset="slow", pix_fmt="yuv420p10le"),
        chunk_frames=1440,
        chunk_seconds=None,
        max_array_size=1001,
        array_throttle=4,
    )
    data = json.loads(original.dumps())
    assert data["schema_version"] == SCHEMA_VERSION
    assert JobSpec.from_json(data) == original
    assert JobSpec.loads(original.dumps()) == original
    assert original.scale == 2.0 and isinstance(original.scale, float)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"source": ""}, "source"),
        ({"source": "http://x/y.mp4"}, "source"),
        ({"source": "s3://bucket-only"}, "source"),
        ({"destination": " /out.mp4"}, "destination"),
        ({"destination": "s3://bucket/uploads/anime/a.mp4"}, "destination"),
        ({"model": None}, "model"),
        ({"model": "../etc"}, "model"),
        ({"model": "/no such/dir/../x.pth "}, "model"),
        ({"scale": 0}, "scale"),
        ({"scale": 9}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"scale": True}, "scale"),
        ({"chunk_frames": 10}, "chunk_frames/chunk_seconds"),
        ({"chunk_seconds": None}, "chunk_frames/chunk_seconds"),
        ({"chunk_seconds": 0}, "chunk_seconds"),
        ({"chunk_seconds": -3.0}, "chunk_seconds"),
        ({"chunk_frames": 0, "chunk_seconds": None}, "chunk_frames"),
        ({"chunk_frames": 1.5, "chunk_seconds": None}, "chunk_frames"),
        ({"max_array_size": 0}, "max_array_size"),
        ({"array_throttle": 0}, "array_throttle"),
        ({"max_array_size": 10, "array_throttle": 11}, "array_throttle"),
        ({"array_throttle": True}, "array_throttle"),
    ],
)
def test_bad_fields_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        spec(**overrides)
    assert f"job spec: {field}:" in str(info.value)
    assert info.value.hint  # and says how to fix it


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"codec": "lib x264"}, "encoder.codec"),
        ({"crf": 64}, "encoder.crf"),
        ({"crf": "18"}, "encoder.crf"),
        ({"preset": ""}, "encoder.preset"),
        ({"pix_fmt": "yuv420p;rm"}, "encoder.pix_fmt"),
    ],
)
def test_bad_encoder_fields(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError, match=f"job spec: {field}:"):
        EncoderSpec(**overrides)


def test_from_json_is_strict() -> None:
    good = spec().to_json()
    with pytest.raises(InputError, match=r"unknown field.*colour"):
        JobSpec.from_json({**good, "colour": "red"})
    missing = dict(good)
    del missing["scale"]
    with pytest.raises(InputError, match=r"missing field.*scale"):
        JobSpec.from_json(missing)
    with pytest.raises(InputError, match="schema_version"):
        JobSpec.from_json({**good, "schema_version": SCHEMA_VERSION + 1})
    # A version-1 spec could name a preset (each stage resolved it on its own node): refused.
    old = {**good, "schema_version": 1, "model": None, "preset": "anime"}
    with pytest.raises(InputError, match="schema_version") as err:
        JobSpec.from_json(old)
    assert "recreate the job" in str(err.value.hint)
    with pytest.raises(InputError, match="encoder: unknown field"):
        JobSpec.from_json({**good, "encoder": {**good["encoder"], "bitrate": "5M"}})
    with pytest.raises(InputError, match="expected a JSON object"):
        JobSpec.from_json([good])
    with pytest.raises(InputError, match="not valid JSON"):
        JobSpec.loads("{")


def test_job_id_is_deterministic_and_sensitive_to_the_output() -> None:
    a = spec()
    assert a.job_id() == spec().job_id()
    assert len(a.job_id()) == 16 and all(c in "0123456789abcdef" for c in a.job_id())
    assert a.job_id("etag-1") != a.job_id("etag-2")
    assert spec(scale=2).job_id() != a.job_id()
    assert spec(scale=2).job_id() == spec(scale=2.0).job_id()
    assert spec(model="SPAN_x4_ch48").job_id() != a.job_id()
    assert spec(encoder=EncoderSpec(crf=20)).job_id() != a.job_id()
    # How the work is split does not change the result, so it does not change the id.
    assert spec(chunk_seconds=30.0, array_throttle=2).job_id() == a.job_id()
    # The same source to another file is another job (never "exists with a different spec").
    assert spec(destination="/fsx/out/b_x4.mp4").job_id() != a.job_id()
    expected = compute_job_id(
        "v1",
        model="realesr-animevideov3",
        scale=4,
        encoder=EncoderSpec().to_json(),
        destination=a.destination,
    )
    assert a.job_id("v1") == expected
    # Without a destination (the event path) the payload has no such key: those ids are unchanged.
    assert compute_job_id("v1", model="m", scale=2) == compute_job_id(
        "v1", model="m", scale=2, destination=None
    )


def test_file_identity_changes_with_content(tmp_path: Path) -> None:
    f = tmp_path / "in.mp4"
    f.write_bytes(b"abc")
    first = file_identity(f)
    f.write_bytes(b"abcd")
    assert file_identity(f) != first
    with pytest.raises(InputError, match="cannot stat"):
        file_identity(tmp_path / "missing.mp4")


# ---- job directory -----------------------------------------------------------------------------


def test_create_layout_and_reopen(tmp_path: Path) -> None:
    s = spec()
    job = JobDir.create(tmp_path, s)
    assert job.path == tmp_path / s.job_id()
    for d in (job.chunks_dir, job.logs_dir, job.source_dir):
        assert d.is_dir()
    assert job.read_spec() == s
    assert JobDir.create(tmp_path, s).path == job.path  # idempotent resubmission
    assert JobDir.open(tmp_path, job.job_id).read_spec() == s
    assert job.chunk_state_path(7).name == "00007.json"
    assert job.chunk_output_path(7) == job.chunks_dir / "00007.nut"
    assert not list(job.path.glob(".*.tmp"))


def test_create_refuses_a_different_spec_under_the_same_id(tmp_path: Path) -> None:
    JobDir.create(tmp_path, spec(), job_id=JOB)
    with pytest.raises(InputError, match="different spec"):
        JobDir.create(tmp_path, spec(scale=2), job_id=JOB)


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "x" * 65, "a b", "job1", "AB" * 8, "a" * 17])
def test_job_id_must_be_a_safe_name(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InputError, match="invalid job id"):
        JobDir(tmp_path, bad)


def test_missing_root_and_missing_job(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="job root does not exist"):
        JobDir.create(tmp_path / "nope", spec())
    with pytest.raises(InputError, match="no such job"):
        JobDir.open(tmp_path, "ab" * 8)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_root_is_an_input_error_naming_the_path(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(InputError, match=str(root)):
            JobDir.create(root, spec())
    finally:
        root.chmod(0o700)


def test_unwritable_root_via_errno(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: Path, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(InputError, match="cannot create the directory: Permission denied") as info:
        JobDir.create(tmp_path, spec(), job_id=JOB)
    assert str(tmp_path / JOB) in str(info.value)


def test_full_disk_names_the_path_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_module.os, "fsync", no_space)
    with pytest.raises(VsrError) as info:
        JobDir.create(tmp_path, spec(), job_id=JOB)
    assert not isinstance(info.value, InputError)  # not the user's input: free space and retry
    assert str(tmp_path / JOB / "spec.json") in str(info.value)
    assert "No space left" in str(info.value) and "free space" in str(info.value)
    assert {p.name for p in (tmp_path / JOB).iterdir()} == {"chunks", "logs", "source"}


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "m.json"
    write_json_atomic(target, {"v": 1})

    def fail_replace(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files_module.os, "replace", fail_replace)
    with pytest.raises(VsrError, match="Input/output error"):
        write_json_atomic(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_corrupt_spec_json_names_the_file(tmp_path: Path) -> None:
    job = JobDir.create(tmp_path, spec())
    data = json.loads(job.spec_path.read_text())
    data["scale"] = 100
    job.spec_path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"spec\.json: job spec: scale: 100 is outside"):
        job.read_spec()


def test_quality_fields_round_trip_and_enter_the_id_only_when_not_default() -> None:
    default = spec()
    assert (default.on_artifact, default.fallback_model, default.colour_fix) == ("fallback", None, "off")
    guarded = spec(fallback_model="realesr-animevideov3", colour_fix="wavelet", on_artifact="fail")
    assert JobSpec.loads(guarded.dumps()) == guarded
    # A spec written before the quality fields reads with the defaults, and keeps its job id.
    old = {
        k: v for k, v in default.to_json().items() if k not in ("on_artifact", "fallback_model", "colour_fix")
    }
    assert JobSpec.from_json(old) == default
    assert default.job_id() == compute_job_id(
        default.source, model=default.model, scale=default.scale, encoder=default.encoder.to_json(),
        destination=default.destination,
    )  # fmt: skip
    assert guarded.job_id() != default.job_id()
    assert spec(fallback_model="realesr-animevideov3").job_id() != default.job_id()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("on_artifact", "skip", "on_artifact 'skip' is not one of fallback, fail, keep"),
     ("colour_fix", "on", "colour_fix 'on' is not one of off, wavelet, gaussian"),
     ("fallback_model", "bad model!", "fallback_model")],
)  # fmt: skip
def test_bad_quality_fields_are_refused(field: str, value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        spec(**{field: value})
