"""``vsrflow local up|down|status|upload``: the whole AWS event path on this machine.

``up`` starts the local Slurm and a detached daemon holding moto (server mode, the stack deployed
from ``infra/cfn/vsrflow.yaml``), the Lambda runner and the SSM agent shim
(:mod:`vsrflow.localstack`); it prints the environment for ``aws ... --endpoint-url``. ``upload``
puts a file under ``uploads/<preset>/`` and, with ``--wait``, waits for its job's final status.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError
from vsrflow.workflow.job.state import JobState, parse_job_state, status_text


def register(sub: Any) -> None:
    p = sub.add_parser(
        "local", help="the AWS event path on this machine (moto, Lambda/SSM shims, local Slurm)"
    )
    p.add_argument(
        "--state-dir", type=Path, default=None, help="state of the local stack (default <cache dir>/local)"
    )
    verbs = p.add_subparsers(dest="local_command", metavar="ACTION", required=True)

    u = verbs.add_parser("up", help="start the local stack (idempotent) and print how to reach it")
    u.add_argument("--port", type=int, default=0, help="moto's port on 127.0.0.1 (default: a free one)")
    u.add_argument("--region", default="us-east-1")
    u.add_argument(
        "--template", type=Path, default=None, help="CloudFormation template (infra/cfn/vsrflow.yaml)"
    )
    u.add_argument("--lambda-package", type=Path, default=None, help="zip uploaded as the function code")
    u.add_argument("--cluster-name", default="vsrflow-local", help="cluster name tag of the head node")
    u.add_argument("--no-slurm", action="store_true", help="run jobs in the head-node command, without Slurm")
    u.add_argument("--retry-delay", type=int, default=2, help="seconds before a failed event is retried (2)")
    u.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter (repeatable)",
    )
    u.add_argument(
        "--head-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the head-node commands, e.g. VSRFLOW_AWS_CHUNK_SECONDS=1 (repeatable)",
    )
    u.set_defaults(handler=run)

    d = verbs.add_parser("down", help="stop the local stack and its Slurm")
    d.set_defaults(handler=run)

    s = verbs.add_parser("status", help="show the running local stack")
    s.add_argument("--json", action="store_true", help="print the whole state as JSON")
    s.set_defaults(handler=run)

    up_ = verbs.add_parser("upload", help="upload a video to uploads/<preset>/ of the local bucket")
    up_.add_argument("file", type=Path, help="video file")
    up_.add_argument(
        "--preset", default="anime", help="upload folder (anime, live-action, fidelity; default anime)"
    )
    up_.add_argument("--name", default=None, help="object name under the folder (default: the file name)")
    up_.add_argument(
        "--wait", action="store_true", help="wait for the job's final status (exit 1 when failed)"
    )
    up_.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits (600)")
    up_.set_defaults(handler=run)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"{flag} {item!r} is not NAME=VALUE", hint=f"e.g. {flag} Name=value")
        out[name] = value
    return out


def _print_env(state: Any, state_dir: Path) -> None:
    bucket = state.outputs.get("BucketName", "?")
    print(f"local stack ready: {state.endpoint} (region {state.region}, bucket {bucket})")
    for name, value in sorted(state.outputs.items()):
        print(f"  {name}: {value}")
    print(f"  head node: {state.head_node}; Slurm: {state.slurm_conf or 'off (jobs run in the command)'}")
    print("# reach it with the aws CLI or boto3:")
    for name, value in state.client_env().items():
        print(f"export {name}={value}")
    print(f"# aws s3 cp clip.mp4 s3://{bucket}/uploads/anime/clip.mp4 --endpoint-url {state.endpoint}")
    print(f"# vsrflow local --state-dir {state_dir} upload clip.mp4 --preset anime --wait")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.localstack import stack

    state_dir: Path = args.state_dir or settings.cache_dir / "local"
    action = args.local_command
    if action == "up":
        options = stack.UpOptions(
            port=args.port,
            region=args.region,
            template=args.template or stack.DEFAULT_TEMPLATE,
            cluster_name=args.cluster_name,
            lambda_package=args.lambda_package,
            with_slurm=not args.no_slurm,
            retry_delay_s=args.retry_delay,
            head_env=_pairs(args.head_env, "--head-env"),
            parameters=_pairs(args.parameter, "--parameter"),
        )
        _print_env(stack.up(state_dir, options), state_dir)
        return 0
    if action == "down":
        for line in stack.down(state_dir):
            print(line)
        return 0
    if action == "status":
        state = stack.running_state(state_dir.expanduser().resolve())
        if args.json:
            print(json.dumps(asdict(state) if state else {"status": "down"}, indent=2, sort_keys=True))
        elif state is None:
            print(f"local stack: down (state {state_dir})")
        else:
            _print_env(state, state_dir)
        return 0 if state is not None else 1
    # upload
    state, key = stack.upload(state_dir, args.file, args.preset, args.name)
    print(f"uploaded s3://{state.outputs['BucketName']}/{key}")
    if not args.wait:
        return 0

    def changed(job_id: str, status: dict[str, Any]) -> None:
        # Each state change as it happens (queued, extracting, chunk i/n, encoding, ...), on stderr.
        if not settings.quiet:
            print(f"job {job_id}: {status.get('text') or status.get('state')}", file=sys.stderr, flush=True)

    job_id, status = stack.wait_for_key(state_dir, key, args.timeout, on_change=changed)
    job_state = parse_job_state(status.get("state"))
    print(f"job {job_id}: {status_text(job_state, reason=status.get('reason'), output=status.get('output'))}")
    return 0 if job_state is JobState.DONE else 1
