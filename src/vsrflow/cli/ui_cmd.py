"""``vsrflow ui``: serve the web page for media ops (upload, choose, watch, compare, download).

Modes: ``--local`` (default: uploads under the cache, jobs with the local executor),
``--local-stack`` (the running ``vsrflow local`` stack: uploads to its bucket, status from S3) and
``--aws`` (the bucket of ``VSRFLOW_AWS_BUCKET``; the browser uploads straight to S3). Binds
127.0.0.1 unless ``--host`` says otherwise; a wider bind needs ``--token``/``--token-file`` or
``--basic-auth``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = units.get(value[-1:], 1)
    try:
        number = float(value[:-1] if value[-1:] in units else value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 500M or 20G") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return int(number * factor)


def register(sub: Any) -> None:
    p = sub.add_parser("ui", help="serve the web page: upload, watch jobs, compare, download")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--local", dest="mode", action="store_const", const="local", help="(default) run jobs here"
    )
    mode.add_argument(
        "--local-stack",
        dest="mode",
        action="store_const",
        const="local-stack",
        help="use the running local stack (`vsrflow local up`): the full event path",
    )
    mode.add_argument(
        "--aws", dest="mode", action="store_const", const="aws", help="use VSRFLOW_AWS_BUCKET on AWS"
    )
    p.set_defaults(mode="local")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: a free one)")
    p.add_argument("--token", default=None, help="require this token (open /?token=... once)")
    p.add_argument("--token-file", type=Path, default=None, help="read the token from this file")
    p.add_argument("--basic-auth", default=None, metavar="USER:PASSWORD", help="require HTTP basic auth")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the browser may use besides the bound address (repeatable)",
    )
    p.add_argument("--max-upload", type=_size, default=None, help="largest local upload (default 20G)")
    p.add_argument("--state-dir", type=Path, default=None, help="the page's files (default <cache dir>/ui)")
    p.add_argument("--jobs-root", type=Path, default=None, help="local job directories (<cache dir>/jobs)")
    p.add_argument(
        "--chunk-seconds", type=float, default=None, help="chunk length of local jobs (default 60 s)"
    )
    p.add_argument(
        "--stack-dir",
        type=Path,
        default=None,
        help="--local-stack: its state dir (default <cache dir>/local)",
    )
    p.add_argument("--port-file", type=Path, default=None, help="write the bound port here once listening")
    p.set_defaults(handler=run)


def _token(args: argparse.Namespace) -> str | None:
    if args.token is not None and args.token_file is not None:
        raise InputError("--token and --token-file are exclusive", hint="pass one of them")
    if args.token_file is not None:
        try:
            return args.token_file.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise InputError(f"{args.token_file}: cannot read the token: {err.strerror}") from err
    token: str | None = args.token
    return token


def _mode_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings of the S3 modes: ``--local-stack`` points them at the running stack."""
    if args.mode != "local-stack":
        return settings
    from vsrflow.localstack.stack import require

    state = require(args.stack_dir or settings.cache_dir / "local")
    for name, value in state.client_env().items():
        if name.startswith("AWS_") and name != "AWS_ENDPOINT_URL":
            os.environ.setdefault(name, value)  # the stack's fake credentials, for boto3 in this process
    aws = dataclasses.replace(
        settings.aws, bucket=state.outputs["BucketName"], endpoint_url=state.endpoint, region=state.region
    )
    return dataclasses.replace(settings, aws=aws)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.web.security import Access, check_bind, parse_basic

    token = _token(args)
    basic = parse_basic(args.basic_auth)
    check_bind(args.host, token, basic)
    if args.host in ("0.0.0.0", "::") and not args.allow_host:
        # Every request's Host header is checked (DNS rebinding): a wildcard bind has no name of its own.
        raise InputError(
            f"--host {args.host} listens on every address, but browsers will use a name or address",
            hint="add --allow-host NAME (repeatable) for each name or address people type",
        )
    settings = _mode_settings(args, settings)
    if args.mode != "local" and not settings.aws.bucket:
        raise InputError("--aws needs a bucket", hint="set VSRFLOW_AWS_BUCKET (and region/credentials)")
    from vsrflow.web.server import serve

    access = Access(host=args.host, token=token, basic=basic, allowed_hosts=tuple(args.allow_host))
    return serve(
        mode=args.mode,
        settings=settings,
        access=access,
        port=args.port,
        state_dir=args.state_dir or settings.cache_dir / "ui",
        jobs_root=args.jobs_root or settings.cache_dir / "jobs",
        max_upload=args.max_upload,
        chunk_seconds=args.chunk_seconds,
        port_file=args.port_file,
    )
