"""The local stack's daemon: ``python -m vsrflow.localstack.daemon STATE_DIR``.

Started detached (its own session and process group) by :func:`vsrflow.localstack.stack.up`,
which waits for ``stack.json`` to say ``ready`` (or ``failed``). In this one process:

1. moto's ``ThreadedMotoServer`` on ``127.0.0.1:<port>``;
2. the SSM agent shim hooked into moto's SSM backend (before anything can send a command);
3. the template deployed (:func:`vsrflow.localstack.deploy.deploy`);
4. the Lambda runner (handler calls from the ingress queue) and the agent's workers;
5. ``stack.json`` written; then it waits for SIGTERM/SIGINT and shuts everything down.

The handler runs here with the function's environment (``os.environ`` of this process is the
function's: the handler reads its settings from it, as on Lambda). The head-node commands get
their own environment: the caller's, plus the stack's names, the endpoint, fake credentials, the
emulator's ``SLURM_CONF`` and ``VSRFLOW_AWS_JOBS_ROOT`` under ``<state>/fsx`` (``head_env`` in
``stack.json`` holds only what the stack sets, never the caller's own variables).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from vsrflow.errors import InputError
from vsrflow.localstack.state import (
    FAKE_CREDENTIALS,
    INVOCATIONS_FILE,
    DaemonConfig,
    StackState,
)

log = logging.getLogger("vsrflow.localstack.daemon")  # not __name__: run as __main__

REPO = Path(__file__).resolve().parents[3]
HANDLER_FILE = REPO / "lambda" / "s3_trigger" / "app.py"


def _ec2_running(region: str) -> Any:
    """``instance_running(instance_id)`` read from moto's EC2 backend (same process)."""
    from moto.ec2.models import ec2_backends

    from vsrflow.localstack.state import ACCOUNT_ID

    def running(instance_id: str) -> bool:
        try:
            instance = ec2_backends[ACCOUNT_ID][region].get_instance(instance_id)
        except Exception:
            return False
        return bool(instance.state == "running")

    return running


