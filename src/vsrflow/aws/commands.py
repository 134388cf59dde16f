"""The head-node command: ``<vsrflow> submit --job-id <id>`` sent through SSM ``AWS-RunShellScript``.

The command holds only the validated 16-hex job id and the configured executable (a plain path):
nothing of the upload key, which may contain spaces, quotes, ``;``, ``$(...)`` or backticks.
Every command carries the ``Comment`` ``vsrflow job <id>`` (:func:`command_comment`), by which
:mod:`vsrflow.aws.ssm_events` recognises a failed one (:data:`COMMENT_RE`).
"""

from __future__ import annotations

import re

from vsrflow.aws.clients import AwsClients
from vsrflow.aws.errors import error_code, is_instance_not_registered, translate
from vsrflow.aws.jobrecords import check_job_id
from vsrflow.config import AwsSettings
from vsrflow.errors import TransientError, VsrError

RUN_SHELL_SCRIPT = "AWS-RunShellScript"
#: Seconds SSM waits for the head node to pick the command up (the submit itself takes seconds).
SSM_DELIVERY_TIMEOUT = 600
#: Seconds the head-node command may run (staging the source from S3 is part of it).
SSM_EXECUTION_TIMEOUT = 3600
#: The ``Comment`` of a command: :func:`command_comment` writes it, this reads the job id back.
COMMENT_RE = re.compile(r"vsrflow job ([0-9a-f]{16})")


def command_comment(job_id: str) -> str:
    """``vsrflow job <id>``: the SSM Comment of the command that submits ``job_id``."""
    return f"vsrflow job {check_job_id(job_id)}"


def submit_command(aws: AwsSettings, job_id: str) -> str:
    """The one shell line sent to the head node: ``<vsrflow> submit --job-id <16 hex>``."""
    check_job_id(job_id)
    command = aws.vsrflow_command
    if not command or not all(c.isalnum() or c in "_./-" for c in command):
        raise VsrError(
            f"head node command {command!r} is not a plain path", hint="fix VSRFLOW_AWS_HEAD_NODE_COMMAND"
        )
    return f"{command} submit --job-id {job_id}"


def send_submit(clients: AwsClients, aws: AwsSettings, instance_id: str, job_id: str) -> str:
    """Send ``vsrflow submit --job-id`` to ``instance_id``; returns the SSM command id.

    Raises TransientError when the instance is not registered with SSM yet (or SSM is busy),
    VsrError for other failures.
    """
    try:
        response = clients.ssm.send_command(
            InstanceIds=[instance_id],
            DocumentName=RUN_SHELL_SCRIPT,
            Parameters={
                "commands": [submit_command(aws, job_id)],
                "executionTimeout": [str(SSM_EXECUTION_TIMEOUT)],
            },
            Comment=command_comment(job_id),
            TimeoutSeconds=SSM_DELIVERY_TIMEOUT,
        )
    except Exception as exc:
        if is_instance_not_registered(exc):
            raise TransientError(
                f"head node {instance_id} is not registered with SSM yet ({error_code(exc)})",
                hint="retried; check the SSM agent and the instance profile",
            ) from exc
        raise translate(exc, f"send the command to {instance_id}", transient_hint="retried") from exc
    return str(response["Command"]["CommandId"])
