"""Start, stop, inspect and feed the local stack (the API behind ``vsrflow local``).

:func:`up` starts the local Slurm (``slurm/emulator``) and the daemon
(:mod:`vsrflow.localstack.daemon`, detached: its own session, so its pid is its process group id),
then waits until ``stack.json`` says ``ready``. :func:`down` stops the daemon's process group
(TERM, then KILL) and the emulator. Both are idempotent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsrflow.errors import InputError, TransientError, VsrError
from vsrflow.localstack import slurm
from vsrflow.localstack.state import (
    INVOCATIONS_FILE,
    LOG_FILE,
    DaemonConfig,
    StackState,
)
from vsrflow.workflow.job.state import TERMINAL_JOB_STATES

REPO = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = REPO / "infra" / "cfn" / "vsrflow.yaml"
DAEMON_MODULE = "vsrflow.localstack.daemon"


@dataclass(frozen=True)
class UpOptions:
    """What ``vsrflow local up`` asks for (see :class:`~vsrflow.localstack.state.DaemonConfig`)."""

    port: int = 0
    region: str = "us-east-1"
    template: Path = DEFAULT_TEMPLATE
    stack_name: str = "vsrflow-local"
    cluster_name: str = "vsrflow-local"
    lambda_package: Path | None = None
    with_slurm: bool = True
    slurm_layout: slurm.SlurmLayout = field(default_factory=slurm.SlurmLayout)
    retry_delay_s: int = 2
    agent_workers: int = 5
    runner_workers: int = 2
    head_env: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 120.0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_is_daemon(pid: int) -> bool:
    """The process ``pid`` runs and is our daemon (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return DAEMON_MODULE.encode() in cmdline


def running_state(state_dir: Path) -> StackState | None:
    """The state of a running, ready stack in ``state_dir``; None when none runs."""
    state = StackState.load(state_dir)
    if state is None or state.status != "ready" or not _pid_is_daemon(state.pid):
        return None
    return state


def _log_tail(state_dir: Path, lines: int = 30) -> str:
    try:
        text = (state_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def up(state_dir: Path, options: UpOptions) -> StackState:
    """Start the local stack in ``state_dir`` (or return the running one)."""
    state_dir = state_dir.expanduser().resolve()
    current = running_state(state_dir)
    if current is not None:
        return current
    previous = StackState.load(state_dir)
    if previous is not None and previous.status == "starting" and _pid_is_daemon(previous.pid):
        raise InputError(
            f"a local stack is starting in {state_dir} (pid {previous.pid})",
            hint="wait for it, or stop it with `vsrflow local down`",
        )
    if not options.template.is_file():
        raise InputError(
            f"template {options.template} not found", hint="pass --template or check the checkout"
        )
    if not 0 <= options.port <= 65535:
        raise InputError(
            f"--port {options.port} is not a TCP port", hint="use 1024..65535, or 0 for a free one"
        )
    if options.port and not _port_free(options.port):
        raise InputError(
            f"port {options.port} on 127.0.0.1 is in use", hint="pick another --port, or 0 for a free one"
        )
    if options.retry_delay_s < 0:
        raise InputError(f"--retry-delay {options.retry_delay_s} is negative", hint="use seconds >= 0")
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise InputError("the local stack needs moto[server]", hint="pip install -e '.[dev]'") from exc
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "fsx").mkdir(exist_ok=True)
    head_env = dict(options.head_env)
    if options.with_slurm:
        head_env = {**slurm.start(state_dir / "slurm", options.slurm_layout), **head_env}
    else:
        head_env.setdefault("VSRFLOW_AWS_EXECUTOR", "local")
    DaemonConfig(
        state_dir=str(state_dir),
        port=options.port,
        region=options.region,
        template=str(options.template.resolve()),
        stack_name=options.stack_name,
        cluster_name=options.cluster_name,
        lambda_package=str(options.lambda_package.resolve()) if options.lambda_package else None,
        retry_delay_s=options.retry_delay_s,
        agent_workers=options.agent_workers,
        runner_workers=options.runner_workers,
        head_env=head_env,
        parameters=dict(options.parameters),
    ).save()
    (state_dir / "stack.json").unlink(missing_ok=True)
    try:
        return _start_daemon(state_dir, options.timeout_s)
    except BaseException:
        if options.with_slurm:  # leave nothing running behind a failed start
            with contextlib.suppress(Exception):
                slurm.stop(state_dir / "slurm")
        raise


def _start_daemon(state_dir: Path, timeout_s: float) -> StackState:
    with (state_dir / LOG_FILE).open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", DAEMON_MODULE, str(state_dir)],
            cwd=state_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached: survives this command, stopped by `down`
        )
    deadline = time.monotonic() + timeout_s
    while True:
        state = StackState.load(state_dir)
        if state is not None and state.status == "ready":
            return state
        if (state is not None and state.status == "failed") or proc.poll() is not None:
            why = state.error if state is not None and state.error else f"daemon exited with {proc.poll()}"
            _stop_daemon(proc.pid)
            if state is not None and state.bad_input:
                raise InputError(f"the local stack did not start: {why}", hint=f"see {state_dir / LOG_FILE}")
            raise VsrError(
                f"the local stack did not start: {why}\n{_log_tail(state_dir)}", hint="see daemon.log"
            )
        if time.monotonic() > deadline:
            _stop_daemon(proc.pid)
            raise TransientError(
                f"the local stack was not ready after {timeout_s:.0f}s\n{_log_tail(state_dir)}",
                hint="see daemon.log",
            )
        time.sleep(0.2)


