"""The local stack's state directory and its state file (``stack.json``).

Layout of ``STATE_DIR`` (default ``<cache dir>/local``)::

    config.json        what ``up`` asked the daemon for (:class:`DaemonConfig`)
    stack.json         what the daemon built (:class:`StackState`), written atomically
    daemon.log         the daemon's stdout/stderr (moto, runner, agent logs)
    invocations.jsonl  one line per handler call: message id, attempt, outcome, error
    agent/             one JSON record per executed SSM command (also written into moto's record)
    fsx/               the head node's shared file system (job dirs, staged sources)
    slurm/             the Slurm emulator's state (config, spool, logs)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vsrflow.files import atomic_write_json

STATE_FILE = "stack.json"
CONFIG_FILE = "config.json"
LOG_FILE = "daemon.log"
INVOCATIONS_FILE = "invocations.jsonl"

#: moto's account and the fake credentials every client of the local stack uses.
ACCOUNT_ID = "123456789012"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class DaemonConfig:
    """Input of the daemon (written by ``up`` to ``config.json``).

    Attributes:
        state_dir: absolute state directory.
        port: TCP port of moto on 127.0.0.1 (0: a free one).
        region: the region of every resource.
        template: the CloudFormation template deployed into moto.
        stack_name: the CloudFormation stack name.
        cluster_name: ``parallelcluster:cluster-name`` tag of the head node.
        lambda_package: zip uploaded where the template's function code points (None: a placeholder).
        retry_delay_s: seconds before a failed handler call is retried (the visibility timeout it gets).
        agent_workers: SSM commands executed at once (the real agent's ``CommandWorkersLimit``
            defaults to 5).
        runner_workers: handler calls at once (the function's concurrency).
        head_env: extra environment of the commands the SSM agent runs (Slurm, weights, settings).
        parameters: CloudFormation parameter overrides.
    """

    state_dir: str
    port: int
    region: str
    template: str
    stack_name: str
    cluster_name: str
    lambda_package: str | None = None
    retry_delay_s: int = 2
    agent_workers: int = 5
    runner_workers: int = 2
    head_env: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    def save(self) -> None:
        atomic_write_json(Path(self.state_dir) / CONFIG_FILE, asdict(self))

    @classmethod
    def load(cls, state_dir: Path) -> DaemonConfig:
        data = json.loads((state_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        return cls(**data)


@dataclass(frozen=True)
class StackState:
    """What a running local stack looks like (``stack.json``).

    Attributes:
        status: ``starting``, ``ready``, ``failed`` (``error`` says why) or ``stopped``.
        pid: the daemon's process id (also its process group id: it runs in its own session).
        endpoint: ``http://127.0.0.1:PORT`` of moto.
        region: region of every resource.
        outputs: the CloudFormation stack outputs (BucketName, TableName, TopicArn, DLQUrl, FunctionName ...).
        ingress_queue_url: the queue the bucket notifications go to (the Lambda's async queue).
        dlq_url: where events land after the last retry (the template's DLQ).
        head_node: EC2 instance id of the head node.
        max_retries: retries of a failed handler call before the DLQ.
        slurm_conf: SLURM_CONF of the emulator (None: started without Slurm).
        lambda_env: the environment the handler runs with (the function's own plus the endpoint).
        head_env: what the stack sets in the environment of the commands the SSM agent runs
            (on top of the environment ``up`` was called with).
        error: why the daemon failed (status ``failed``).
        bad_input: the failure was bad input (template, parameters), not a broken stack.
    """

    status: str
    pid: int
    endpoint: str = ""
    region: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    ingress_queue_url: str = ""
    dlq_url: str = ""
    head_node: str = ""
    max_retries: int = 2
    slurm_conf: str | None = None
    lambda_env: dict[str, str] = field(default_factory=dict)
    head_env: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    bad_input: bool = False

    def save(self, state_dir: Path) -> None:
        atomic_write_json(state_dir / STATE_FILE, asdict(self))

    @classmethod
    def load(cls, state_dir: Path) -> StackState | None:
        path = state_dir / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(**data)

    def client_env(self) -> dict[str, str]:
        """Environment for clients of this stack: the aws CLI, boto3 and ``vsrflow status JOB_ID``."""
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **FAKE_CREDENTIALS,
            "VSRFLOW_AWS_ENDPOINT_URL": self.endpoint,
            "VSRFLOW_AWS_REGION": self.region,
        }
        if "BucketName" in self.outputs:
            env["VSRFLOW_AWS_BUCKET"] = self.outputs["BucketName"]
        return env
