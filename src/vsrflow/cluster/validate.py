"""Validate a rendered ``cluster.yaml`` with ParallelCluster itself, run from its own venv.

Two depths:

* :func:`check_schema` (offline, < 1 s): ParallelCluster's marshmallow schema via
  :mod:`vsrflow.cluster.pcluster_probe`; catches wrong types, unknown keys, bad enums.
* :func:`dry_run` (needs AWS or a moto server): ``pcluster create-cluster --dryrun true``, which runs
  every config validator (subnets, instance types, AMI, FSx capacity, queue names, S3 scripts, ...)
  and stops before creating anything. ``pcluster`` exits 1 even when the request would succeed, so
  success is decided by its message, :data:`DRY_RUN_OK`.

Nothing here goes through a shell: argument lists only, the config travels as JSON on stdin.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vsrflow.errors import ExternalToolError, InputError

PROBE = Path(__file__).with_name("pcluster_probe.py")
DRY_RUN_OK = "Request would have succeeded, but DryRun flag is set"
#: Tag the template sets to the cluster name (a cluster.yaml does not otherwise carry its name).
CLUSTER_NAME_TAG = "vsrflow:cluster"


@dataclass(frozen=True)
class Problem:
    """One finding: ``where`` is a field path (schema) or a validator type (dry run)."""

    level: str  # ERROR, WARNING or INFO
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level} {self.where}: {self.message}"


@dataclass(frozen=True)
class Report:
    """The outcome of one check: ``ok`` and every finding (warnings/infos included)."""

    ok: bool
    problems: list[Problem] = field(default_factory=list)
    detail: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "ERROR"]


@dataclass(frozen=True)
class ClusterFile:
    """A parsed ``cluster.yaml``: its path, content, region and the cluster name to validate under."""

    path: Path
    config: dict[str, Any]
    region: str
    cluster_name: str


def load_cluster_file(path: Path, cluster_name: str | None = None) -> ClusterFile:
    """Read a rendered config. The name is ``cluster_name`` or the ``vsrflow:cluster`` tag."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(
            f"cluster config {path}: cannot read it ({exc.strerror})", hint="check the path"
        ) from exc
    except yaml.YAMLError as exc:
        raise InputError(
            f"cluster config {path}: not valid YAML", hint="render it with vsrflow cluster render"
        ) from exc
    if not isinstance(config, dict):
        raise InputError(
            f"cluster config {path}: not a YAML mapping", hint="render it with vsrflow cluster render"
        )
    region = config.get("Region")
    if not isinstance(region, str) or not region:
        raise InputError(
            f"cluster config {path}: Region is missing", hint="set Region (the values file's region)"
        )
    if cluster_name is None:
        tags = config.get("Tags") or []
        names = [t.get("Value") for t in tags if isinstance(t, dict) and t.get("Key") == CLUSTER_NAME_TAG]
        cluster_name = names[0] if names and isinstance(names[0], str) else None
    if not cluster_name:
        raise InputError(
            f"cluster config {path}: no cluster name (no {CLUSTER_NAME_TAG} tag)",
            hint="pass --cluster-name NAME",
        )
    return ClusterFile(path=path, config=config, region=region, cluster_name=cluster_name)


def venv_tool(venv: Path, name: str) -> Path:
    """``<venv>/bin/<name>``; InputError saying how to create the venv when it is missing."""
    tool = venv / "bin" / name
    if not tool.exists():
        raise InputError(
            f"ParallelCluster venv {venv}: no {tool}",
            hint="run `make pcluster-venv` or set VSRFLOW_PCLUSTER_VENV to a venv with aws-parallelcluster",
        )
    return tool


def check_schema(cluster: ClusterFile, venv: Path, *, timeout: float = 120.0) -> Report:
    """ParallelCluster's own schema on the config (offline). ``ok`` False lists every field error."""
    python = venv_tool(venv, "python")
    request = json.dumps({"cluster_name": cluster.cluster_name, "config": cluster.config})
    argv = [str(python), str(PROBE)]
    proc = subprocess.run(
        argv,
        input=request,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_child_env(cluster.region),
        check=False,
    )
    try:
        answer = json.loads(proc.stdout)
    except json.JSONDecodeError:
        answer = None
    if proc.returncode != 0 or not isinstance(answer, dict):
        raise ExternalToolError(argv, proc.returncode, proc.stderr, what="ParallelCluster schema check")
    problems = [Problem("ERROR", where, msg) for where, msg in flatten_messages(answer.get("errors") or {})]
    return Report(
        ok=bool(answer["ok"]), problems=problems, detail=f"aws-parallelcluster {answer.get('version')}"
    )


def dry_run(
    cluster: ClusterFile,
    venv: Path,
    *,
    suppress: tuple[str, ...] = (),
    timeout: float = 300.0,
) -> Report:
    """``pcluster create-cluster --dryrun true``: every validator, no resources created.

    ``suppress`` names validator types to skip (``pcluster --suppress-validators type:NAME``), e.g.
    where a fake AWS cannot answer a check. Uses the caller's AWS credentials/endpoint environment.
    """
    pcluster = venv_tool(venv, "pcluster")
    argv = [
        str(pcluster), "create-cluster", "--dryrun", "true",
        "--cluster-name", cluster.cluster_name,
        "--cluster-configuration", str(cluster.path),
        "--region", cluster.region,
    ]  # fmt: skip
    if suppress:
        argv += ["--suppress-validators", *(f"type:{name}" for name in suppress)]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=_child_env(cluster.region), check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ExternalToolError(
            argv, -1, f"timed out after {timeout:.0f} s", what="pcluster dry run"
        ) from exc
    try:
        answer = json.loads(proc.stdout)
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise ExternalToolError(argv, proc.returncode, proc.stderr or proc.stdout, what="pcluster dry run")
    messages = answer.get("validationMessages") or answer.get("configurationValidationErrors") or []
    problems = [
        Problem(str(m.get("level", "ERROR")), str(m.get("type", "?")), str(m.get("message", "")))
        for m in messages
        if isinstance(m, dict)
    ]
    message = str(answer.get("message", ""))
    ok = DRY_RUN_OK in message
    if not ok and not any(p.level == "ERROR" for p in problems):
        problems.append(Problem("ERROR", "pcluster", message or proc.stderr.strip()[-500:]))
    return Report(ok=ok, problems=problems, detail=message)


def flatten_messages(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested ``{"A": {"0": {"B": ["msg"]}}}`` -> ``[("A[0].B", "msg")]``."""
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            key_text = str(key)
            if key_text.isdigit():
                path = f"{prefix}[{key_text}]"
            elif key_text == "_schema":
                path = prefix or "(top level)"
            else:
                path = f"{prefix}.{key_text}" if prefix else key_text
            out.extend(flatten_messages(value, path))
    elif isinstance(messages, list):
        for item in messages:
            out.extend(flatten_messages(item, prefix))
    else:
        out.append((prefix or "(top level)", str(messages)))
    return out


def _child_env(region: str) -> dict[str, str]:
    """The caller's environment (credentials, AWS_ENDPOINT_URL) with the config's region."""
    env = dict(os.environ)
    env["AWS_DEFAULT_REGION"] = region
    env.pop("PYTHONPATH", None)  # the other venv must not import this venv's packages
    env.pop("VIRTUAL_ENV", None)
    return env
