"""An SSM agent shim: runs the ``AWS-RunShellScript`` commands sent to the local head node.

moto's ``ssm:SendCommand`` records a command and runs nothing (its invocations even read
``Success`` at once). This shim lives in the process that hosts moto: it wraps the SSM backend's
``send_command`` so that every command addressed to an instance it manages starts ``Pending``,
is executed here (in its own process group, ``executionTimeout`` honoured), and its outcome is
written back into moto's own record, so ``ssm:GetCommandInvocation`` / ``ListCommands`` return
what happened:

* invocation ``Status``/``StatusDetails``: ``Pending`` -> ``InProgress`` -> ``Success``, ``Failed``
  or ``TimedOut`` (``Undeliverable`` when the instance is not running, ``Failed`` for documents
  other than ``AWS-RunShellScript``);
* ``ResponseCode`` (the exit code, -1 when it never ran), ``StandardOutputContent`` (first 24,000
  characters, as SSM keeps) and ``StandardErrorContent`` (first 8,000), execution start/end times;
* the command's ``Status``, ``CompletedCount`` and ``ErrorCount``.

Each execution is also recorded as ``<records_dir>/<command id>.json`` (command text, exit code,
output tails, timings) for tests and for ``vsrflow local status``. A failed command calls
``on_failure(command_id, command_text, exit_code, stderr)``: the local stand-in for the cluster's
"command failed" notification, which marks the job failed with the command's stderr tail.

Unlike the real agent, the shim runs only the one script the trigger sends: the document's
``commands`` joined must fully match ``<head node command> submit --job-id <16 hex>`` (the
configured ``VSRFLOW_AWS_HEAD_NODE_COMMAND``, a plain path). That is run as an argument list,
without a shell; any other script is marked ``Failed`` with a stderr naming the rule, and nothing
runs. So a defect upstream can never turn the local stack into a shell for uploaded key text.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsrflow.files import atomic_write_json
from vsrflow.localstack.state import ACCOUNT_ID

log = logging.getLogger(__name__)

DOCUMENT = "AWS-RunShellScript"
#: What SSM keeps of a command's output in the invocation record.
STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
DEFAULT_EXECUTION_TIMEOUT = 3600
#: The one script shape the shim runs (after the configured head-node command).
SUBMIT_ARGS_RE = re.compile(r" submit --job-id ([0-9a-f]{16})")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


@dataclass
class _Work:
    command: Any  # moto.ssm.models.Command
    invocation: dict[str, Any]


class SsmAgentShim:
    """Executes SSM commands for the instances it manages (see the module docstring).

    Args:
        region: region of the SSM backend to hook (moto's account :data:`ACCOUNT_ID`).
        env: the complete environment of the executed commands (the head node's).
        cwd: working directory of the commands.
        records_dir: where each execution's JSON record goes.
        workers: commands executed at once.
        on_failure: called with (command id, command text, exit code, stderr) when a command fails,
            times out or cannot be delivered.
        instance_running: tells whether an instance may receive commands (default: always).
        head_node_command: the executable every accepted script starts with (a plain path, the
            trigger's ``VSRFLOW_AWS_HEAD_NODE_COMMAND``).
    """

    def __init__(
        self,
        region: str,
        env: Mapping[str, str],
        cwd: Path,
        records_dir: Path,
        *,
        workers: int = 4,
        on_failure: Callable[[str, str, int, str], None] | None = None,
        instance_running: Callable[[str], bool] | None = None,
        head_node_command: str = "vsrflow",
    ) -> None:
        self.region = region
        self.env = dict(env)
        self.cwd = cwd
        self.records_dir = records_dir
        self.workers = max(1, workers)
        self.on_failure = on_failure
        self.instance_running = instance_running or (lambda _instance: True)
        self.head_node_command = head_node_command
        self._instances: set[str] = set()
        self._queue: queue.Queue[_Work | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._running: dict[int, subprocess.Popen[str]] = {}
        self._stopping = threading.Event()
        self._installed = False

    # -- moto hook -------------------------------------------------------------------------
    def install(self) -> None:
        """Wrap the SSM backend's ``send_command`` (call before anything sends commands)."""
        from moto.ssm.models import ssm_backends

        backend = ssm_backends[ACCOUNT_ID][self.region]
        original = backend.send_command

        def send_command(*args: Any, **kwargs: Any) -> Any:
            command = original(*args, **kwargs)
            self._accept(command)
            return command

        backend.send_command = send_command  # type: ignore[method-assign]
        self._installed = True

    def manage(self, instance_id: str) -> None:
        """Act as the agent of ``instance_id`` from now on."""
        with self._lock:
            self._instances.add(instance_id)

    def _accept(self, command: Any) -> None:
        with self._lock:
            mine = [inv for inv in command.invocations if inv["InstanceId"] in self._instances]
        if not mine:
            return
        command.status = "Pending"
        command.status_details = "Pending"
        command.completed_count = 0
        for inv in mine:
            inv.update(Status="Pending", StatusDetails="Pending", ResponseCode=-1)
            inv.update(ExecutionStartDateTime="", ExecutionEndDateTime="", ExecutionElapsedTime="")
            self._queue.put(_Work(command, inv))

    # -- workers ---------------------------------------------------------------------------
    def start(self) -> None:
        self.records_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.workers):
            t = threading.Thread(target=self._worker, name=f"ssm-agent-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking commands; terminate the running ones (their process groups)."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        with self._lock:
            procs = list(self._running.values())
        for proc in procs:
            _kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))

    def _worker(self) -> None:
        while True:
            work = self._queue.get()
            if work is None or self._stopping.is_set():
                return
            try:
                self._execute(work)
            except Exception:  # one broken command never stops the agent
                log.exception("ssm agent: command %s failed to execute", work.command.command_id)
                self._finish(work, "Failed", -1, "", "the local SSM agent failed to run the command", 0.0)

    def _execute(self, work: _Work) -> None:
        command, inv = work.command, work.invocation
        instance = inv["InstanceId"]
        params = command.parameters or {}
        script = "\n".join(str(line) for line in params.get("commands", []))
        if command.document_name != DOCUMENT:
            why = f"the local SSM agent only runs {DOCUMENT}"
            self._finish(work, "Failed", -1, "", why, 0.0, script=script)
            return
        if not self.instance_running(instance):
            why = f"instance {instance} is not running"
            self._finish(work, "Undeliverable", -1, "", why, 0.0, script=script)
            return
        argv = self.submit_argv(script)
        if argv is None:
            why = (
                f"the local SSM agent runs only '{self.head_node_command} submit --job-id <16 hex>'; "
                f"refused script {script[:200]!r}"
            )
            self._finish(work, "Failed", -1, "", why, 0.0, script=script)
            return
        timeout = _int_param(params, "executionTimeout", DEFAULT_EXECUTION_TIMEOUT)
        cwd = _str_param(params, "workingDirectory") or str(self.cwd)
        started = _now()
        inv.update(
            Status="InProgress", StatusDetails="InProgress", ExecutionStartDateTime=started.isoformat()
        )
        command.status = command.status_details = "InProgress"
        log.info("ssm agent: running command %s on %s: %r", command.command_id, instance, script)
        t0 = time.monotonic()
        # An argument list, no shell: the script was checked to be exactly the trigger's command.
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        with self._lock:
            self._running[proc.pid] = proc
        try:
            out, err = proc.communicate(timeout=timeout)
            status = "Success" if proc.returncode == 0 else "Failed"
            code = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)
            out, err = proc.communicate()
            status, code = "TimedOut", -1
            err += f"\ncommand timed out after {timeout}s (executionTimeout)"
        finally:
            with self._lock:
                self._running.pop(proc.pid, None)
        if self._stopping.is_set() and status != "Success":
            status = "Cancelled"
        self._finish(work, status, code, out, err, time.monotonic() - t0, script=script)

    def submit_argv(self, script: str) -> list[str] | None:
        """``[command, "submit", "--job-id", id]`` when ``script`` is exactly that command, else None."""
        command = self.head_node_command
        if not command or not all(c.isalnum() or c in "_./-" for c in command):
            return None  # misconfigured: nothing is trusted
        if not script.startswith(command):
            return None
        match = SUBMIT_ARGS_RE.fullmatch(script[len(command) :])
        return None if match is None else [command, "submit", "--job-id", match.group(1)]

    def _finish(
        self,
        work: _Work,
        status: str,
        code: int,
        out: str,
        err: str,
        elapsed: float,
        *,
        script: str = "",
    ) -> None:
        command, inv = work.command, work.invocation
        ended = _now()
        inv.update(
            Status=status,
            StatusDetails=status,
            ResponseCode=code,
            StandardOutputContent=out[:STDOUT_LIMIT],
            StandardErrorContent=err[:STDERR_LIMIT],
            ExecutionEndDateTime=ended.isoformat(),
            ExecutionElapsedTime=_iso_duration(elapsed),
        )
        if not inv.get("ExecutionStartDateTime"):
            inv["ExecutionStartDateTime"] = ended.isoformat()
        with self._lock:
            statuses = [i["Status"] for i in command.invocations if i["InstanceId"] in self._instances]
            done = [s for s in statuses if s not in ("Pending", "InProgress")]
            command.completed_count = len(done)
            command.error_count = sum(1 for s in done if s != "Success")
            if len(done) == len(statuses):
                command.status = "Success" if command.error_count == 0 else "Failed"
                command.status_details = command.status
        record = {
            "command_id": command.command_id,
            "instance_id": inv["InstanceId"],
            "document": command.document_name,
            "commands": list((command.parameters or {}).get("commands", [])),
            "status": status,
            "exit_code": code,
            "stdout": out[-STDOUT_LIMIT:],
            "stderr": err[-STDERR_LIMIT:],
            "started": inv["ExecutionStartDateTime"],
            "ended": inv["ExecutionEndDateTime"],
            "elapsed_s": round(elapsed, 3),
        }
        atomic_write_json(self.records_dir / f"{command.command_id}.json", record)
        log.info("ssm agent: command %s %s (exit %s, %.1fs)", command.command_id, status, code, elapsed)
        if status != "Success" and self.on_failure is not None:
            try:
                self.on_failure(command.command_id, script, code, err or f"command {status.lower()}")
            except Exception:
                log.exception("ssm agent: on_failure hook failed for command %s", command.command_id)


def _int_param(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _str_param(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else None


def _kill_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
