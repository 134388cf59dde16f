"""``vsrflow cluster render|validate``: the ParallelCluster config from a values file, checked by pcluster.

* ``vsrflow cluster render --values infra/cluster/values/dev.yaml -o cluster.yaml``
* ``vsrflow cluster validate cluster.yaml`` (offline schema) ``[--full]`` (plus every validator and
  ``pcluster create-cluster --dryrun true``: needs AWS credentials, or AWS_ENDPOINT_URL for moto).

Exit 0 valid, 2 bad values or an invalid config (every finding printed, one per line), 1 internal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from vsrflow.config import Settings
from vsrflow.errors import InputError
from vsrflow.files import atomic_write_text

if TYPE_CHECKING:
    from vsrflow.cluster.validate import Problem


def register(sub: Any) -> None:
    p = sub.add_parser("cluster", help="render and validate the ParallelCluster configuration")
    csub = p.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)

    r = csub.add_parser("render", help="render cluster.yaml from a values file (checked against its schema)")
    r.add_argument(
        "--values", type=Path, required=True, help="values file, e.g. infra/cluster/values/dev.yaml"
    )
    r.add_argument(
        "-o", "--output", type=Path, required=True, help="where to write cluster.yaml ('-': stdout)"
    )
    r.add_argument(
        "--template-dir", type=Path, default=None,
        help="directory with cluster.yaml.j2 and values.schema.json (default: the values file's ../)",
    )  # fmt: skip
    r.set_defaults(handler=run_render)

    v = csub.add_parser(
        "validate", help="validate cluster.yaml with ParallelCluster's schema (and validators)"
    )
    v.add_argument("config", type=Path, help="a rendered cluster.yaml")
    v.add_argument(
        "--full", action="store_true",
        help="also run every pcluster validator via `pcluster create-cluster --dryrun true` (calls AWS)",
    )  # fmt: skip
    v.add_argument(
        "--cluster-name", default=None, help="name to validate under (default: the vsrflow:cluster tag)"
    )
    v.add_argument(
        "--suppress-validator", action="append", default=[], metavar="TYPE",
        help="skip a pcluster validator type in --full (repeatable), e.g. KeyPairValidator",
    )  # fmt: skip
    v.add_argument(
        "--pcluster-venv", type=Path, default=None,
        help="venv with aws-parallelcluster (default: VSRFLOW_PCLUSTER_VENV or .venv-pcluster)",
    )  # fmt: skip
    v.set_defaults(handler=run_validate)


def _need_cluster_extra() -> None:
    try:
        import jinja2  # noqa: F401
        import jsonschema  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"vsrflow cluster needs {exc.name}, which is not installed", hint="pip install 'vsrflow[cluster]'"
        ) from exc


def run_render(args: argparse.Namespace, settings: Settings) -> int:
    _need_cluster_extra()
    from vsrflow.cluster.render import render_values

    rendered = render_values(args.values, args.template_dir)
    output: Path = args.output
    if str(output) == "-":
        sys.stdout.write(rendered.text)
        return 0
    atomic_write_text(output, rendered.text)
    queues = rendered.config["Scheduling"]["SlurmQueues"]
    summary = ", ".join(
        f"{q['Name']}: {'/'.join(c['InstanceType'] for c in q['ComputeResources'])}" for q in queues
    )
    print(f"wrote {output} (cluster {rendered.cluster_name}, {rendered.region}; queues {summary})")
    return 0


def run_validate(args: argparse.Namespace, settings: Settings) -> int:
    _need_cluster_extra()
    from vsrflow.cluster.validate import check_schema, dry_run, load_cluster_file

    venv: Path = args.pcluster_venv or settings.pcluster_venv
    cluster = load_cluster_file(args.config, args.cluster_name)
    report = check_schema(cluster, venv)
    if not report.ok:
        _fail(args.config, "ParallelCluster schema", report.problems)
    print(f"{args.config}: schema ok ({report.detail}, cluster {cluster.cluster_name})")
    if not args.full:
        return 0
    report = dry_run(cluster, venv, suppress=tuple(args.suppress_validator))
    for problem in report.problems:
        if problem.level != "ERROR":
            print(f"  {problem}")
    if not report.ok:
        _fail(args.config, "pcluster validators (dry run)", report.problems)
    print(f"{args.config}: validators ok ({report.detail})")
    return 0


def _fail(path: Path, what: str, problems: Sequence[Problem]) -> NoReturn:
    """Raise the one-line InputError; with several errors, list them first (one per line)."""
    errors = [p for p in problems if p.level == "ERROR"] or list(problems)
    if len(errors) > 1:
        for problem in errors:
            print(f"  {problem}", file=sys.stderr)
    if not errors:
        raise InputError(f"{path}: {what} failed", hint="fix the values file and render again")
    first = errors[0]
    more = f" (+{len(errors) - 1} more above)" if len(errors) > 1 else ""
    raise InputError(
        f"{path}: {what}: {first.where}: {first.message}{more}", hint="fix the values file and render again"
    )
