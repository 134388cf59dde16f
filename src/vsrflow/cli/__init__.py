"""The ``vsrflow`` command: one entry point, thin subcommands that parse and delegate.

Exit codes: 0 success, 2 bad input or usage, 1 internal failure. Errors print one line saying
what failed and what to do; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from vsrflow import __version__
from vsrflow.cli import (
    bench_cmd,
    cluster_cmd,
    degrade_cmd,
    evaluate_cmd,
    job_cmd,
    local_cmd,
    models_cmd,
    probe_cmd,
    run_cmd,
    samples_cmd,
    serve_cmd,
    status_cmd,
    submit_cmd,
    ui_cmd,
    upscale_cmd,
)
from vsrflow.cli.logs import setup_logging
from vsrflow.config import Settings
from vsrflow.errors import InputError, VsrError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2

log = logging.getLogger("vsrflow")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vsrflow",
        description="Video super-resolution: upscale videos with Real-ESRGAN, SPAN and friends.",
    )
    parser.add_argument("--version", action="version", version=f"vsrflow {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "--log-format", choices=["auto", "text", "json"], default="auto",
        help="log format on stderr (auto: text on a terminal, JSON lines otherwise)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # One module per command, each with register(subparsers); the order is the --help order.
    commands = (
        upscale_cmd,
        evaluate_cmd,
        models_cmd,
        probe_cmd,
        samples_cmd,
        degrade_cmd,
        run_cmd,
        bench_cmd,
        submit_cmd,
        job_cmd,
        status_cmd,
        serve_cmd,
        cluster_cmd,
        local_cmd,
        ui_cmd,
    )
    for command in commands:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (also used by ``python -m vsrflow``)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors, as argparse does
    debug: bool = args.debug
    try:
        settings = Settings.from_env()
        level = "DEBUG" if debug else settings.log_level
        json_logs = {"auto": None, "text": False, "json": True}[args.log_format]
        setup_logging(level, json_logs=json_logs)
        code: int = args.handler(args, settings)
        return code
    except InputError as exc:
        _report(exc, debug)
        return EXIT_INPUT
    except VsrError as exc:
        _report(exc, debug)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("vsrflow: interrupted; partial outputs were removed", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal bug: still one line unless --debug
        _report(exc, debug, internal=True)
        return EXIT_INTERNAL


def _report(exc: BaseException, debug: bool, *, internal: bool = False) -> None:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if internal:
        print(
            f"vsrflow: internal error: {type(exc).__name__}: {exc} "
            "(rerun with --debug for the traceback and report it)",
            file=sys.stderr,
        )
    else:
        print(f"vsrflow: error: {exc}", file=sys.stderr)
