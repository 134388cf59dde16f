"""The endpoint's environment: what the MMS worker (and so torch inside it) gets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vsrflow.serving.server import Endpoint
from vsrflow.serving.spec import EndpointSpec


def _endpoint(tmp_path: Path, gpu: int | None = None) -> Endpoint:
    spec = EndpointSpec(model="m", scale=2.0, device="cpu", cache_dir=tmp_path, port=9100, gpu=gpu)
    return Endpoint(spec, state_dir=tmp_path / "state")


def test_worker_gets_every_core_not_mms_default_of_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MMS sets OMP_NUM_THREADS=1 in its worker when unset: torch would then use one core.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = _endpoint(tmp_path)._env()
    assert env["OMP_NUM_THREADS"] == str(os.cpu_count() or 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # an explicit choice of the caller wins
    assert _endpoint(tmp_path)._env()["OMP_NUM_THREADS"] == "3"


def test_one_gpu_per_endpoint_and_private_state(tmp_path: Path) -> None:
    env = _endpoint(tmp_path, gpu=1)._env()
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["TMPDIR"].startswith(str(tmp_path / "state"))
    assert env["SAGEMAKER_BIND_TO_PORT"] == "9100"
    assert _endpoint(tmp_path)._env()["CUDA_VISIBLE_DEVICES"] == ""
