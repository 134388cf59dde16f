"""vsrflow cluster validate with ParallelCluster itself (its own venv): the offline schema, then every
validator and ``pcluster create-cluster --dryrun true`` against moto in server mode.

The moto server runs as a child process because the fake official AMI (``MOTO_AMIS_PATH``) must be
in its environment before moto is imported, which an in-process ThreadedMotoServer cannot promise
once another test module imported moto. The VPC, subnets, buckets and bootstrap objects the values
reference are created in it first, so the validators check real (fake-AWS) resources.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from vsrflow.cli import main
from vsrflow.cluster.validate import ClusterFile, check_schema, dry_run, load_cluster_file
from vsrflow.config import Settings

# Slow (the real pcluster CLI against a moto server): `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

CLUSTER_DIR = REPO / "infra" / "cluster"
REGION = "us-east-1"
# moto's RunInstances rejects the instance-store (VirtualName-only) block device mappings these two
# validators send with DryRun; real EC2 accepts them. Every other validator runs.
MOTO_UNSUPPORTED = ("HeadNodeLaunchTemplateValidator", "ComputeResourceLaunchTemplateValidator")
SUPPRESS_ARGS = [arg for name in MOTO_UNSUPPORTED for arg in ("--suppress-validator", name)]


@pytest.fixture(scope="module")
def pcluster_venv() -> Path:
    venv = Settings.from_env().pcluster_venv
    venv = venv if venv.is_absolute() else REPO / venv
    if not (venv / "bin" / "pcluster").exists():
        pytest.fail(f"no ParallelCluster venv at {venv}: run `make pcluster-venv` (the unit target does)")
    return venv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pcluster_version(venv: Path) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "pcluster"), "version"], capture_output=True, text=True, timeout=120, check=True
    )
    version: str = json.loads(out.stdout)["version"]
    return version


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory, pcluster_venv: Path) -> Iterator[str]:
    """A moto server (child process) with a fake official ParallelCluster AMI; yields its URL."""
    tmp = tmp_path_factory.mktemp("moto")
    version = _pcluster_version(pcluster_venv)
    amis_data = [
        {
            "ami_id": f"ami-0123456789abcdef{i}",
            "name": f"aws-parallelcluster-{version}-{os_part}-x86_64-202601010000",
            "description": "fake official ParallelCluster AMI",
            "owner_id": "247102896272",
            "public": True,
            "virtualization_type": "hvm",
            "architecture": "x86_64",
            "state": "available",
            "creation_date": "2026-01-01T00:00:00.000Z",
            "root_device_type": "ebs",
            "root_device_name": "/dev/xvda",
            "hypervisor": "xen",
        }
        for i, os_part in enumerate(("ubuntu-2204-lts-hvm", "amzn2023-hvm"))
    ]
    amis = tmp / "amis.json"
    amis.write_text(json.dumps(amis_data))
    port = _free_port()
    env = {**os.environ, "MOTO_AMIS_PATH": str(amis), "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    log = (tmp / "moto.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/reset", data=b"", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto server did not start: {(tmp / 'moto.log').read_text()[-2000:]}")
            time.sleep(0.2)
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


@pytest.fixture()
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this process (and the pcluster child it starts) at the moto server."""
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return moto_server


@pytest.fixture(scope="module")
def fake_aws(moto_server: str) -> dict[str, str]:
    """The network and buckets the values reference, created in moto; returns their ids."""
    import boto3

    kw: dict[str, Any] = {
        "endpoint_url": moto_server,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    ec2 = boto3.client("ec2", **kw)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone=f"{REGION}a")
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=table, SubnetId=public["Subnet"]["SubnetId"])
    s3 = boto3.client("s3", **kw)
    iam = boto3.client("iam", **kw)
    for env_name in ("dev", "prod"):
        # The infra/cfn stack's ClusterNodePolicy, at the ARN the values name (IamPolicyValidator).
        values = yaml.safe_load((CLUSTER_DIR / "values" / f"{env_name}.yaml").read_text())
        arn = values["cluster_node_policy_arn"]
        assert arn.startswith("arn:aws:iam::123456789012:policy/"), arn
        iam.create_policy(
            PolicyName=arn.rsplit("/", 1)[1],
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}],
                }
            ),
        )
        s3.create_bucket(Bucket=f"vsrflow-media-{env_name}")
        artifacts = f"vsrflow-artifacts-{env_name}"
        s3.create_bucket(Bucket=artifacts)
        for script in sorted((REPO / "bootstrap").glob("*.sh")):
            s3.put_object(Bucket=artifacts, Key=f"bootstrap/{script.name}", Body=script.read_bytes())
    return {"head_subnet": public["Subnet"]["SubnetId"], "compute_subnet": private["Subnet"]["SubnetId"]}


