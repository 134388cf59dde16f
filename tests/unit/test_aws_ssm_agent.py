"""The local SSM agent shim runs only the trigger's exact command, as an argument list (no shell)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from vsrflow.localstack.ssm_agent import SsmAgentShim

REGION = "us-east-1"
JOB = "0123456789abcdef"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[SsmAgentShim, Any, str, Path]]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            mp.setenv(name, "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            # The head node's vsrflow: records its argv, one line per argument.
            fake = tmp_path / "bin" / "fake-vsrflow"
            fake.parent.mkdir()
            fake.write_text('#!/bin/bash\nprintf "%s\\n" "$@" >>"$ARGV_LOG"\necho "stderr of $1" >&2\n')
            fake.chmod(0o755)
            failures: list[tuple[str, int, str]] = []
            shim = SsmAgentShim(
                REGION,
                env={"PATH": "/usr/bin:/bin", "ARGV_LOG": str(tmp_path / "argv.log")},
                cwd=tmp_path,
                records_dir=tmp_path / "records",
                workers=1,
                on_failure=lambda cid, script, code, err: failures.append((script, code, err)),
                head_node_command=str(fake),
            )
            shim.install()
            ec2 = boto3.client("ec2", region_name=REGION)
            instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
            shim.manage(instance["InstanceId"])
            shim.start()
            try:
                yield shim, boto3.client("ssm", region_name=REGION), instance["InstanceId"], tmp_path
            finally:
                shim.stop()


def _run(ssm: Any, instance: str, script: str) -> dict[str, Any]:
    cid = ssm.send_command(
        InstanceIds=[instance], DocumentName="AWS-RunShellScript", Parameters={"commands": [script]}
    )["Command"]["CommandId"]
    deadline = time.monotonic() + 120
    while True:
        inv: dict[str, Any] = ssm.get_command_invocation(CommandId=cid, InstanceId=instance)
        if inv["Status"] not in ("Pending", "InProgress"):
            return inv
        assert time.monotonic() < deadline, inv
        time.sleep(0.05)


def test_only_the_exact_submit_command_runs_without_a_shell(
    agent: tuple[SsmAgentShim, Any, str, Path],
) -> None:
    shim, ssm, instance, tmp = agent
    fake = shim.head_node_command
    ok = _run(ssm, instance, f"{fake} submit --job-id {JOB}")
    assert (ok["Status"], ok["ResponseCode"]) == ("Success", 0), ok
    assert ok["StandardErrorContent"].strip() == "stderr of submit"
    assert (tmp / "argv.log").read_text().splitlines() == ["submit", "--job-id", JOB]

    hostile = [
        f"{fake} submit --job-id {JOB}; touch {tmp}/pwned",
        f"{fake} submit --job-id {JOB}\ntouch {tmp}/pwned",
        f"{fake} submit --job-id $(touch {tmp}/pwned)",
        f"touch {tmp}/pwned",
        f"{fake} submit --job-id {JOB.upper()}",
        f"{fake}x submit --job-id {JOB}",
        f"{fake} status {JOB}",
    ]
    for script in hostile:
        inv = _run(ssm, instance, script)
        assert (inv["Status"], inv["ResponseCode"]) == ("Failed", -1), (script, inv)
        assert f"runs only '{fake} submit --job-id <16 hex>'" in inv["StandardErrorContent"], inv
    assert not (tmp / "pwned").exists()
    assert (tmp / "argv.log").read_text().splitlines() == ["submit", "--job-id", JOB]  # ran once
