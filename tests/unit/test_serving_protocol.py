"""The endpoint's request parsing, error mapping, settings and GPU -> port rule (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vsrflow.config import EndpointSettings, Settings
from vsrflow.errors import InputError, TransientError, VsrError
from vsrflow.serving import protocol
from vsrflow.serving.client import endpoint_port, gpu_index
from vsrflow.serving.protocol import ChunkRequest, FileRequest, FramesRequest, RequestError, parse_request
from vsrflow.serving.spec import EndpointSpec


def _status(body: bytes | str, ctype: str | None) -> int:
    with pytest.raises(RequestError) as info:
        parse_request(body, ctype)
    return info.value.status


def test_chunk_request_round_trips_through_json() -> None:
    req = ChunkRequest(job_dir=Path("/fsx/jobs/abc"), index=3, output=Path("/fsx/jobs/abc/chunks/3.nut"))
    body = json.dumps(req.to_json())
    assert parse_request(body, "application/json; charset=utf-8") == req
    assert parse_request(body.encode(), "Application/JSON") == req


def test_file_and_frames_requests() -> None:
    body = {"input": "/a/in.mp4", "output": "/a/out.mkv", "scale": 2, "encoder": {"codec": "ffv1"}}
    req = parse_request(json.dumps(body), protocol.JSON)
    assert isinstance(req, FileRequest) and req.scale == 2.0 and req.encoder == {"codec": "ffv1"}
    frames = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    got = parse_request(protocol.encode_npy(frames), protocol.NPY)
    assert isinstance(got, FramesRequest) and np.array_equal(got.frames, frames)
    one = parse_request(protocol.encode_npy(frames[0]), protocol.NPY)
    assert isinstance(one, FramesRequest) and one.frames.shape == (1, 4, 6, 3)


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1, 2]",
        "{}",
        '{"job_dir": "/j", "index": -1}',
        '{"job_dir": "/j", "index": true}',
        '{"job_dir": "relative/path", "index": 0}',
        '{"job_dir": "s3://bucket/key", "index": 0}',
        '{"job_dir": "/j", "index": 0, "colour": "red"}',
        '{"job_dir": "/j", "index": 0, "scale": 99}',
        '{"job_dir": "/j", "index": 0, "input": "/x"}',
        '{"input": "/a", "output": "/b", "encoder": {"bitrate": 5}}',
        b"\xff\xfe",
    ],
)
def test_malformed_json_is_400(body: str | bytes) -> None:
    assert _status(body, protocol.JSON) == 400


def test_bad_frames_are_400_and_other_types_415() -> None:
    assert _status(protocol.encode_npy(np.zeros((2, 4, 4), np.float32)), protocol.NPY) == 400
    assert _status(protocol.encode_npy(np.zeros((1, 4, 4, 4), np.uint8)), protocol.NPY) == 400
    assert _status(b"not an npy file", protocol.NPY) == 400
    assert _status(b"x", "text/plain") == 415
    assert _status(b"x", None) == 415


def test_error_mapping_to_http_statuses() -> None:
    from vsrflow.serving.toolkit import to_toolkit_error

    assert to_toolkit_error(protocol.bad_request("nope")).status_code == 400
    assert to_toolkit_error(RequestError(415, "type")).status_code == 415
    assert to_toolkit_error(InputError("missing source")).status_code == 400
    assert to_toolkit_error(TransientError("busy")).status_code == 503
    assert to_toolkit_error(VsrError("encode failed")).status_code == 500
    err = to_toolkit_error(RuntimeError("boom\nsecond line"))
    assert err.status_code == 500 and err.message == "internal error: RuntimeError: boom"


def test_endpoint_settings_from_env() -> None:
    default = Settings.from_env({"VSRFLOW_CACHE_DIR": "/c"}).endpoint
    assert default == EndpointSettings() and not default.enabled
    env = {
        "VSRFLOW_ENDPOINT_BASE_PORT": "9100",
        "VSRFLOW_ENDPOINT_HOST": "10.0.0.5",
        "VSRFLOW_ENDPOINT_CONNECT_TIMEOUT": "2.5",
        "VSRFLOW_ENDPOINT_READ_TIMEOUT": "120",
        "VSRFLOW_ENDPOINT_RETRIES": "0",
        "VSRFLOW_ENDPOINT_FALLBACK": "true",
    }
    got = EndpointSettings.from_env(env)
    assert got.enabled and got.base_port == 9100 and got.host == "10.0.0.5"
    assert (got.connect_timeout, got.read_timeout, got.retries, got.fallback) == (2.5, 120.0, 0, True)
    for bad in (
        {"VSRFLOW_ENDPOINT_BASE_PORT": "70000"},
        {"VSRFLOW_ENDPOINT_BASE_PORT": "x"},
        {"VSRFLOW_ENDPOINT_READ_TIMEOUT": "-1"},
        {"VSRFLOW_ENDPOINT_RETRIES": "many"},
        {"VSRFLOW_ENDPOINT_FALLBACK": "maybe"},
    ):
        with pytest.raises(InputError, match=next(iter(bad))):
            EndpointSettings.from_env(bad)


def test_gpu_to_port() -> None:
    cfg = EndpointSettings(base_port=9100)
    assert gpu_index({}) == 0 and gpu_index({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert gpu_index({"CUDA_VISIBLE_DEVICES": "3"}) == 3
    assert endpoint_port(cfg, {"CUDA_VISIBLE_DEVICES": "1,2"}) == 9101
    with pytest.raises(InputError, match="UUID"):
        gpu_index({"CUDA_VISIBLE_DEVICES": "GPU-8a7b"})
    with pytest.raises(InputError, match="VSRFLOW_ENDPOINT_BASE_PORT"):
        endpoint_port(EndpointSettings(), {})
    # ConstrainDevices=yes: every job sees its GPU as 0; Slurm's global ids still tell them apart.
    constrained = {"CUDA_VISIBLE_DEVICES": "0", "SLURM_JOB_GPUS": "3"}
    assert endpoint_port(cfg, constrained) == 9103
    assert gpu_index({**constrained, "SLURM_STEP_GPUS": "2"}) == 2


def test_endpoint_spec_file(tmp_path: Path) -> None:
    spec = EndpointSpec(model="m", scale=2.0, device="cpu", cache_dir=tmp_path, port=9000, gpu=None)
    spec.write(tmp_path / "model")
    assert EndpointSpec.read(tmp_path / "model") == spec
    with pytest.raises(InputError, match="vsrflow serve"):
        EndpointSpec.read(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="scale"):
        EndpointSpec(model="m", scale=0.5, device="cpu", cache_dir=tmp_path, port=9000)