def _render(tmp_path: Path, env_name: str, fake_aws: dict[str, str], **changes: Any) -> Path:
    """Render values/<env_name>.yaml with the moto network ids (and ``changes``: top-level groups)."""
    values = yaml.safe_load((CLUSTER_DIR / "values" / f"{env_name}.yaml").read_text())
    values["network"]["head_subnet_id"] = fake_aws["head_subnet"]
    values["network"]["compute_subnet_ids"] = [fake_aws["compute_subnet"]]
    for group, settings in changes.items():
        values[group].update(settings)
    values_path = tmp_path / "values" / f"{env_name}.yaml"
    values_path.parent.mkdir(exist_ok=True)
    values_path.write_text(yaml.safe_dump(values))
    out = tmp_path / f"{env_name}-cluster.yaml"
    assert (
        main(
            [
                "cluster",
                "render",
                "--values",
                str(values_path),
                "--template-dir",
                str(CLUSTER_DIR),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    return out


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_schema_accepts_the_shipped_values(
    env_name: str, tmp_path: Path, pcluster_venv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cluster.yaml"
    assert (
        main(
            [
                "cluster",
                "render",
                "--values",
                str(CLUSTER_DIR / "values" / f"{env_name}.yaml"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    code = main(["cluster", "validate", str(out), "--pcluster-venv", str(pcluster_venv)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"schema ok (aws-parallelcluster 3.16.1, cluster vsrflow-{env_name})" in captured.out


def test_schema_reports_every_bad_field_by_path(tmp_path: Path, pcluster_venv: Path) -> None:
    out = tmp_path / "cluster.yaml"
    assert (
        main(["cluster", "render", "--values", str(CLUSTER_DIR / "values" / "dev.yaml"), "-o", str(out)]) == 0
    )
    good = load_cluster_file(out)
    config = copy.deepcopy(good.config)
    config["SharedStorage"][0]["FsxLustreSettings"]["StorageCapacity"] = "lots"
    config["Image"]["Os"] = "windows"
    config["HeadNode"]["Colour"] = "blue"
    report = check_schema(ClusterFile(out, config, good.region, good.cluster_name), pcluster_venv)
    assert not report.ok
    where = {p.where: p.message for p in report.problems}
    assert where["SharedStorage[0].FsxLustreSettings.StorageCapacity"] == "Not a valid integer."
    assert "alinux2023" in where["Image.Os"]
    assert "Unknown field" in where["HeadNode.Colour"]


def test_validate_cli_names_the_field_and_exits_2(
    tmp_path: Path, pcluster_venv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cluster.yaml"
    assert (
        main(["cluster", "render", "--values", str(CLUSTER_DIR / "values" / "dev.yaml"), "-o", str(out)]) == 0
    )
    text = out.read_text().replace("QueueUpdateStrategy: DRAIN", "QueueUpdateStrategy: SOMETIMES")
    out.write_text(text)
    code = main(["cluster", "validate", str(out), "--pcluster-venv", str(pcluster_venv)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Scheduling.SlurmSettings.QueueUpdateStrategy" in err.strip().splitlines()[-1]


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_full_validation_and_dry_run_pass_against_moto(
    env_name: str,
    tmp_path: Path,
    pcluster_venv: Path,
    fake_aws: dict[str, str],
    aws_env: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _render(tmp_path, env_name, fake_aws)
    code = main(
        ["cluster", "validate", str(out), "--full", "--pcluster-venv", str(pcluster_venv), *SUPPRESS_ARGS]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "validators ok (Request would have succeeded, but DryRun flag is set.)" in captured.out
    # The validators really ran: pcluster's own notes about this config come back.
    assert "KeyPairValidator" in captured.out and "DeletionPolicyValidator" in captured.out


def test_validators_catch_what_the_schema_cannot(
    tmp_path: Path, pcluster_venv: Path, fake_aws: dict[str, str], aws_env: str
) -> None:
    out = _render(tmp_path, "dev", fake_aws)
    cluster = load_cluster_file(out)
    config = copy.deepcopy(cluster.config)
    config["Scheduling"]["SlurmQueues"][0]["Name"] = "CPU_q"  # schema accepts, NameValidator does not
    config["Scheduling"]["SlurmSettings"]["CustomSlurmSettings"].append(
        {"SlurmctldParameters": "x"}
    )  # denied
    config["SharedStorage"][0]["FsxLustreSettings"]["StorageCapacity"] = 1000
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    bad_cluster = load_cluster_file(bad)
    assert check_schema(bad_cluster, pcluster_venv).ok  # the schema alone misses all of these
    report = dry_run(bad_cluster, pcluster_venv, suppress=MOTO_UNSUPPORTED)
    assert not report.ok
    errors = {p.where: p.message for p in report.errors}
    assert "NameValidator" in errors, report.problems
    assert "Invalid name 'CPU_q'" in errors["NameValidator"]
    assert "SlurmctldParameters" in errors["CustomSlurmSettingsValidator"]
    assert "1,200" in errors["FsxStorageCapacityValidator"]


def test_dry_run_fails_on_a_subnet_that_does_not_exist(
    tmp_path: Path,
    pcluster_venv: Path,
    fake_aws: dict[str, str],
    aws_env: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _render(tmp_path, "dev", fake_aws)
    out.write_text(out.read_text().replace(fake_aws["head_subnet"], "subnet-00000000000000bad"))
    code = main(
        ["cluster", "validate", str(out), "--full", "--pcluster-venv", str(pcluster_venv), *SUPPRESS_ARGS]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "The subnet ID 'subnet-00000000000000bad' does not exist" in err.strip().splitlines()[-1]


def test_dry_run_warns_about_missing_bootstrap_scripts(
    tmp_path: Path, pcluster_venv: Path, fake_aws: dict[str, str], aws_env: str
) -> None:
    out = _render(tmp_path, "dev", fake_aws, buckets={"bootstrap_prefix": "not-uploaded/"})
    report = dry_run(load_cluster_file(out), pcluster_venv, suppress=MOTO_UNSUPPORTED)
    missing = [p.message for p in report.problems if p.where == "AsyncTimedUrlValidator"]
    assert any("not-uploaded/gpu-node.sh" in m for m in missing), report.problems
    assert any("not-uploaded/head-node.sh" in m for m in missing), report.problems
