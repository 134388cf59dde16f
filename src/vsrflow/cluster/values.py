"""Values files of the ParallelCluster template: load, check, fill defaults, derive the render context.

A values file (``infra/cluster/values/*.yaml``) is checked in two steps, both naming the field that
is wrong: the JSON Schema next to the template (``values.schema.json``: types, ranges, allowed
instance types) and :func:`check_rules` (rules across fields, e.g. FSx capacity per deployment type,
min <= max). :func:`render_context` then derives what the template needs (S3 script URIs, bootstrap
arguments, GPU count per instance type) so the template itself stays declarative.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import jsonschema
import yaml

from vsrflow.config import MAX_ENDPOINT_PORT
from vsrflow.errors import InputError

#: GPUs per instance type of the GPU queue: one model endpoint per GPU (``values.schema.json`` enum).
GPU_COUNTS: dict[str, int] = {
    **{f"g5.{size}": 1 for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    **{f"g5.{size}": 4 for size in ("12xlarge", "24xlarge")},
    "g5.48xlarge": 8,
    **{f"g6.{size}": 1 for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    **{f"g6.{size}": 4 for size in ("12xlarge", "24xlarge")},
    "g6.48xlarge": 8,
    "p4d.24xlarge": 8,
    "p5.48xlarge": 8,
}

#: The managed policy that lets SSM reach the head node (the S3 trigger sends AWS-RunShellScript).
SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"

#: FSx for Lustre SSD capacities: 1200 GiB, 2400 GiB, then steps of 2400 GiB (SCRATCH_2, PERSISTENT_2).
FSX_CAPACITY_STEP_GIB = 2400


def load_values(path: Path) -> dict[str, Any]:
    """Read a values file (YAML mapping). Raises InputError when it is missing or not a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"values file {path}: cannot read it ({exc.strerror})", hint="check the path"
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"values file {path}: not valid YAML{where}", hint="fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise InputError(
            f"values file {path}: must be a YAML mapping of settings", hint="see values/dev.yaml"
        )
    return data


