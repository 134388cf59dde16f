"""vsrflow cluster render: values schema + cross-field rules name the bad field; the template renders
what the workflow needs (SSM, queues, FSx, OnNodeConfigured, S3 scoping, Slurm settings, tags)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, run_cli
from vsrflow.cli import main
from vsrflow.cluster.render import render_values
from vsrflow.cluster.values import GPU_COUNTS, SSM_POLICY_ARN
from vsrflow.errors import InputError

CLUSTER_DIR = REPO / "infra" / "cluster"
DEV = CLUSTER_DIR / "values" / "dev.yaml"
PROD = CLUSTER_DIR / "values" / "prod.yaml"


def _values(path: Path = DEV) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _render(tmp_path: Path, values: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return render_values(path, CLUSTER_DIR).config


def _queue(config: dict[str, Any], name: str) -> dict[str, Any]:
    queues = {q["Name"]: q for q in config["Scheduling"]["SlurmQueues"]}
    return queues[name]


def test_dev_renders_everything_the_workflow_needs() -> None:
    rendered = render_values(DEV)
    config = rendered.config
    assert rendered.cluster_name == "vsrflow-dev" and config["Region"] == "us-east-1"
    head = config["HeadNode"]
    node_policy = "arn:aws:iam::123456789012:policy/vsrflow-dev-ClusterNodePolicy"
    assert head["Iam"]["AdditionalIamPolicies"] == [{"Policy": SSM_POLICY_ARN}, {"Policy": node_policy}]
    # Media bucket rights come only from the stack's scoped ClusterNodePolicy (no broad S3Access
    # write); the artifacts bucket is read-only.
    assert head["Iam"]["S3Access"] == [{"BucketName": "vsrflow-artifacts-dev", "EnableWriteAccess": False}]
    assert (
        head["CustomActions"]["OnNodeConfigured"]["Script"]
        == "s3://vsrflow-artifacts-dev/bootstrap/head-node.sh"
    )
    args = head["CustomActions"]["OnNodeConfigured"]["Args"]
    assert args[args.index("--version") + 1] == "0.1.0"
    assert args[args.index("--topic-arn") + 1] == "arn:aws:sns:us-east-1:123456789012:vsrflow-dev-events"
    assert (
        args[args.index("--wheel-uri") + 1]
        == "s3://vsrflow-artifacts-dev/wheels/vsrflow-0.1.0-py3-none-any.whl"
    )
    assert all(isinstance(a, str) for a in args)

    cpu, gpu = _queue(config, "cpu"), _queue(config, "gpu")
    assert [c["InstanceType"] for c in cpu["ComputeResources"]] == ["c6i.4xlarge"]
    assert gpu["ComputeResources"] == [
        {"Name": "g5-xlarge", "InstanceType": "g5.xlarge", "MinCount": 0, "MaxCount": 2}
    ]
    for queue, script in ((cpu, "cpu-node.sh"), (gpu, "gpu-node.sh")):
        assert queue["CustomActions"]["OnNodeConfigured"]["Script"].endswith(f"/bootstrap/{script}")
        assert queue["Iam"]["AdditionalIamPolicies"] == [{"Policy": node_policy}]
        assert queue["Iam"]["S3Access"] == [
            {"BucketName": "vsrflow-artifacts-dev", "EnableWriteAccess": False}
        ]
    gpu_args = gpu["CustomActions"]["OnNodeConfigured"]["Args"]
    assert gpu_args[gpu_args.index("--model") + 1] == "realesr-animevideov3"
    assert gpu_args[gpu_args.index("--gpus") + 1] == "1"

    slurm = {
        k: v for item in config["Scheduling"]["SlurmSettings"]["CustomSlurmSettings"] for k, v in item.items()
    }
    assert slurm["MaxArraySize"] == 10001
    assert slurm["DependencyParameters"] == "kill_invalid_depend"
    assert slurm["MinJobAge"] == 600

    (fsx,) = config["SharedStorage"]
    assert fsx["StorageType"] == "FsxLustre" and fsx["MountDir"] == "/fsx"
    settings = fsx["FsxLustreSettings"]
    assert settings["DeploymentType"] == "SCRATCH_2" and settings["StorageCapacity"] == 1200
    assert settings["ImportPath"] == "s3://vsrflow-media-dev/"
    assert settings["ExportPath"].startswith("s3://vsrflow-media-dev/")
    tags = {t["Key"]: t["Value"] for t in config["Tags"]}
    assert tags["vsrflow:cluster"] == "vsrflow-dev" and tags["project"] == "vsrflow"


def test_prod_uses_a_data_repository_association_and_one_endpoint_per_gpu() -> None:
    config = render_values(PROD).config
    settings = config["SharedStorage"][0]["FsxLustreSettings"]
    assert settings["DeploymentType"] == "PERSISTENT_2" and settings["PerUnitStorageThroughput"] == 250
    assert "ImportPath" not in settings
    (dra,) = settings["DataRepositoryAssociations"]
    assert dra["DataRepositoryPath"] == "s3://vsrflow-media-prod/"
    gpu = _queue(config, "gpu")
    assert gpu["ComputeResources"][0]["InstanceType"] == "g6.12xlarge"
    args = gpu["CustomActions"]["OnNodeConfigured"]["Args"]
    assert args[args.index("--gpus") + 1] == "4"
    cpu = _queue(config, "cpu")
    assert [(c["InstanceType"], c["MinCount"]) for c in cpu["ComputeResources"]] == [
        ("c6i.8xlarge", 1),
        ("c7i.8xlarge", 0),
    ]


def test_existing_file_system_renders_only_its_id(tmp_path: Path) -> None:
    values = _values()
    values["fsx"] = {"mode": "existing", "file_system_id": "fs-0123456789abcdef0"}
    settings = _render(tmp_path, values)["SharedStorage"][0]["FsxLustreSettings"]
    assert settings == {"FileSystemId": "fs-0123456789abcdef0"}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(values: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = values
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(values: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = values
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


BAD_VALUES = [
    ("gpu_queue.instance_type", _set("gpu_queue.instance_type", "m5.large"), "choose one of: g5.xlarge"),
    ("gpu_queue.instance_type", _set("gpu_queue.instance_type", "p3.2xlarge"), "is not allowed"),
    ("cpu_queue.instance_types[0]", _set("cpu_queue.instance_types", ["t2.micro"]), "does not match"),
    ("gpu_queue.max_count", _set("gpu_queue.max_count", -1), "less than the minimum"),
    ("gpu_queue.min_count", _set("gpu_queue.min_count", 5), "larger than max_count 2"),
    ("gpu_queue.name", _set("gpu_queue.name", "cpu"), "also the CPU queue's name"),
    ("cpu_queue.name", _set("cpu_queue.name", "CPU_q"), "Slurm partition name"),
    ("gpu_queue", _set("gpu_queue.instance_typo", "g5.xlarge"), "misspelt or unsupported"),
    ("gpu_queue", _drop("gpu_queue.model"), "'model' is a required property"),
    ("fsx.storage_capacity_gib", _set("fsx.storage_capacity_gib", 3600), "not 1200 or a multiple of 2400"),
    ("fsx.link", _set("fsx.link", "dra"), "needs deployment_type PERSISTENT_2"),
    (
        "fsx.per_unit_storage_throughput",
        _set("fsx.deployment_type", "PERSISTENT_2"),
        "required for PERSISTENT_2",
    ),
    ("fsx.file_system_id", _set("fsx.mode", "existing"), "required when fsx.mode is existing"),
    ("buckets.media", _set("buckets.media", "Media_Bucket"), "S3 bucket name"),
    ("region", _set("region", "moon-base-1"), "does not match"),
    ("vsrflow.version", _set("vsrflow.version", ">=0.1"), "exact vsrflow version"),
    ("network.compute_subnet_ids", _set("network.compute_subnet_ids", []), "should be non-empty"),
    ("network.head_subnet_id", _set("network.head_subnet_id", "subnet-xyz"), "does not match"),
    ("tags", _set("tags", {"aws:owner": "me"}), "not an allowed tag key"),
    ("slurm.max_array_size", _set("slurm.max_array_size", 1), "less than the minimum"),
    ("cluster_node_policy_arn", _set("cluster_node_policy_arn", "AmazonS3FullAccess"), "not an IAM policy"),
    ("topic_arn", _set("topic_arn", "arn:aws:sns:eu-west-1:123456789012:t"), "is in eu-west-1"),
    ("(top level)", _drop("topic_arn"), "'topic_arn' is a required property"),
    # Multi Model Server refuses ports from 32767 up: the endpoints of a node must stay below.
    ("gpu_queue.base_port", _set("gpu_queue.base_port", 40000), "40000 is greater than the maximum of 32766"),
    (
        "gpu_queue.base_port",
        lambda v: (_set("gpu_queue.base_port", 32765)(v), _set("gpu_queue.instance_type", "g6.12xlarge")(v)),
        "reaches port 32768; Multi Model Server accepts ports up to 32766 only",
    ),
    (
        "event_path.presets",
        _set("event_path", {"presets": "anime=anime:2;reboot"}),
        "is not a folder=preset:scale list",
    ),
    (
        "event_path.upload_prefix",
        _set("event_path", {"upload_prefix": "uploads"}),
        "is not a key prefix ending in /",
    ),
]


@pytest.mark.parametrize(
    ("field", "mutate", "problem"), BAD_VALUES, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_VALUES)]
)
def test_bad_values_fail_at_render_naming_the_field(
    tmp_path: Path, field: str, mutate: Callable[[dict[str, Any]], None], problem: str
) -> None:
    values = _values()
    mutate(values)
    with pytest.raises(InputError) as info:
        _render(tmp_path, values)
    message = str(info.value)
    assert f"values.yaml: {field}: " in message, message
    assert problem in message, message


def test_values_are_emitted_as_yaml_scalars_never_structure(tmp_path: Path) -> None:
    values = _values()
    tricky = "a: b\n- c # {{ not jinja }} 'q' \"dq\""
    values["tags"] = {"note": tricky}
    tags = {t["Key"]: t["Value"] for t in _render(tmp_path, values)["Tags"]}
    assert tags["note"] == tricky


def test_strict_undefined_names_the_missing_value(tmp_path: Path) -> None:
    shutil.copy(CLUSTER_DIR / "values.schema.json", tmp_path / "values.schema.json")
    template = (
        (CLUSTER_DIR / "cluster.yaml.j2").read_text().replace("{{ os | tojson }}", "{{ image_os | tojson }}")
    )
    (tmp_path / "cluster.yaml.j2").write_text(template)
    with pytest.raises(InputError, match="missing: 'image_os' is undefined"):
        render_values(DEV, tmp_path)


def test_gpu_counts_match_the_schema_and_ec2_instance_data() -> None:
    schema = json.loads((CLUSTER_DIR / "values.schema.json").read_text())
    allowed = schema["properties"]["gpu_queue"]["properties"]["instance_type"]["enum"]
    assert sorted(allowed) == sorted(GPU_COUNTS)
    assert {t.split(".")[0] for t in allowed} == {"g5", "g6", "p4d", "p5"}
    # moto ships EC2's DescribeInstanceTypes data: the GPU count per type must agree with it.
    spec = importlib.util.find_spec("moto")  # located, not imported (importing moto.ec2 takes seconds)
    assert spec is not None and spec.origin is not None
    data_path = Path(spec.origin).parent / "ec2" / "resources" / "instance_types.json.gz"
    ec2_types = json.loads(gzip.decompress(data_path.read_bytes()))
    for name, count in GPU_COUNTS.items():
        gpus = ec2_types[name]["GpuInfo"]["Gpus"]
        assert sum(g["Count"] for g in gpus) == count, name


def test_cli_render_writes_the_file_and_rejects_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process: the CLI module imports torch (models_cmd), ~5-15 s per child process on 2 cores.
    out = tmp_path / "out" / "cluster.yaml"
    assert main(["cluster", "render", "--values", str(DEV), "-o", str(out)]) == 0
    assert "cluster vsrflow-dev" in capsys.readouterr().out
    assert yaml.safe_load(out.read_text())["HeadNode"]["InstanceType"] == "m6i.xlarge"

    values = _values()
    values["gpu_queue"]["instance_type"] = "t3.micro"
    bad = tmp_path / "values" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text(yaml.safe_dump(values))
    out2 = tmp_path / "bad-cluster.yaml"
    code = main(
        ["cluster", "render", "--values", str(bad), "--template-dir", str(CLUSTER_DIR), "-o", str(out2)]
    )
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "gpu_queue.instance_type" in lines[0] and "t3.micro" in lines[0], lines
    assert not out2.exists()


def test_cli_render_in_a_child_process(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = run_cli(["cluster", "render", "--values", str(PROD), "-o", "-"], cli_env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["Region"] == "us-east-1"


def test_missing_template_dir_is_an_input_error(tmp_path: Path) -> None:
    values = tmp_path / "v" / "x.yaml"
    values.parent.mkdir()
    values.write_text(DEV.read_text())
    with pytest.raises(InputError, match="--template-dir"):
        render_values(values, tmp_path / "nowhere")


def test_validate_without_the_pcluster_venv_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cluster.yaml"
    assert main(["cluster", "render", "--values", str(DEV), "-o", str(out)]) == 0
    code = main(["cluster", "validate", str(out), "--pcluster-venv", str(tmp_path / "no-venv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "make pcluster-venv" in err[0], err


def test_validate_needs_a_cluster_name_when_the_tag_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = render_values(DEV).config
    config["Tags"] = [t for t in config["Tags"] if t["Key"] != "vsrflow:cluster"]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["cluster", "validate", str(path)]) == 2
    assert "pass --cluster-name NAME" in capsys.readouterr().err


def test_minimal_values_get_the_schema_defaults(tmp_path: Path) -> None:
    minimal = {
        "cluster_name": "tiny",
        "region": "eu-west-1",
        "vsrflow": {
            "version": "1.2.3",
            "wheel_sha256": "1" * 64,
            "requirements_sha256": "2" * 64,
            "lib_sha256": "3" * 64,
        },
        "network": {
            "head_subnet_id": "subnet-0123456789abcdef0",
            "compute_subnet_ids": ["subnet-0123456789abcdef1"],
        },
        "buckets": {"media": "m-bucket", "artifacts": "a-bucket"},
        "cluster_node_policy_arn": "arn:aws:iam::111122223333:policy/tiny-nodes",
        "topic_arn": "arn:aws:sns:eu-west-1:111122223333:tiny-events",
        "head_node": {"instance_type": "m6i.large"},
        "cpu_queue": {"instance_types": ["c6i.2xlarge"], "max_count": 2},
        "gpu_queue": {"instance_type": "p5.48xlarge", "max_count": 1, "model": "RealESRGAN_x4plus"},
        "fsx": {"mode": "new", "storage_capacity_gib": 1200},
        "slurm": {},
    }
    config = _render(tmp_path, minimal)
    assert config["Image"]["Os"] == "ubuntu2204"
    assert [q["Name"] for q in config["Scheduling"]["SlurmQueues"]] == ["cpu", "gpu"]
    gpu_args = _queue(config, "gpu")["CustomActions"]["OnNodeConfigured"]["Args"]
    assert gpu_args[gpu_args.index("--gpus") + 1] == "8"
    for flag, digit in (("--wheel-sha256", "1"), ("--requirements-sha256", "2"), ("--lib-sha256", "3")):
        assert gpu_args[gpu_args.index(flag) + 1] == digit * 64
    assert gpu_args[gpu_args.index("--base-port") + 1] == "8080"
    assert (
        _queue(config, "gpu")["CustomActions"]["OnNodeConfigured"]["Script"]
        == "s3://a-bucket/bootstrap/gpu-node.sh"
    )
    settings = config["SharedStorage"][0]["FsxLustreSettings"]
    assert settings["DeploymentType"] == "SCRATCH_2" and settings["DeletionPolicy"] == "Retain"
    assert "ImportPath" not in settings  # link: none by default
    assert "Ssh" not in config["HeadNode"]
    slurm = {
        k: v for item in config["Scheduling"]["SlurmSettings"]["CustomSlurmSettings"] for k, v in item.items()
    }
    assert slurm["MaxArraySize"] == 10001


@pytest.mark.parametrize("field", ["wheel_sha256", "requirements_sha256", "lib_sha256"])
@pytest.mark.parametrize("value", [None, "A" * 64, "a" * 63, "g" * 64])
def test_artifact_sha256_values_are_required_64_hex(tmp_path: Path, field: str, value: str | None) -> None:
    data = _values()
    if value is None:
        del data["vsrflow"][field]
    else:
        data["vsrflow"][field] = value
    with pytest.raises(InputError, match=field):
        _render(tmp_path, data)