def _stop_daemon(pid: int, timeout: float = 20.0) -> bool:
    """TERM the daemon's process group, KILL it after ``timeout``; True when something ran."""
    if not _pid_is_daemon(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        # A zombie child of ours counts as gone; reap it when it is ours.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def down(state_dir: Path) -> list[str]:
    """Stop the daemon and the local Slurm of ``state_dir``; returns what was done, line by line."""
    state_dir = state_dir.expanduser().resolve()
    said: list[str] = []
    state = StackState.load(state_dir)
    if state is not None and _stop_daemon(state.pid):
        said.append(f"local stack: stopped the daemon (pid {state.pid})")
    else:
        said.append("local stack: no daemon running")
    said.append(slurm.stop(state_dir / "slurm"))
    return said


def _client(state: StackState, service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=state.region
    ).client(
        service,
        endpoint_url=state.endpoint,
        config=Config(s3={"addressing_style": "path"}),
    )


def require(state_dir: Path) -> StackState:
    """The running stack of ``state_dir``; InputError saying how to start one otherwise."""
    state = running_state(state_dir.expanduser().resolve())
    if state is None:
        raise InputError(
            f"no local stack is running in {state_dir}", hint="start one with `vsrflow local up`"
        )
    return state


def upload(state_dir: Path, source: Path, preset: str, name: str | None = None) -> tuple[StackState, str]:
    """Upload ``source`` to ``uploads/<preset>/<name>``; returns the stack and the key."""
    state = require(state_dir)
    if not source.is_file():
        raise InputError(f"{source}: file not found", hint="check the path")
    if not preset or "/" in preset:
        raise InputError(f"preset folder {preset!r} is not a folder name", hint="e.g. --preset anime")
    key = f"uploads/{preset}/{name or source.name}"
    _client(state, "s3").upload_file(str(source), state.outputs["BucketName"], key)
    return state, key


def find_job(state_dir: Path, key: str) -> str | None:
    """The job id the trigger gave ``key`` (from the runner's invocation log), if any yet."""
    path = state_dir.expanduser().resolve() / INVOCATIONS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        entry = json.loads(line)
        result = entry.get("result")
        for record in (result or {}).get("records", []) if isinstance(result, dict) else []:
            if record.get("key") == key and record.get("job_id"):
                return str(record["job_id"])
    return None


def job_status(state: StackState, job_id: str) -> dict[str, Any] | None:
    """``jobs/<job_id>/status.json`` of the stack's bucket (None while there is none)."""
    s3 = _client(state, "s3")
    try:
        body = s3.get_object(Bucket=state.outputs["BucketName"], Key=f"jobs/{job_id}/status.json")[
            "Body"
        ].read()
    except s3.exceptions.NoSuchKey:
        return None
    data: dict[str, Any] = json.loads(body)
    return data


def _changed(before: dict[str, Any] | None, now: dict[str, Any]) -> bool:
    """True when ``now`` says something ``before`` did not (the update time alone does not count)."""
    if before is None:
        return True
    strip = ("updated", "updated_at", "time")
    return {k: v for k, v in before.items() if k not in strip} != {
        k: v for k, v in now.items() if k not in strip
    }


def wait_for_key(
    state_dir: Path,
    key: str,
    timeout: float,
    on_change: Callable[[str, dict[str, Any]], None] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Wait until the job of ``key`` has a terminal status; returns (job id, status).

    ``on_change(job_id, status)`` is called whenever the job's status document changes (its state
    or detail: queued, extracting, chunk progress, encoding, ...), the terminal one included.
    """
    state = require(state_dir)
    deadline = time.monotonic() + timeout
    job_id: str | None = None
    last: dict[str, Any] | None = None
    while True:
        job_id = job_id or find_job(state_dir, key)
        status = job_status(state, job_id) if job_id else None
        if job_id and status and on_change is not None and _changed(last, status):
            on_change(job_id, status)
        last = status or last
        if job_id and status and status.get("state") in TERMINAL_JOB_STATES:
            return job_id, status
        if time.monotonic() > deadline:
            where = (
                f"job {job_id}: {status.get('state') if status else 'no status yet'}"
                if job_id
                else "no job yet"
            )
            raise TransientError(
                f"{key}: not finished after {timeout:.0f}s ({where})", hint="see `vsrflow local status`"
            )
        time.sleep(0.5)
