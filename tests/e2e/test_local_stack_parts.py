"""The local stack's parts that need no running stack: reading the template, parameters, CLI errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from vsrflow.errors import InputError
from vsrflow.localstack import template as tpl
from vsrflow.localstack.deploy import _parameters
from vsrflow.localstack.lambda_runner import LocalLambdaContext, event_keys
from vsrflow.localstack.state import StackState

# Slow (starts and stops the local stack's daemons): `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

TEMPLATE = REPO / "infra" / "cfn" / "vsrflow.yaml"


def test_the_real_template_is_read_for_what_moto_skips() -> None:
    template = tpl.load_template(TEMPLATE)
    function = tpl.trigger_function(template)
    assert function is not None and function.max_retries == 2
    params = {"UploadPrefix": "uploads/", "MediaBucketName": "b"}
    (media,) = [b for b in tpl.buckets(template, params) if b.notifications]
    assert media.versioned
    assert {r.target for r in media.notifications} == {function.logical_id}
    assert {r.prefix for r in media.notifications} == {"uploads/"}
    assert [r.suffix for r in media.notifications] == [None]  # prefix only: the trigger checks suffixes
    assert all(r.events == ("s3:ObjectCreated:*",) for r in media.notifications)
    assert tpl.code_location(template, function.logical_id) == (
        {"Ref": "LambdaCodeBucket"},
        {"Ref": "LambdaCodeKey"},
    )


def test_short_tags_and_values(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties:\n"
        "      Role: !GetAtt R.Arn\n      Name: !Sub '${AWS::StackName}-x'\n      List: !Join ['', [a, b]]\n"
    )
    props = tpl.load_template(path)["Resources"]["F"]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["R", "Arn"]}
    assert props["List"] == {"Fn::Join": ["", ["a", "b"]]}
    params = {"AWS::StackName": "s", "P": "v"}
    assert tpl.resolve_value(props["Name"], params) == "s-x"
    assert tpl.resolve_value({"Ref": "P"}, params) == "v"
    assert tpl.resolve_value(3, params) == "3"
    with pytest.raises(InputError, match="cannot evaluate"):
        tpl.resolve_value(props["List"], params)
    with pytest.raises(InputError, match="not a CloudFormation template"):
        (tmp_path / "x.yaml").write_text("a: 1\n")
        tpl.load_template(tmp_path / "x.yaml")


def test_parameters() -> None:
    template = {
        "Parameters": {
            "MediaBucketName": {"Type": "String"},
            "ClusterName": {"Type": "String"},
            "CodeBucket": {"Type": "String"},
            "CodeKey": {"Type": "String", "Default": "k.zip"},
            "Other": {"Type": "String"},
        },
        "Resources": {},
    }
    code = ({"Ref": "CodeBucket"}, {"Ref": "CodeKey"})
    with pytest.raises(InputError, match=r"needs parameters \['Other'\].*--parameter NAME=VALUE"):
        _parameters(template, code, "st", "cl", {})
    with pytest.raises(InputError, match="Nope is not declared"):
        _parameters(template, code, "st", "cl", {"Nope": "1"})
    got = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in _parameters(template, code, "st", "cl", {"Other": "o"})
    }
    assert got == {
        "MediaBucketName": "st-media",
        "ClusterName": "cl",
        "CodeBucket": "vsrflow-local-artifacts",
        "CodeKey": "k.zip",
        "Other": "o",
    }


def test_runner_helpers() -> None:
    event = {"Records": [{"s3": {"object": {"key": "uploads/anime/a+b.mp4"}}}, {"bad": 1}]}
    assert event_keys(event) == ["uploads/anime/a+b.mp4"]
    assert event_keys({"Event": "s3:TestEvent"}) == [] and event_keys("x") == []
    ctx = LocalLambdaContext(function_name="f", invoked_function_arn="arn", timeout_s=60)
    assert ctx.log_group_name == "/aws/lambda/f" and 0 < ctx.get_remaining_time_in_millis() <= 60_000


def test_cli_without_a_running_stack(cli_env: dict[str, str], tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    proc = run_cli(["local", "--state-dir", str(tmp_path / "none"), "upload", str(clip)], cli_env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "no local stack is running" in proc.stderr and "vsrflow local up" in proc.stderr, proc.stderr


def test_up_with_a_bad_template_fails_cleanly(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The template has no S3 -> function notification: exit 2 naming why, no daemon left running."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "Resources:\n"
        "  Bucket: {Type: 'AWS::S3::Bucket'}\n"
        "  Dlq: {Type: 'AWS::SQS::Queue'}\n"
        "  Role:\n    Type: AWS::IAM::Role\n    Properties: {AssumeRolePolicyDocument: {}}\n"
        "  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n"
        "      Runtime: python3.11\n      Handler: app.handler\n      Role: !GetAtt Role.Arn\n"
        "      Code: {S3Bucket: code, S3Key: app.zip}\n"
        "Outputs:\n  DLQUrl: {Value: !Ref Dlq}\n"
    )
    state = tmp_path / "state"
    proc = run_cli(
        ["local", "--state-dir", str(state), "up", "--no-slurm", "--template", str(bad)], cli_env, 120
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no bucket notification targets the function Fn" in proc.stderr, proc.stderr
    assert StackState.load(state).status == "failed"  # type: ignore[union-attr]
    status = run_cli(["local", "--state-dir", str(state), "status"], cli_env, 60)
    assert status.returncode == 1 and "down" in status.stdout