def _failure_hook(sqs: Any, queue_url: str, region: str, instance_id: str) -> Any:
    """``on_failure`` of the agent: what AWS does when a head-node command fails.

    On AWS the template's ``CommandFailedRule`` sends EventBridge's "EC2 Command Invocation
    Status-change Notification" to the trigger function, whose :mod:`vsrflow.aws.ssm_events`
    reads the invocation, marks the job failed and releases its idempotency item (so a
    redelivered upload can run again). Here the same event goes to the function's ingress queue,
    so the same handler code does the same work; nothing is written on the side.
    """
    from vsrflow.aws.ssm_events import DETAIL_TYPE, DOCUMENT, SOURCE
    from vsrflow.localstack.state import ACCOUNT_ID

    def on_failure(command_id: str, script: str, exit_code: int, stderr: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": DETAIL_TYPE,
            "source": SOURCE,
            "account": ACCOUNT_ID,
            "time": now,
            "region": region,
            "resources": [f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/{instance_id}"],
            "detail": {
                "command-id": command_id,
                "document-name": DOCUMENT,
                "instance-id": instance_id,
                "requested-date-time": now,
                "status": "Failed",
            },
        }
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
        log.info("ssm agent: command %s failed (exit %s); status-change event sent", command_id, exit_code)

    return on_failure


def _head_env(
    config: DaemonConfig, state_dir: Path, lambda_env: dict[str, str], endpoint: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLURM_"))}
    env.update(FAKE_CREDENTIALS)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", os.defpath)])
    env.update({k: v for k, v in lambda_env.items() if k.startswith("VSRFLOW_AWS_")})
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION=config.region,
        AWS_REGION=config.region,
        VSRFLOW_AWS_ENDPOINT_URL=endpoint,
        VSRFLOW_AWS_REGION=config.region,
        VSRFLOW_AWS_JOBS_ROOT=str(state_dir / "fsx" / "jobs"),
        PYTHONUNBUFFERED="1",
    )
    env.update(config.head_env)
    return env


def serve(state_dir: Path) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit code."""
    import boto3
    from moto.server import ThreadedMotoServer

    from vsrflow.localstack.deploy import deploy
    from vsrflow.localstack.lambda_runner import LambdaRunner, load_handler
    from vsrflow.localstack.ssm_agent import SsmAgentShim

    config = DaemonConfig.load(state_dir)
    inherited = dict(os.environ)  # the caller's environment, before this process adds to it
    StackState(status="starting", pid=os.getpid()).save(state_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=config.port, verbose=False)
    agent: SsmAgentShim | None = None
    runner: LambdaRunner | None = None
    try:
        server.start()
        port = server.get_host_and_port()[1]
        endpoint = f"http://127.0.0.1:{port}"
        log.info("moto on %s", endpoint)
        # Every boto3 client of this process (the handler's too) talks to moto, never to AWS.
        os.environ.update(FAKE_CREDENTIALS)
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION=config.region, AWS_REGION=config.region
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(name, None)

        agent = SsmAgentShim(
            config.region,
            env={},
            cwd=state_dir / "fsx",
            records_dir=state_dir / "agent",
            workers=config.agent_workers,
            instance_running=_ec2_running(config.region),
        )
        agent.install()
        session = boto3.session.Session(region_name=config.region)
        deployment = deploy(
            session,
            template_path=Path(config.template),
            stack_name=config.stack_name,
            cluster_name=config.cluster_name,
            handler_file=HANDLER_FILE,
            lambda_package=Path(config.lambda_package) if config.lambda_package else None,
            parameters=config.parameters,
        )
        lambda_env = dict(deployment.function_env)
        lambda_env.update(
            VSRFLOW_AWS_ENDPOINT_URL=endpoint,
            VSRFLOW_AWS_REGION=config.region,
            AWS_LAMBDA_FUNCTION_NAME=deployment.function_name,
        )
        head_env = _head_env(config, state_dir, lambda_env, endpoint)
        (state_dir / "fsx" / "jobs").mkdir(parents=True, exist_ok=True)
        agent.env = head_env
        agent.head_node_command = lambda_env.get("VSRFLOW_AWS_HEAD_NODE_COMMAND") or "vsrflow"
        agent.on_failure = _failure_hook(
            session.client("sqs"), deployment.ingress_queue_url, config.region, deployment.head_node
        )
        agent.manage(deployment.head_node)
        agent.start()

        # The function's environment is this process's: the handler reads it on every call
        # (the caller's own VSRFLOW_AWS_* settings are not the function's).
        for name in [k for k in os.environ if k.startswith("VSRFLOW_AWS_")]:
            del os.environ[name]
        os.environ.update(lambda_env)
        runner = LambdaRunner(
            session.client("sqs"),
            deployment.ingress_queue_url,
            load_handler(HANDLER_FILE),
            function_name=deployment.function_name,
            function_arn=deployment.function_arn,
            retry_delay_s=config.retry_delay_s,
            log_path=state_dir / INVOCATIONS_FILE,
            workers=config.runner_workers,
        )
        runner.start()
        StackState(
            status="ready",
            pid=os.getpid(),
            endpoint=endpoint,
            region=config.region,
            outputs=deployment.outputs,
            ingress_queue_url=deployment.ingress_queue_url,
            dlq_url=deployment.dlq_url,
            head_node=deployment.head_node,
            max_retries=deployment.max_retries,
            slurm_conf=config.head_env.get("SLURM_CONF"),
            lambda_env=lambda_env,
            head_env={k: v for k, v in head_env.items() if inherited.get(k) != v},
        ).save(state_dir)
        log.info("local stack ready: %s", deployment.outputs)
        while not stop.wait(0.5):
            pass
        log.info("stopping")
        code = 0
    except Exception as exc:
        log.error("local stack failed: %s\n%s", exc, traceback.format_exc())
        bad_input = isinstance(exc, InputError)
        error = str(exc) if bad_input else f"{type(exc).__name__}: {exc}"
        StackState(status="failed", pid=os.getpid(), error=error, bad_input=bad_input).save(state_dir)
        code = 1
    finally:
        if runner is not None:
            runner.stop()
        if agent is not None:
            agent.stop()
        with contextlib.suppress(Exception):  # never started
            server.stop()
    if code == 0:
        StackState(status="stopped", pid=os.getpid()).save(state_dir)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vsrflow.localstack.daemon STATE_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The stack's own loggers keep their plain format: the handler (app.py) reformats the root
    # logger's handlers as JSON with its request id on every call.
    own = logging.getLogger("vsrflow.localstack")
    plain = logging.StreamHandler()
    plain.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    own.addHandler(plain)
    own.setLevel(logging.INFO)
    own.propagate = False
    for noisy in ("werkzeug", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return serve(Path(args[0]).resolve())


if __name__ == "__main__":
    sys.exit(main())
