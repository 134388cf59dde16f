"""The ``vsrflow`` command: one entry point, thin subcommands that parse and delegate.

Exit codes: 0 success, 2 bad input or usage (missing weights that cannot be obtained too), 1
internal failure, 141 when the reader of our output went away (``| head``). Errors print one line
saying what failed and what to do; ``--debug`` adds the traceback. The global options
(:func:`add_global_options`) go before or after the command name.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import select
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from vsrflow import __version__
from vsrflow.cli import (
    bench_cmd,
    cluster_cmd,
    compare_cmd,
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
from vsrflow.cli.logs import json_logs, setup_logging
from vsrflow.cli.options import VsrParser
from vsrflow.config import LOG_FORMATS, Settings
from vsrflow.errors import InputError, VsrError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2

log = logging.getLogger("vsrflow")


def build_parser() -> argparse.ArgumentParser:
    parser = VsrParser(
        prog="vsrflow",
        description="Video super-resolution: upscale videos with Real-ESRGAN, SPAN and friends.",
    )
    parser.add_argument("--version", action="version", version=f"vsrflow {__version__}")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # One module per command, each with register(subparsers); the order is the --help order.
    commands = (
        upscale_cmd,
        evaluate_cmd,
        compare_cmd,
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
    _global_options_everywhere(sub)
    return parser


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """The options every command takes, before or after its name (``vsrflow --quiet upscale`` and
    ``vsrflow upscale ... --quiet``). On subcommands the defaults are suppressed, so an option
    given before the command name is not reset by the subcommand's parser."""
    kw: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs", **kw)
    parser.add_argument(
        "--quiet", "-q", action="store_true",
        help="no progress, warnings and errors only (VSRFLOW_QUIET=1)", **kw,
    )  # fmt: skip
    parser.add_argument(
        "--log-format", choices=list(LOG_FORMATS), **({"default": None} if not suppress else kw),
        help="log format on stderr: text, json, or auto (JSON inside a Slurm job, text elsewhere; "
        "VSRFLOW_LOG_FORMAT)",
    )  # fmt: skip
    parser.add_argument(
        "--no-download", action="store_true",
        help="never download or import missing model weights (VSRFLOW_NO_DOWNLOAD=1)", **kw,
    )  # fmt: skip


def _global_options_everywhere(sub: Any) -> None:
    for parser in dict.fromkeys(sub.choices.values()):  # aliases map to the same parser
        add_global_options(parser, suppress=True)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _global_options_everywhere(action)


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the global command-line options applied on top."""
    settings = Settings.from_env()
    changes: dict[str, Any] = {}
    if args.log_format is not None:
        changes["log_format"] = args.log_format
    if args.quiet:
        changes["quiet"] = True
    if args.no_download:
        changes["no_download"] = True
    return dataclasses.replace(settings, **changes) if changes else settings


#: Exit status of a command whose reader went away (``vsrflow probe x | head``): 128 + SIGPIPE,
#: what a shell reports for a program killed by the signal.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (also used by ``python -m vsrflow``).

    A closed stdout/stderr (the reader of a pipe exited) ends the command quietly with
    :data:`EXIT_BROKEN_PIPE`, as ``cat`` or ``grep`` do, instead of an internal error.
    """
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a late flush at exit would raise where nobody catches it
    except BrokenPipeError:
        _silence_closed_streams()
        return EXIT_BROKEN_PIPE
    return code


def _reader_gone(stream: Any) -> bool:
    """True when ``stream`` is a pipe whose reading end is closed (poll reports an error on it)."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _silence_closed_streams() -> None:
    """Point stdout and stderr at /dev/null so the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors, as argparse does
    debug: bool = args.debug
    try:
        settings = _settings(args)
        level = "DEBUG" if debug else ("WARNING" if settings.quiet else settings.log_level)
        setup_logging(level, json_logs=json_logs(settings))
        code: int = args.handler(args, settings)
        return code
    except InputError as exc:
        _report(exc, debug)
        return EXIT_INPUT
    except VsrError as exc:
        _report(exc, debug)
        return EXIT_INTERNAL
    except BrokenPipeError as exc:
        if _reader_gone(sys.stdout) or _reader_gone(sys.stderr):
            raise  # our reader left (`| head`): not a failure of the command; main() ends quietly
        _report(exc, debug, internal=True)  # a pipe to a child (ffmpeg, ...) broke: a real failure
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