def load_schema(path: Path) -> dict[str, Any]:
    """The values JSON Schema (``values.schema.json``)."""
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def check_values(data: Mapping[str, Any], schema: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """Check ``data`` against the schema and the cross-field rules; returns a copy with defaults filled.

    Raises:
        InputError: ``"<source>: <dotted.field>: <problem>"`` for the first problem found (schema
            problems first, ordered by field path so the message is stable).
    """
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        error = errors[0]
        field = _dotted(error.absolute_path)
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise InputError(
            f"{source}: {field}: {_describe(error)}{more}",
            hint=f"fix {field} in the values file (schema: values.schema.json)",
        )
    values = _with_defaults(schema, copy.deepcopy(dict(data)), schema)
    check_rules(values, source=source)
    return values


def check_rules(values: Mapping[str, Any], *, source: str) -> None:
    """Rules that span fields (the schema cannot say them); raises InputError naming the field."""

    def fail(field: str, problem: str) -> NoReturn:
        raise InputError(f"{source}: {field}: {problem}", hint=f"fix {field} in the values file")

    for queue in ("cpu_queue", "gpu_queue"):
        q = values[queue]
        if q["max_count"] < 1:
            fail(f"{queue}.max_count", "must be at least 1 (the workflow needs this queue)")
        if q["min_count"] > q["max_count"]:
            fail(f"{queue}.min_count", f"{q['min_count']} is larger than max_count {q['max_count']}")
    if values["cpu_queue"]["name"] == values["gpu_queue"]["name"]:
        fail("gpu_queue.name", f"{values['gpu_queue']['name']!r} is also the CPU queue's name")
    gpu = values["gpu_queue"]
    last = gpu["base_port"] + GPU_COUNTS[gpu["instance_type"]] - 1
    if last > MAX_ENDPOINT_PORT:
        fail(
            "gpu_queue.base_port",
            f"base_port + GPUs per node reaches port {last}; Multi Model Server accepts ports up to "
            f"{MAX_ENDPOINT_PORT} only",
        )

    topic_region = values["topic_arn"].split(":")[3]
    if topic_region != values["region"]:
        fail(
            "topic_arn", f"is in {topic_region}, the cluster in {values['region']} (use that region's stack)"
        )

    fsx = values["fsx"]
    if fsx["mode"] == "existing":
        if "file_system_id" not in fsx:
            fail("fsx.file_system_id", "is required when fsx.mode is existing")
        for key in ("storage_capacity_gib", "per_unit_storage_throughput"):
            if key in fsx:
                fail(
                    f"fsx.{key}", "only applies to fsx.mode new (an existing file system keeps its settings)"
                )
        if fsx["link"] != "none":
            fail("fsx.link", "only applies to fsx.mode new (link an existing file system in FSx itself)")
        return
    if "file_system_id" in fsx:
        fail("fsx.file_system_id", "only applies to fsx.mode existing")
    capacity = fsx.get("storage_capacity_gib")
    if capacity is None:
        fail("fsx.storage_capacity_gib", "is required when fsx.mode is new")
    elif capacity != 1200 and capacity % FSX_CAPACITY_STEP_GIB != 0:
        fail("fsx.storage_capacity_gib", f"{capacity} is not 1200 or a multiple of {FSX_CAPACITY_STEP_GIB}")
    persistent = fsx["deployment_type"] == "PERSISTENT_2"
    if persistent and "per_unit_storage_throughput" not in fsx:
        fail("fsx.per_unit_storage_throughput", "is required for PERSISTENT_2 (125, 250, 500 or 1000)")
    if not persistent and "per_unit_storage_throughput" in fsx:
        fail("fsx.per_unit_storage_throughput", "only applies to PERSISTENT_2")
    if fsx["link"] == "import_export" and persistent:
        fail("fsx.link", "import_export (ImportPath/ExportPath) needs SCRATCH_2; use dra with PERSISTENT_2")
    if fsx["link"] == "dra" and not persistent:
        fail("fsx.link", "dra (data repository association) needs deployment_type PERSISTENT_2")


def render_context(values: Mapping[str, Any], *, values_name: str) -> dict[str, Any]:
    """The template context: the checked values plus derived fields.

    Derived: ``ssm_policy_arn``; ``bootstrap.{head,cpu,gpu}.{script,args}`` (S3 URI of each
    OnNodeConfigured script and its argument list, all plain strings; the args carry
    ``vsrflow.{wheel,requirements,lib}_sha256``, schema-checked as 64 lowercase hex digits, which
    the nodes check their downloads against before sourcing or installing anything);
    ``cpu_queue.compute_resources`` (one per instance type, names ``<family>-<size>``);
    ``gpu_queue.resource_name`` and ``gpu_count``;
    ``fsx.link_uri``/``fsx.export_uri`` for linked file systems.
    """
    ctx = copy.deepcopy(dict(values))
    ctx["values_name"] = values_name
    ctx["ssm_policy_arn"] = SSM_POLICY_ARN
    buckets = ctx["buckets"]
    prefix = f"s3://{buckets['artifacts']}/{buckets['bootstrap_prefix']}"
    vsr = ctx["vsrflow"]
    fsx = ctx["fsx"]
    cpu, gpu = ctx["cpu_queue"], ctx["gpu_queue"]
    common = [
        "--version", vsr["version"],
        "--wheel-uri", f"s3://{buckets['artifacts']}/{vsr['wheel_prefix']}vsrflow-{vsr['version']}-py3-none-any.whl",
        "--wheel-sha256", vsr["wheel_sha256"],
        "--requirements-sha256", vsr["requirements_sha256"],
        "--lib-uri", f"{prefix}lib.sh",
        "--lib-sha256", vsr["lib_sha256"],
        "--region", ctx["region"],
        "--bucket", buckets["media"],
        "--cluster-name", ctx["cluster_name"],
        "--shared-dir", fsx["mount_dir"],
        "--cpu-partition", cpu["name"],
        "--gpu-partition", gpu["name"],
        "--log-level", vsr["log_level"],
        "--topic-arn", ctx["topic_arn"],
        # The stack's upload rules: the head node derives every job request again with them.
        "--upload-prefix", ctx["event_path"]["upload_prefix"],
        "--output-prefix", ctx["event_path"]["output_prefix"],
        "--presets", ctx["event_path"]["presets"],
        "--max-object-bytes", str(ctx["event_path"]["max_object_bytes"]),
        # Every node: Slurm jobs carry the submitting (head) node's environment to the GPU nodes.
        "--base-port", str(gpu["base_port"]),
    ]  # fmt: skip
    gpu_count = GPU_COUNTS[gpu["instance_type"]]
    ctx["bootstrap"] = {
        "head": {"script": f"{prefix}head-node.sh", "args": common},
        "cpu": {"script": f"{prefix}cpu-node.sh", "args": common},
        "gpu": {
            "script": f"{prefix}gpu-node.sh",
            "args": [
                *common,
                "--model", gpu["model"],
                "--gpus", str(gpu_count),
                "--warm-timeout", str(gpu["warm_timeout_s"]),
            ],
        },
    }  # fmt: skip
    cpu["compute_resources"] = [
        {
            "name": _resource_name(instance_type),
            "instance_type": instance_type,
            # The queue's min/max apply to its first resource; the others scale from zero.
            "min_count": cpu["min_count"] if i == 0 else 0,
            "max_count": cpu["max_count"],
        }
        for i, instance_type in enumerate(cpu["instance_types"])
    ]
    gpu["resource_name"] = _resource_name(gpu["instance_type"])
    ctx["gpu_count"] = gpu_count
    if fsx["mode"] == "new" and fsx["link"] != "none":
        fsx["link_uri"] = f"s3://{buckets['media']}/{fsx['link_prefix']}"
        fsx["export_uri"] = f"s3://{buckets['media']}/{fsx['link_prefix']}fsx-export/"
    ctx["tags"] = {
        "vsrflow:cluster": ctx["cluster_name"],
        "vsrflow:environment": ctx["environment"],
        **ctx["tags"],
    }
    return ctx


def _resource_name(instance_type: str) -> str:
    """A ParallelCluster compute resource name for an instance type (``g5.12xlarge`` -> ``g5-12xlarge``)."""
    return instance_type.replace(".", "-")


def _dotted(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".") or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """A short, user-facing rendering of one schema error."""
    if error.validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return f"{error.instance!r} is not allowed; choose one of: {choices}"
    if error.validator == "pattern":
        schema = error.schema if isinstance(error.schema, dict) else {}
        if schema.get("description"):
            return f"{error.instance!r} is not {schema['description']}"
        return f"{error.instance!r} does not match {error.validator_value}"
    if error.validator == "additionalProperties":
        return f"{error.message} (misspelt or unsupported setting)"
    return error.message


def _with_defaults(schema: Mapping[str, Any], data: Any, root: Mapping[str, Any]) -> Any:
    """Fill ``default`` values of the schema's object properties into ``data`` (recursively)."""
    schema = _resolve(schema, root)
    if not isinstance(data, dict) or "properties" not in schema:
        return data
    for name, sub in schema["properties"].items():
        sub = _resolve(sub, root)
        if name not in data and "default" in sub:
            data[name] = copy.deepcopy(sub["default"])
        if name in data:
            data[name] = _with_defaults(sub, data[name], root)
    return data


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/name``), merging sibling keys such as ``default``."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
